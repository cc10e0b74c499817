"""The queue over ticks: head-of-line blocking only for lack of capacity, "retries to skip a
pending session", pending timeout, dependency failure, and the guide's queue example (23.2)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from tests.unit.scheduler_factory import NOW, agent, ids, make_input, predicate, session, slots, tick
from workbay.manager.scheduler.core import (
    CANCEL_DEPENDENCY_FAILED,
    CANCEL_PENDING_TIMEOUT,
    PRED_CAPACITY,
    DependencyState,
    KeypairQuota,
    PendingSession,
    Scheduled,
    SchedulingResult,
    StillPending,
    schedule,
)


def carry(result: SchedulingResult) -> list[PendingSession]:
    """What a dispatcher stores back: the still-pending sessions with their new counters."""
    return [dataclasses.replace(d.session, attempts=d.attempts, blocking_retries=d.blocking_retries)
            for d in result.pending]


# -- the guide's example (23.2): room for 2 sessions of 1 fGPU, 3 requested ---------------------
def test_guide_queue_example():
    gpu_host = agent("gpu-host", cpu=16, mem="64g", cuda_shares=2)
    sessions = [session(f"test-for-multi-{i}", age=10 - i, cpu=2, mem="4g", cuda_shares=1) for i in range(3)]
    r = tick(sessions, [gpu_host])
    assert len(r.scheduled) == 2 and len(r.pending) == 1
    (waiting,) = r.pending
    cap = predicate(waiting, PRED_CAPACITY)
    assert not cap.passed
    assert "not enough free resources" in cap.message and "cuda.shares 0" in cap.message
    assert waiting.failed == (cap,) and "resource group capacity" in waiting.message

    # one of the running sessions is terminated: its slots are free again; the next tick runs it
    freed = dataclasses.replace(gpu_host, occupied_slots=r.agent_occupied["gpu-host"] - r.scheduled[0].slots)
    r2 = tick(carry(r), [freed])
    assert ids(r2.scheduled) == [waiting.session.id]
    assert r2.agent_occupied["gpu-host"]["cuda.shares"] == 2


# -- head-of-line blocking ----------------------------------------------------------------------
def hol_setup():
    """a: 4 cpu; running 2 → 2 free.  big (oldest) wants 3; small ones want 1."""
    agents = [agent("a", cpu=4, occupied={"cpu": 2})]
    sessions = [session("big", age=30, cpu=3), session("small1", age=20, cpu=1), session("small2", age=10, cpu=1)]
    return agents, sessions


def test_head_lacking_capacity_holds_back_the_queue():
    agents, sessions = hol_setup()
    r = tick(sessions, agents, retries_to_skip=2)
    assert r.scheduled == ()
    big = r.for_session("big")
    assert big.blocked_by is None and big.blocking_retries == 1 and big.attempts == 1
    assert "holding back the queue" in predicate(big, PRED_CAPACITY).message
    for sid in ("small1", "small2"):
        d = r.for_session(sid)
        assert d.blocked_by == "big" and d.blocking_retries == 0 and d.attempts == 1
        cap = predicate(d, PRED_CAPACITY)
        assert not cap.passed and "head-of-line" in cap.message
        assert [p.name for p in d.failed] == [PRED_CAPACITY]


def test_head_is_skipped_after_retries_to_skip_ticks():
    agents, sessions = hol_setup()
    blocked = []
    for _ in range(4):
        r = tick(sessions, agents, retries_to_skip=2)
        blocked.append(ids(r.scheduled))
        sessions = carry(r) + [dataclasses.replace(d.session) for d in r.scheduled]  # keep it simple: nothing runs
    assert blocked == [[], [], ["small1", "small2"], ["small1", "small2"]]
    assert r.for_session("big").blocking_retries == 2
    assert "skipped after holding back the queue 2 times" in predicate(r.for_session("big"), PRED_CAPACITY).message


def test_retries_to_skip_zero_never_blocks():
    agents, sessions = hol_setup()
    r = tick(sessions, agents, retries_to_skip=0)
    assert ids(r.scheduled) == ["small1", "small2"]
    assert r.for_session("big").blocking_retries == 0


def test_a_head_that_fits_later_is_scheduled_first():
    agents, sessions = hol_setup()
    r = tick(sessions, agents, retries_to_skip=3)
    freed = [dataclasses.replace(agents[0], occupied_slots=slots())]
    r2 = tick(carry(r), freed, retries_to_skip=3)
    assert ids(r2.scheduled) == ["big", "small1"]  # 3 + 1 = 4


def test_sessions_failing_other_predicates_never_block():
    agents = [agent("a", cpu=2)]
    kp = {"limited": KeypairQuota(max_concurrent_sessions=0)}
    sessions = [
        session("future", age=50, cpu=3, session_type="batch", starts_at=NOW + timedelta(hours=1)),
        session("limited", age=40, cpu=3, key="limited"),
        session("deps", age=30, cpu=3, dependencies=("d",)),
        session("arch", age=25, cpu=3, architecture="aarch64"),
        session("ok", age=10, cpu=1),
    ]
    r = tick(sessions, agents, keypairs=kp, deps={"d": DependencyState.WAITING}, retries_to_skip=5)
    assert ids(r.scheduled) == ["ok"]
    assert all(d.blocked_by is None and d.blocking_retries == 0 for d in r.pending)


def test_a_session_that_can_never_fit_does_not_block():
    agents = [agent("a", cpu=4)]
    r = tick([session("huge", age=10, cpu=64), session("small", age=5, cpu=1)], agents, retries_to_skip=3)
    assert ids(r.scheduled) == ["small"]
    huge = r.for_session("huge")
    assert huge.blocking_retries == 0 and "would not fit even on empty agents" in predicate(huge, PRED_CAPACITY).message


def test_a_multi_node_cluster_that_fits_empty_agents_together_blocks():
    agents = [agent("a1", cpu=2, occupied={"cpu": 1}), agent("a2", cpu=2)]
    r = tick([session("c", age=10, cpu=1, cluster_size=4, cluster_mode="multi-node"), session("s", age=5, cpu=1)],
             agents)
    assert r.scheduled == () and r.for_session("s").blocked_by == "c"


def test_blocking_under_lifo_and_drf_uses_their_head():
    agents = [agent("a", cpu=4, occupied={"cpu": 2})]
    sessions = [session("old", age=10, cpu=1), session("new", age=1, cpu=3)]
    r = tick(sessions, agents, scheduler="lifo")
    assert r.scheduled == () and r.for_session("old").blocked_by == "new"
    r = tick(sessions, agents, scheduler="fifo")
    assert ids(r.scheduled) == ["old"]
    r = tick([session("a", key="A", cpu=3, age=1), session("b", key="B", cpu=1, age=5)], agents, scheduler="drf",
             group_usage={"B": slots(cpu=1)})
    assert r.scheduled == () and r.for_session("b").blocked_by == "a"


def test_blocked_sessions_are_not_allocated_even_if_they_fit():
    agents, sessions = hol_setup()
    r = tick(sessions, agents)
    assert r.agent_occupied["a"]["cpu"] == 2
    assert "resources are free" in predicate(r.for_session("small1"), PRED_CAPACITY).message


# -- pending timeout ----------------------------------------------------------------------------
def test_pending_timeout_cancels_with_a_reason():
    agents = [agent("a", cpu=1)]
    sessions = [session("old", age=601, cpu=8), session("young", age=599, cpu=8), session("fits", age=700, cpu=1)]
    r = tick(sessions, agents, pending_timeout=600)
    old = r.for_session("old")
    assert old.reason == CANCEL_PENDING_TIMEOUT == "pending-timeout" and "600 s" in old.message
    assert r.for_session("fits").reason == CANCEL_PENDING_TIMEOUT  # even if it would fit now
    assert isinstance(r.for_session("young"), StillPending)
    assert ids(r.decisions)[:2] == ["old", "fits"]  # cancellations come first


def test_pending_timeout_zero_means_never():
    r = tick([session("ancient", age=10**8, cpu=99)], [agent("a")], pending_timeout=0)
    assert isinstance(r.decisions[0], StillPending)


def test_pending_timeout_counts_from_a_reserved_start():
    s = session("b", age=3600, session_type="batch", starts_at=NOW - timedelta(seconds=30), cpu=99)
    r = tick([s], [agent("a")], pending_timeout=60)
    assert isinstance(r.decisions[0], StillPending)
    r = tick([s], [agent("a")], pending_timeout=60, now=NOW + timedelta(seconds=31))
    assert r.decisions[0].reason == CANCEL_PENDING_TIMEOUT


def test_failed_dependency_cancels():
    r = tick([session("child", dependencies=("ok", "bad")), session("other")], [agent("a")],
             deps={"ok": DependencyState.SUCCEEDED, "bad": DependencyState.FAILED})
    d = r.for_session("child")
    assert d.reason == CANCEL_DEPENDENCY_FAILED and "bad" in d.message
    assert isinstance(r.for_session("other"), Scheduled)


def test_dependency_states_accept_strings():
    inp = make_input([session("c", dependencies=("p",))], [agent("a")], deps={"p": "succeeded"})
    assert isinstance(schedule(inp).decisions[0], Scheduled)


def test_attempts_accumulate_over_ticks():
    sessions = [session("s", cpu=99)]
    for n in range(1, 4):
        r = tick(sessions, [agent("a")], retries_to_skip=0)
        assert r.pending[0].attempts == n
        sessions = carry(r)
