"""The autoscaler's decision (docs/serving.md): pure, no I/O.

Each rule compares one metric with a threshold and, when the comparison holds, moves the desired
replica count by its step, clamped to the rule's bounds (``min_replicas`` 0 allows scale to zero).
A rule in its cooldown (since it last fired) does not fire; a scale-down rule also waits out its
cooldown after the service was woken from zero.  When several rules fire, scaling up wins (the
largest step), otherwise the gentlest scale-down; a rule whose clamped result changes nothing does
not count as fired.  A metric without a value (no replica reported it yet) fires nothing.

Scale to zero: :func:`wake` — requests wait at the app-proxy for a service with no replica.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

SOURCES = ("kernel", "inference-framework", "endpoint")
COMPARATORS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}


@dataclass(frozen=True)
class Rule:
    id: str
    source: str  # kernel | inference-framework | endpoint
    metric: str
    comparator: str  # lt | le | gt | ge
    threshold: Decimal
    step: int  # > 0 scales up, < 0 scales down
    cooldown: float  # seconds
    min_replicas: int | None = None
    max_replicas: int | None = None
    last_triggered_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    desired: int
    rule_id: str | None = None  # the rule that fired; None: nothing changes
    reason: str = ""


def _clamp(value: int, rule: Rule) -> int:
    low = max(0, rule.min_replicas if rule.min_replicas is not None else 0)
    value = max(low, value)
    if rule.max_replicas is not None:
        value = min(max(low, rule.max_replicas), value)
    return value


def _cooling(rule: Rule, now: datetime, woken_at: datetime | None) -> bool:
    since = [t for t in (rule.last_triggered_at, woken_at if rule.step < 0 else None) if t is not None]
    return any(now < t + timedelta(seconds=rule.cooldown) for t in since)


def decide(rules: Sequence[Rule], metrics: Mapping[tuple[str, str], Decimal], current: int, now: datetime,
           woken_at: datetime | None = None) -> Decision:
    """The new desired count and the rule that set it (``metrics``: (source, name) → value)."""
    fired: list[tuple[Rule, int, Decimal]] = []
    for rule in rules:
        value = metrics.get((rule.source, rule.metric))
        compare = COMPARATORS.get(rule.comparator)
        if value is None or compare is None or rule.step == 0 or not compare(value, rule.threshold):
            continue
        if _cooling(rule, now, woken_at):
            continue
        target = _clamp(current + rule.step, rule)
        if target != current and (target > current) == (rule.step > 0):
            fired.append((rule, target, value))
    if not fired:
        return Decision(current)
    ups = [f for f in fired if f[1] > current]
    rule, target, value = max(ups, key=lambda f: f[1]) if ups else max(fired, key=lambda f: f[1])
    return Decision(target, rule.id, f"{rule.source} {rule.metric} = {value} {rule.comparator} "
                                     f"{rule.threshold}: {current} → {target} replicas")


def wake(desired: int, waiting: int) -> int | None:
    """A service scaled to zero with requests waiting at the app-proxy gets one replica."""
    if desired == 0 and waiting > 0:
        return 1
    return None
