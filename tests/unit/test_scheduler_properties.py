"""Hypothesis properties of the pure scheduler over random groups, agents, sessions and limits."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.scheduler_factory import GIB, NOW, ids, make_input
from workbay.common.slots import ResourceSlot
from workbay.manager.scheduler.core import (
    PREDICATE_NAMES,
    AgentCapacity,
    AgentSelection,
    Cancelled,
    ClusterMode,
    DependencyState,
    KeypairQuota,
    PendingSession,
    ResourceGroupPolicy,
    Scheduled,
    SchedulerKind,
    SessionType,
    StillPending,
    Usage,
    schedule,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS, PROJECTS, DOMAINS = ["A", "B", "C"], ["p1", "p2"], ["d1", "d2"]

D = Decimal
_shares = st.sampled_from([None, D(0), D("0.5"), D(1), D("2.5")])


def _slots(cpu, mem_gib, shares):
    d = {"cpu": D(cpu), "mem": D(mem_gib * GIB)}
    if shares is not None:
        d["cuda.shares"] = shares
    return ResourceSlot(d)


def slot_maps(max_cpu=8, max_mem=16):
    return st.builds(_slots, st.integers(0, max_cpu), st.integers(0, max_mem), _shares)


REQUESTS, SMALL = slot_maps(), slot_maps(4, 8)


def _limit(cpu, mem_gib, shares, infinite_cpu):
    d = {}
    if cpu is not None:
        d["cpu"] = D(cpu)
    elif infinite_cpu:
        d["cpu"] = D("Infinity")
    if mem_gib is not None:
        d["mem"] = D(mem_gib * GIB)
    if shares is not None:
        d["cuda.shares"] = D(shares)
    return ResourceSlot(d)


LIMITS = st.builds(_limit, st.none() | st.integers(0, 20), st.none() | st.integers(0, 40),
                   st.none() | st.integers(0, 4), st.booleans())


def _agent(i, cpu, mem_gib, half_shares, occ_tenths, group, arch, schedulable):
    total = {"cpu": D(cpu), "mem": D(mem_gib * GIB)}
    if half_shares is not None:
        total["cuda.shares"] = D(half_shares) / 2
    occ = {k: v * D(occ_tenths) / 10 for k, v in total.items()}  # up to 120 %
    return AgentCapacity(f"ag{i}", group, ResourceSlot(total), ResourceSlot(occ), arch, schedulable)


AGENT_FIELDS = st.tuples(st.integers(0, 16), st.integers(0, 32), st.none() | st.integers(0, 8), st.integers(0, 12),
                         st.sampled_from(["default", "default", "default", "other"]),
                         st.sampled_from(["x86_64", "x86_64", "aarch64"]), st.sampled_from([True, True, True, False]))
AGENTS = st.lists(AGENT_FIELDS, min_size=1, max_size=5).map(lambda fs: [_agent(i, *f) for i, f in enumerate(fs)])

SESSION_FIELDS = st.fixed_dictionaries({
    "age": st.integers(0, 1000), "access_key": st.sampled_from(KEYS), "project_id": st.sampled_from(PROJECTS),
    "domain": st.sampled_from(DOMAINS), "requested_slots": REQUESTS, "session_type": st.sampled_from(list(SessionType)),
    "cluster_size": st.sampled_from([1, 1, 1, 2, 3]), "cluster_mode": st.sampled_from(list(ClusterMode)),
    "architecture": st.sampled_from(["x86_64", "x86_64", "x86_64", "aarch64"]),
    "designated": st.sampled_from([(), (), (), (), ("ag0",), ("ag1", "ghost"), ("ag0", "ag2")]),
    "starts_at": st.sampled_from([None, None, NOW - timedelta(seconds=5), NOW + timedelta(seconds=5)]),
    "dependencies": st.lists(st.sampled_from(["d-wait", "d-ok", "d-fail"]), max_size=2, unique=True).map(tuple),
    "image_min_slots": st.sampled_from([ResourceSlot(), ResourceSlot({"mem": GIB, "cpu": 1})]),
    "attempts": st.integers(0, 3), "blocking_retries": st.integers(0, 4),
})


def _session(i, f):
    f = dict(f)
    age, designated = f.pop("age"), f.pop("designated")
    return PendingSession(id=f"s{i}", created_at=NOW - timedelta(seconds=age), resource_group="default",
                          designated_agents=designated, **f)


SESSIONS = st.lists(SESSION_FIELDS, max_size=12).map(lambda fs: [_session(i, f) for i, f in enumerate(fs)])
GROUPS = st.builds(
    ResourceGroupPolicy, st.just("default"), scheduler=st.sampled_from(list(SchedulerKind)),
    pending_timeout=st.sampled_from([0, 0, 500]), retries_to_skip=st.integers(0, 3),
    allowed_session_types=st.sampled_from([frozenset(SessionType), frozenset({SessionType.INTERACTIVE, SessionType.BATCH})]),
    agent_selection=st.sampled_from(list(AgentSelection)))
KEYPAIR = st.builds(KeypairQuota, limit=LIMITS, occupied=SMALL,
                    max_concurrent_sessions=st.sampled_from([None, 0, 1, 2, 5]), active_sessions=st.integers(0, 2))
USAGE = st.builds(Usage, LIMITS, SMALL)
DEPS = {"d-wait": DependencyState.WAITING, "d-ok": DependencyState.SUCCEEDED, "d-fail": DependencyState.FAILED}


def _input(ag, ss, group, keypairs, projects, domains, usage):
    return make_input(ss, ag, group=group, keypairs=dict(zip(KEYS, keypairs, strict=False)), projects=dict(zip(PROJECTS, projects, strict=False)),
                      domains=dict(zip(DOMAINS, domains, strict=False)), deps=DEPS, group_usage=dict(zip(KEYS, usage, strict=False)))


INPUTS = st.builds(_input, AGENTS, SESSIONS, GROUPS, st.tuples(*[KEYPAIR] * len(KEYS)),
                   st.tuples(*[USAGE] * len(PROJECTS)), st.tuples(*[USAGE] * len(DOMAINS)),
                   st.tuples(*[SMALL] * len(KEYS)))


def added_by(result, attr):
    """What counted sessions added per key (system sessions never count against limits)."""
    added = defaultdict(ResourceSlot)
    count = defaultdict(int)
    for d in result.scheduled:
        if d.session.session_type == SessionType.SYSTEM:
            continue
        k = getattr(d.session, attr)
        added[k] = added[k] + d.slots
        count[k] += 1
    return added, count


def check_never_over_allocates_an_agent(inp, r):
    by_agent = defaultdict(ResourceSlot)
    for d in r.scheduled:
        for p in d.placements:
            by_agent[p.agent_id] = by_agent[p.agent_id] + p.slots
    agents = {a.id: a for a in inp.agents}
    for aid, alloc in by_agent.items():
        a = agents[aid]
        assert a.schedulable and a.resource_group == "default"
        for k, v in alloc.items():
            if v > 0:
                assert a.occupied_slots.amount(k) + v <= a.total_slots.amount(k), (aid, k)
        assert r.agent_occupied[aid].nonzero() == (a.occupied_slots + alloc).nonzero()


def check_never_exceeds_limits_or_concurrency(inp, r):
    for attr, table in (("access_key", inp.keypairs), ("project_id", inp.projects), ("domain", inp.domains)):
        added, count = added_by(r, attr)
        for key, alloc in added.items():
            usage = table[key]
            for k, v in alloc.items():
                lim = usage.limit.get(k)
                if v > 0 and lim is not None:
                    assert usage.occupied.amount(k) + v <= lim, (attr, key, k)
            if attr == "access_key" and usage.max_concurrent_sessions is not None:
                assert usage.active_sessions + count[key] <= usage.max_concurrent_sessions


def check_every_session_gets_one_consistent_decision(inp, r):
    assert sorted(ids(r.decisions)) == sorted(s.id for s in inp.pending)
    states = inp.dependencies
    for d in r.decisions:
        s = d.session
        if isinstance(d, Cancelled):
            timed_out = inp.resource_group.pending_timeout and \
                NOW - max(s.created_at, s.starts_at or s.created_at) > timedelta(seconds=inp.resource_group.pending_timeout)
            failed_dep = any(states[x] is DependencyState.FAILED for x in s.dependencies)
            assert (d.reason == "pending-timeout" and timed_out) or (d.reason == "dependency-failed" and failed_dep)
            continue
        assert [p.name for p in d.predicates] == list(PREDICATE_NAMES)
        if isinstance(d, Scheduled):
            # all or nothing, every kernel the raised request, on a fitting candidate agent
            assert all(p.passed for p in d.predicates)
            assert len(d.placements) == s.cluster_size
            assert all(p.slots == s.effective_slots for p in d.placements)
            assert s.effective_slots >= s.requested_slots and s.effective_slots >= s.image_min_slots
            if s.cluster_mode is ClusterMode.SINGLE_NODE:
                assert len(d.agent_ids) == 1
            agents = {a.id: a for a in inp.agents}
            for aid in d.agent_ids:
                assert agents[aid].architecture == s.architecture
                assert not s.designated_agents or aid in s.designated_agents
        else:
            assert isinstance(d, StillPending)
            assert d.failed, "a pending session must say which predicate failed"
            assert d.attempts == s.attempts + 1
            assert d.blocking_retries in (s.blocking_retries, s.blocking_retries + 1)


def check_head_of_line_blocking_stops_everything_after_the_blocker(inp, r):
    blockers = [d for d in r.pending if d.blocking_retries == d.session.blocking_retries + 1]
    assert len(blockers) <= 1
    if blockers:
        (b,) = blockers
        assert b.blocking_retries <= inp.resource_group.retries_to_skip
        assert [p.name for p in b.failed] == ["resource group capacity"]
        order = ids(r.decisions)
        after = order[order.index(b.session.id) + 1:]
        for sid in after:
            d = r.for_session(sid)
            assert isinstance(d, StillPending) and d.blocked_by == b.session.id
    else:
        assert all(d.blocked_by is None for d in r.pending)


@SETTINGS
@given(INPUTS)
def test_invariants_over_random_ticks(inp):
    """Never over-allocates an agent; never exceeds a keypair/project/domain limit or max concurrent
    sessions; one consistent decision per session (all-or-nothing placements on fitting candidates,
    every predicate recorded, a failed predicate for each pending one); head-of-line blocking stops
    everything after the blocker and only it."""
    r = schedule(inp)
    check_never_over_allocates_an_agent(inp, r)
    check_never_exceeds_limits_or_concurrency(inp, r)
    check_every_session_gets_one_consistent_decision(inp, r)
    check_head_of_line_blocking_stops_everything_after_the_blocker(inp, r)


# -- orders -------------------------------------------------------------------------------------
ROOMY_REQUESTS = slot_maps(4, 4)
ROOMY_AGENT = AgentCapacity("a", "default", ResourceSlot({"cpu": 64, "mem": 64 * GIB, "cuda.shares": 40}))


def roomy(kind):
    """Sessions that all fit (plenty of room, no limits): a clean view of the order."""
    def build(ages, keys, requests, n_agents, selection):
        ss = [PendingSession(f"s{i}", NOW - timedelta(seconds=age), keys[i % len(keys)], "p1", "d1", "default",
                             requests[i % len(requests)]) for i, age in enumerate(ages)]
        agents = [dataclasses.replace(ROOMY_AGENT, id=f"a{i}") for i in range(n_agents)]
        return make_input(ss, agents, scheduler=kind, agent_selection=selection)
    return st.builds(build, st.lists(st.integers(0, 10_000), min_size=1, max_size=15, unique=True),
                     st.lists(st.sampled_from(KEYS), min_size=1, max_size=15),
                     st.lists(ROOMY_REQUESTS, min_size=1, max_size=15), st.integers(1, 3),
                     st.sampled_from(list(AgentSelection)))


@settings(max_examples=60, deadline=None)
@given(roomy(SchedulerKind.FIFO))
def test_fifo_schedules_in_creation_order_when_everything_fits(inp):
    r = schedule(inp)
    assert ids(r.scheduled) == [s.id for s in sorted(inp.pending, key=lambda s: s.created_at)]


@settings(max_examples=60, deadline=None)
@given(roomy(SchedulerKind.LIFO))
def test_lifo_schedules_in_reverse_creation_order_when_everything_fits(inp):
    r = schedule(inp)
    assert ids(r.scheduled) == [s.id for s in sorted(inp.pending, key=lambda s: s.created_at, reverse=True)]


@settings(max_examples=60, deadline=None)
@given(roomy(SchedulerKind.DRF), st.dictionaries(st.sampled_from(KEYS), REQUESTS))
def test_drf_always_picks_the_smallest_dominant_share(inp, usage):
    inp = make_input(inp.pending, inp.agents, group=inp.resource_group, group_usage=usage)
    capacity = sum((a.total_slots for a in inp.agents), ResourceSlot())
    used = {k: usage.get(k, ResourceSlot()) for k in KEYS}
    left = list(inp.pending)
    r = schedule(inp)
    for d in r.decisions:
        assert isinstance(d, Scheduled)
        share = {k: used[k].dominant_share(capacity) for k in KEYS}
        best = min((share[s.access_key], s.created_at, s.id) for s in left)
        assert (share[d.session.access_key], d.session.created_at, d.session.id) == best
        used[d.session.access_key] = used[d.session.access_key] + d.slots
        left.remove(d.session)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 8), st.sampled_from(list(SchedulerKind)))
def test_identical_sessions_fill_exactly_the_room(room, n, kind):
    """k identical sessions and room for ``room``: min(k, room) are scheduled — the oldest under
    FIFO, the newest under LIFO — and nothing more."""
    agents = [AgentCapacity("a", "default", ResourceSlot({"cpu": room, "mem": 100 * GIB}))]
    ss = [PendingSession(f"s{i}", NOW - timedelta(seconds=100 - i), "A", "p", "d", "default",
                         ResourceSlot({"cpu": 1, "mem": GIB})) for i in range(n)]
    r = schedule(make_input(ss, agents, scheduler=kind))
    assert len(r.scheduled) == min(n, room)
    if kind is SchedulerKind.FIFO:
        assert ids(r.scheduled) == [f"s{i}" for i in range(min(n, room))]
    elif kind is SchedulerKind.LIFO:
        assert ids(r.scheduled) == [f"s{i}" for i in reversed(range(n))][:min(n, room)]
