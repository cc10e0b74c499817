"""The autoscaler's pure decision (manager/serving/autoscaling.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from workbay.manager.serving.autoscaling import Rule, decide, wake

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RPS = ("endpoint", "requests_per_second")


def rule(rid: str = "r", comparator: str = "gt", threshold: str = "10", step: int = 1, cooldown: float = 60,
         lo: int | None = None, hi: int | None = None, last: float | None = None,
         metric: tuple[str, str] = RPS) -> Rule:
    return Rule(id=rid, source=metric[0], metric=metric[1], comparator=comparator, threshold=Decimal(threshold),
                step=step, cooldown=cooldown, min_replicas=lo, max_replicas=hi,
                last_triggered_at=NOW - timedelta(seconds=last) if last is not None else None)


@pytest.mark.parametrize(("rules", "value", "current", "desired", "fired"), [
    ([rule()], "11", 1, 2, "r"),
    ([rule()], "10", 1, 1, None),  # gt is strict
    ([rule(comparator="ge")], "10", 1, 2, "r"),
    ([rule(comparator="lt", threshold="1", step=-1)], "0.5", 2, 1, "r"),
    ([rule(comparator="le", threshold="1", step=-1)], "1", 2, 1, "r"),
    ([rule(comparator="lt", threshold="1", step=-1)], "1", 2, 2, None),
    ([rule(step=3, hi=3)], "50", 1, 3, "r"),  # clamped to max
    ([rule(hi=2)], "50", 2, 2, None),  # at max: nothing fires
    ([rule(hi=2)], "50", 5, 5, None),  # above max: a scale-up rule never lowers
    ([rule(comparator="lt", step=-5, lo=1)], "0", 3, 1, "r"),  # clamped to min
    ([rule(comparator="lt", step=-1, lo=0)], "0", 1, 0, "r"),  # min 0: scale to zero
    ([rule(comparator="lt", step=-1)], "0", 0, 0, None),  # never below zero
    ([rule(comparator="lt", step=-1, lo=2)], "0", 1, 1, None),  # below min: a scale-down rule never raises
    ([rule(last=30)], "50", 1, 1, None),  # cooling down
    ([rule(last=61)], "50", 1, 2, "r"),
    ([rule(comparator="bogus")], "50", 1, 1, None),
    ([rule(step=0)], "50", 1, 1, None),
    ([rule(metric=("kernel", "cpu_util"))], "50", 1, 1, None),  # no value for that metric
    # Several fire: up beats down, the biggest step up wins, else the gentlest step down.
    ([rule("down", comparator="gt", step=-1), rule("up", step=1)], "50", 2, 3, "up"),
    ([rule("one", step=1), rule("two", step=2)], "50", 1, 3, "two"),
    ([rule("one", comparator="gt", step=-1), rule("two", comparator="gt", step=-2)], "50", 3, 2, "one"),
])
def test_decide(rules: list[Rule], value: str, current: int, desired: int, fired: str | None) -> None:
    d = decide(rules, {RPS: Decimal(value)}, current, NOW)
    assert (d.desired, d.rule_id) == (desired, fired)
    if fired:
        assert "requests_per_second" in d.reason and f"{current} → {desired}" in d.reason


@pytest.mark.parametrize(("step", "woken", "desired"), [
    (-1, 30, 1),  # a scale-down waits out the cooldown after a wake-up
    (-1, 61, 0),
    (1, 30, 2),  # scale-up does not
])
def test_cooldown_after_wake(step: int, woken: float, desired: int) -> None:
    r = rule(comparator="ge", threshold="0", step=step, lo=0)
    d = decide([r], {RPS: Decimal(0)}, 1, NOW, woken_at=NOW - timedelta(seconds=woken))
    assert d.desired == desired


@pytest.mark.parametrize(("desired", "waiting", "woken"), [(0, 0, None), (0, 3, 1), (2, 3, None), (1, 0, None)])
def test_wake(desired: int, waiting: int, woken: int | None) -> None:
    assert wake(desired, waiting) == woken
