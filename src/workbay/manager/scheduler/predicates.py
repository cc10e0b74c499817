"""The predicates a pending session must pass, each a pure function giving a ``PredicateResult``
(name, passed, a human message).  The capacity predicate lives in ``core`` because it needs the
tick's agent pool and the head-of-line state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from workbay.common.slots import ZERO, ResourceSlot, format_amount

from .model import (
    PRED_ARCHITECTURE,
    PRED_CONCURRENCY,
    PRED_DEPENDENCIES,
    PRED_DESIGNATED_AGENT,
    PRED_SESSION_TYPE,
    PRED_START_TIME,
    DependencyState,
    KeypairQuota,
    PendingSession,
    PredicateResult,
    ResourceGroupPolicy,
)


def reserved_start_time(s: PendingSession, now: datetime) -> PredicateResult:
    if s.starts_at is None:
        return PredicateResult(PRED_START_TIME, True, "no reserved start time")
    if s.starts_at <= now:
        return PredicateResult(PRED_START_TIME, True, f"reserved start time {s.starts_at.isoformat()} reached")
    return PredicateResult(PRED_START_TIME, False, f"reserved to start at {s.starts_at.isoformat()}")


def allowed_session_type(s: PendingSession, group: ResourceGroupPolicy) -> PredicateResult:
    if s.session_type in group.allowed_session_types:
        return PredicateResult(PRED_SESSION_TYPE, True, f"{s.session_type} sessions are allowed")
    allowed = ", ".join(sorted(group.allowed_session_types))
    return PredicateResult(PRED_SESSION_TYPE, False,
                           f"resource group {group.name!r} allows only {allowed} sessions, not {s.session_type}")


def dependencies(s: PendingSession, states: Mapping[str, DependencyState]) -> PredicateResult:
    if not s.dependencies:
        return PredicateResult(PRED_DEPENDENCIES, True, "no dependencies")
    waiting = [d for d in s.dependencies if DependencyState(states[d]) is not DependencyState.SUCCEEDED]
    if not waiting:
        return PredicateResult(PRED_DEPENDENCIES, True, f"all {len(s.dependencies)} dependencies succeeded")
    return PredicateResult(PRED_DEPENDENCIES, False, "waiting for dependencies to finish: " + ", ".join(waiting))


def concurrency(s: PendingSession, kp: KeypairQuota, started_this_tick: int) -> PredicateResult:
    if kp.max_concurrent_sessions is None:
        return PredicateResult(PRED_CONCURRENCY, True, "no limit on concurrent sessions")
    active = kp.active_sessions + started_this_tick
    if active < kp.max_concurrent_sessions:
        return PredicateResult(PRED_CONCURRENCY, True,
                               f"{active} of {kp.max_concurrent_sessions} concurrent sessions in use")
    return PredicateResult(PRED_CONCURRENCY, False,
                           f"keypair {s.access_key} already has {active} of {kp.max_concurrent_sessions} "
                           f"concurrent sessions")


def resource_limit(name: str, scope: str, request: ResourceSlot, limit: ResourceSlot,
                   occupied: ResourceSlot, added: Mapping[str, Decimal] | None) -> PredicateResult:
    """``request`` on top of ``occupied`` (+ ``added`` this tick) within ``limit`` — a slot missing
    from the limit, or ``Infinity``, is unlimited.  Only slots the request uses are checked, so a
    limit lowered below current use blocks growth of that slot only."""
    over = []
    for k, v in request.items():
        if v <= 0:
            continue
        lim = limit.get(k)
        if lim is None or lim.is_infinite():
            continue
        used = occupied.amount(k) + (added.get(k, ZERO) if added else ZERO)
        if used + v > lim:
            over.append(f"{k} {format_amount(k, used)} in use + {format_amount(k, v)} requested > "
                        f"limit {format_amount(k, lim)}")
    if over:
        return PredicateResult(name, False, f"{scope} resource limit exceeded: " + "; ".join(over))
    return PredicateResult(name, True, f"within the {scope} resource limit")


def architecture(s: PendingSession, available: frozenset[str], group: str) -> PredicateResult:
    if s.architecture in available:
        return PredicateResult(PRED_ARCHITECTURE, True, f"{s.architecture} agents available")
    have = ", ".join(sorted(available)) or "none"
    return PredicateResult(PRED_ARCHITECTURE, False,
                           f"no schedulable {s.architecture} agent in resource group {group!r} (has: {have})")


def designated_agent(s: PendingSession, states: Mapping[str, object], excluded: Mapping[str, str]) -> PredicateResult:
    if not s.designated_agents:
        return PredicateResult(PRED_DESIGNATED_AGENT, True, "no designated agent")
    problems = []
    for aid in s.designated_agents:
        st = states.get(aid)
        if st is None:
            problems.append(excluded.get(aid, f"agent {aid} does not exist"))
        elif st.arch != s.architecture:  # type: ignore[attr-defined]
            problems.append(f"agent {aid} is {st.arch}, the session needs {s.architecture}")  # type: ignore[attr-defined]
    if problems:
        return PredicateResult(PRED_DESIGNATED_AGENT, False, "; ".join(problems))
    return PredicateResult(PRED_DESIGNATED_AGENT, True, "designated: " + ", ".join(s.designated_agents))
