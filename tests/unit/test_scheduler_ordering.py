"""FIFO, LIFO and DRF orders, and that allocations made earlier in a tick count for later sessions."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.scheduler_factory import agent, ids, session, slots, tick
from workbay.manager.scheduler.core import Scheduled, SchedulerKind, dominant_share, static_order
from workbay.manager.scheduler.ordering import SessionQueue


def one_slot_each(n: int):
    """n identical 1-cpu sessions, s0 the oldest."""
    return [session(f"s{i}", age=100 - i, cpu=1, mem="1g") for i in range(n)]


def test_fifo_schedules_the_oldest_first():
    r = tick(one_slot_each(5), [agent("a", cpu=3)], retries_to_skip=0)
    assert ids(r.scheduled) == ["s0", "s1", "s2"]
    assert ids(r.decisions) == ["s0", "s1", "s2", "s3", "s4"]


def test_lifo_schedules_the_newest_first():
    r = tick(one_slot_each(5), [agent("a", cpu=3)], scheduler="lifo", retries_to_skip=0)
    assert ids(r.scheduled) == ["s4", "s3", "s2"]
    assert ids(r.decisions) == ["s4", "s3", "s2", "s1", "s0"]


def test_input_order_does_not_matter():
    sessions = one_slot_each(6)
    a = tick(sessions, [agent("a", cpu=4)], retries_to_skip=0)
    b = tick(list(reversed(sessions)), [agent("a", cpu=4)], retries_to_skip=0)
    assert ids(a.decisions) == ids(b.decisions)


def test_equal_creation_times_break_ties_by_id():
    sessions = [session(n, age=5) for n in ("b", "c", "a")]
    assert [s.id for s in static_order(SchedulerKind.FIFO, sessions)] == ["a", "b", "c"]
    assert [s.id for s in static_order(SchedulerKind.LIFO, sessions)] == ["c", "b", "a"]


def test_earlier_allocations_in_a_tick_count_for_later_sessions():
    r = tick([session("big", age=3, cpu=6), session("mid", age=2, cpu=3), session("small", age=1, cpu=2)],
             [agent("a", cpu=8)], retries_to_skip=0)
    assert ids(r.scheduled) == ["big", "small"]
    assert r.agent_occupied["a"]["cpu"] == 8


def test_dominant_share_helper():
    cap = slots(cpu=100, mem="100g", cuda_shares=10)
    assert dominant_share(slots(cpu=10, mem="50g"), cap) == Decimal("0.5")
    assert dominant_share(slots(cuda_shares=2, cpu=50), cap) == Decimal("0.5")
    assert dominant_share(slots(), cap) == 0


def test_drf_owner_with_the_smallest_dominant_share_goes_first():
    # capacity: cpu 100, mem 100g.  A uses 50% cpu, B 20% mem, C nothing.
    agents = [agent("a", cpu=100, mem="100g")]
    usage = {"A": slots(cpu=50), "B": slots(mem="20g")}
    sessions = [session("a1", key="A", age=30), session("b1", key="B", age=20), session("c1", key="C", age=10)]
    r = tick(sessions, agents, scheduler="drf", group_usage=usage)
    assert ids(r.decisions) == ["c1", "b1", "a1"]


def test_drf_ties_go_to_the_oldest():
    agents = [agent("a", cpu=100, mem="100g")]
    r = tick([session("b1", key="B", age=10), session("a1", key="A", age=20)], agents, scheduler="drf")
    assert ids(r.decisions) == ["a1", "b1"]


def test_drf_recomputes_shares_as_the_tick_allocates():
    # A and B start equal; every session A or B gets raises its share, so they alternate;
    # within a key, oldest first.
    agents = [agent("a", cpu=100, mem="100g")]
    sessions = [session(f"a{i}", key="A", age=100 - i, cpu=10) for i in range(3)] + \
               [session(f"b{i}", key="B", age=50 - i, cpu=10) for i in range(3)]
    r = tick(sessions, agents, scheduler="drf")
    assert ids(r.decisions) == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_drf_heavy_user_waits_for_light_users():
    agents = [agent("a", cpu=10, mem="100g")]
    sessions = [session(f"h{i}", key="heavy", age=100 - i, cpu=2) for i in range(5)] + \
               [session("l0", key="light", age=1, cpu=2)]
    r = tick(sessions, agents, scheduler="drf", group_usage={"heavy": slots(cpu=4)}, retries_to_skip=0)
    # capacity cpu 10: light (share 0) first, then heavy gets the rest
    assert ids(r.decisions)[0] == "l0"
    assert len(r.scheduled) == 5


def test_drf_uses_the_dominant_slot():
    agents = [agent("a", cpu=100, mem="100g", cuda_shares=10)]
    usage = {"gpu-user": slots(cuda_shares=3), "cpu-user": slots(cpu=20)}  # 30% vs 20%
    r = tick([session("g", key="gpu-user", age=10), session("c", key="cpu-user", age=5)], agents, scheduler="drf",
             group_usage=usage)
    assert ids(r.decisions) == ["c", "g"]


def test_session_queue_unscheduled_sessions_do_not_raise_share():
    cap = slots(cpu=10)
    s = [session("a0", key="A", age=3), session("a1", key="A", age=2), session("b0", key="B", age=1)]
    q = SessionQueue(SchedulerKind.DRF, s, cap, {})
    first = q.pop()
    assert first.id == "a0"
    q.done(first)  # not scheduled: A's share stays 0, a1 is older than b0
    assert q.pop().id == "a1"


def test_scheduled_sessions_carry_placements_in_kernel_order():
    r = tick([session("c", cluster_size=3, cpu=1)], [agent("a", cpu=8)])
    (d,) = r.decisions
    assert isinstance(d, Scheduled)
    assert [(p.index, p.cluster_role, p.cluster_idx, p.cluster_hostname) for p in d.placements] == [
        (0, "main", 1, "main1"), (1, "sub", 1, "sub1"), (2, "sub", 2, "sub2")]
    assert d.slots == slots(cpu=3, mem="3g")
    assert d.agent_ids == ("a",)
