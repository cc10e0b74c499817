"""Every predicate of the pure scheduler, passing and failing, with its message; limits count what
the same tick already scheduled; image minimums raise requests; loud errors on bad input."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.unit.scheduler_factory import GIB, NOW, agent, ids, make_input, predicate, session, slots, tick
from workbay.common.slots import ResourceSlot
from workbay.manager.scheduler.core import (
    PRED_ARCHITECTURE,
    PRED_CAPACITY,
    PRED_CONCURRENCY,
    PRED_DEPENDENCIES,
    PRED_DESIGNATED_AGENT,
    PRED_DOMAIN_LIMIT,
    PRED_KEYPAIR_LIMIT,
    PRED_PROJECT_LIMIT,
    PRED_SESSION_TYPE,
    PRED_START_TIME,
    PREDICATE_NAMES,
    DependencyState,
    KeypairQuota,
    PendingSession,
    ResourceGroupPolicy,
    Scheduled,
    SessionType,
    StillPending,
    Usage,
    schedule,
)

BIG = [agent("a1", cpu=64, mem="256g", cuda_shares=8)]


def only(result):
    (d,) = result.decisions
    return d


def test_all_predicates_recorded_when_scheduled():
    d = only(tick([session("s1")], BIG))
    assert isinstance(d, Scheduled)
    assert [p.name for p in d.predicates] == list(PREDICATE_NAMES)
    assert all(p.passed and p.message for p in d.predicates)


def test_all_predicates_recorded_when_pending():
    d = only(tick([session("s1", starts_at=NOW + timedelta(hours=1), session_type="batch")], BIG))
    assert isinstance(d, StillPending)
    assert [p.name for p in d.predicates] == list(PREDICATE_NAMES)
    assert [p.name for p in d.failed] == [PRED_START_TIME]
    assert d.attempts == 1 and d.blocking_retries == 0 and d.blocked_by is None
    assert "reserved start time" in d.message


# -- reserved start time ------------------------------------------------------------------------
def test_reserved_start_time_in_the_future_waits():
    d = only(tick([session("s1", session_type="batch", starts_at=NOW + timedelta(seconds=1))], BIG))
    p = predicate(d, PRED_START_TIME)
    assert not p.passed and "2025-06-01T12:00:01" in p.message


def test_reserved_start_time_reached_schedules():
    for starts in (NOW, NOW - timedelta(minutes=5)):
        d = only(tick([session("s1", session_type="batch", starts_at=starts)], BIG))
        assert isinstance(d, Scheduled)
        assert "reached" in predicate(d, PRED_START_TIME).message


def test_reserved_start_never_blocks_others():
    r = tick([session("later", age=10, session_type="batch", starts_at=NOW + timedelta(hours=1)),
              session("now", age=5)], BIG, retries_to_skip=5)
    assert ids(r.scheduled) == ["now"]


# -- allowed session types ----------------------------------------------------------------------
def test_allowed_session_types():
    group = ResourceGroupPolicy("default", allowed_session_types={"interactive"})
    r = tick([session("b", session_type="batch"), session("i"), session("inf", session_type=SessionType.INFERENCE)],
             BIG, group=group)
    assert ids(r.scheduled) == ["i"]
    p = predicate(r.for_session("b"), PRED_SESSION_TYPE)
    assert not p.passed and "allows only interactive" in p.message
    assert not predicate(r.for_session("inf"), PRED_SESSION_TYPE).passed


# -- dependencies -------------------------------------------------------------------------------
def test_dependencies_waiting_and_succeeded():
    r = tick([session("wait", dependencies=("d1", "d2")), session("go", dependencies=("d2",))], BIG,
             deps={"d1": DependencyState.WAITING, "d2": DependencyState.SUCCEEDED})
    assert ids(r.scheduled) == ["go"]
    p = predicate(r.for_session("wait"), PRED_DEPENDENCIES)
    assert not p.passed and "d1" in p.message and "d2" not in p.message
    assert predicate(r.for_session("go"), PRED_DEPENDENCIES).passed


def test_missing_dependency_state_is_an_error():
    with pytest.raises(ValueError, match="dependency"):
        tick([session("s", dependencies=("nope",))], BIG)


# -- concurrency --------------------------------------------------------------------------------
def test_concurrency_counts_active_and_this_tick():
    kp = {"AK1": KeypairQuota(max_concurrent_sessions=3, active_sessions=1)}
    r = tick([session(f"s{i}", age=10 - i) for i in range(4)], BIG, keypairs=kp)
    assert ids(r.scheduled) == ["s0", "s1"]
    p = predicate(r.for_session("s2"), PRED_CONCURRENCY)
    assert not p.passed and "3 of 3" in p.message


def test_concurrency_zero_and_unlimited():
    r = tick([session("s", key="zero"), session("t", key="free")], BIG,
             keypairs={"zero": KeypairQuota(max_concurrent_sessions=0), "free": KeypairQuota(active_sessions=1000)})
    assert ids(r.scheduled) == ["t"]
    assert "no limit" in predicate(r.for_session("t"), PRED_CONCURRENCY).message


def test_concurrency_is_per_keypair():
    kp = {"A": KeypairQuota(max_concurrent_sessions=1), "B": KeypairQuota(max_concurrent_sessions=1)}
    r = tick([session("a1", key="A", age=3), session("a2", key="A", age=2), session("b1", key="B", age=1)],
             BIG, keypairs=kp)
    assert ids(r.scheduled) == ["a1", "b1"]


def test_system_sessions_are_not_counted_against_limits():
    """SFTP / file-browser sessions (AP-7) start even when the owner is at every limit, and do not
    use up the owner's room for ordinary sessions."""
    kp = {"AK1": KeypairQuota(limit=slots(cpu=1, mem="1g"), occupied=slots(cpu=1, mem="1g"),
                              max_concurrent_sessions=1, active_sessions=1)}
    r = tick([session("sftp", age=2, session_type="system"), session("work", age=1)], BIG, keypairs=kp)
    assert ids(r.scheduled) == ["sftp"]
    assert predicate(r.for_session("sftp"), PRED_CONCURRENCY).message == "system sessions are not counted"
    assert not predicate(r.for_session("work"), PRED_CONCURRENCY).passed


# -- resource limits ----------------------------------------------------------------------------
@pytest.mark.parametrize("scope,pred", [("keypair", PRED_KEYPAIR_LIMIT), ("project", PRED_PROJECT_LIMIT),
                                        ("domain", PRED_DOMAIN_LIMIT)])
def test_resource_limits_count_occupied_and_this_tick(scope, pred):
    limit, occupied = slots(cpu=4, mem="100g"), slots(cpu=1)
    kw = {"keypair": {"keypairs": {"AK1": KeypairQuota(limit=limit, occupied=occupied)}},
          "project": {"projects": {"p1": Usage(limit, occupied)}},
          "domain": {"domains": {"d1": Usage(limit, occupied)}}}[scope]
    r = tick([session("s1", age=3, cpu=2), session("s2", age=2, cpu=2), session("s3", age=1, cpu=1)], BIG, **kw)
    assert ids(r.scheduled) == ["s1", "s3"]  # 1 + 2 = 3; s2 would make 5 > 4; s3 makes 4
    p = predicate(r.for_session("s2"), pred)
    assert not p.passed
    assert p.message.startswith(f"{scope} resource limit exceeded") and "cpu 3 in use + 2 requested > limit 4" in p.message
    assert predicate(r.for_session("s1"), pred).passed


def test_limit_missing_slot_and_infinity_mean_unlimited():
    kp = {"AK1": KeypairQuota(limit=ResourceSlot({"mem": "Infinity", "cuda.shares": 1}))}
    r = tick([session("s1", cpu=60, mem="200g")], BIG, keypairs=kp)
    assert ids(r.scheduled) == ["s1"]


def test_limit_zero_forbids_the_slot_only():
    kp = {"AK1": KeypairQuota(limit=slots(cuda_shares=0))}
    r = tick([session("gpu", cuda_shares=1), session("cpu")], BIG, keypairs=kp)
    assert ids(r.scheduled) == ["cpu"]
    assert "cuda.shares" in predicate(r.for_session("gpu"), PRED_KEYPAIR_LIMIT).message


def test_limit_lowered_below_use_blocks_only_the_slots_requested():
    kp = {"AK1": KeypairQuota(limit=slots(cpu=2, mem="1g"), occupied=slots(cpu=1, mem="4g"))}
    r = tick([session("s1", cpu=1, mem=0)], BIG, keypairs=kp)
    assert ids(r.scheduled) == ["s1"]


def test_limits_are_per_scope_key():
    projects = {"p1": Usage(slots(cpu=2)), "p2": Usage(slots(cpu=2))}
    r = tick([session("a", project="p1", cpu=2, age=3), session("b", project="p1", cpu=1, age=2),
              session("c", project="p2", cpu=2, age=1)], BIG, projects=projects)
    assert ids(r.scheduled) == ["a", "c"]


def test_cluster_sessions_count_every_kernel_against_limits():
    kp = {"AK1": KeypairQuota(limit=slots(cpu=5))}
    r = tick([session("c", cpu=2, cluster_size=3)], BIG, keypairs=kp)
    assert isinstance(r.for_session("c"), StillPending)
    assert "6 requested" in predicate(r.for_session("c"), PRED_KEYPAIR_LIMIT).message


def test_missing_usage_entries_are_errors():
    s = session("s")
    base = make_input([s], BIG)
    for field in ("keypairs", "projects", "domains"):
        inp = base.__class__(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, field: {}})
        with pytest.raises(ValueError, match=field.rstrip("s").replace("keypair", "keypair")):
            schedule(inp)


# -- architecture / designated agent ------------------------------------------------------------
def test_architecture_must_match():
    agents = [agent("x", arch="x86_64"), agent("arm", arch="aarch64")]
    r = tick([session("a", architecture="aarch64"), session("x"), session("r", architecture="riscv64")], agents)
    assert [d.placements[0].agent_id for d in r.scheduled] == ["arm", "x"]
    p = predicate(r.for_session("r"), PRED_ARCHITECTURE)
    assert not p.passed and "riscv64" in p.message and "aarch64, x86_64" in p.message
    assert not predicate(r.for_session("r"), PRED_CAPACITY).passed


def test_designated_agent():
    agents = [agent("a1"), agent("a2"), agent("off", schedulable=False), agent("arm", arch="aarch64"),
              agent("other", group="gpu")]
    r = tick([session("d", designated_agents=("a2",))], agents)
    assert r.scheduled[0].placements[0].agent_id == "a2"
    assert "a2" in predicate(r.scheduled[0], PRED_DESIGNATED_AGENT).message
    for target, words in [("off", "not schedulable"), ("ghost", "does not exist"), ("arm", "is aarch64"),
                          ("other", "resource group 'gpu'")]:
        d = only(tick([session("d", designated_agents=(target,))], agents))
        p = predicate(d, PRED_DESIGNATED_AGENT)
        assert isinstance(d, StillPending) and not p.passed and words in p.message, (target, p.message)


def test_designated_agent_without_room_waits_even_if_others_have_room():
    agents = [agent("a1", cpu=1), agent("a2", cpu=32)]
    d = only(tick([session("d", cpu=2, designated_agents=("a1",))], agents))
    assert isinstance(d, StillPending)
    assert [p.name for p in d.failed] == [PRED_CAPACITY]


# -- image minimum ------------------------------------------------------------------------------
def test_image_minimum_raises_a_smaller_request_never_lowers():
    d = only(tick([session("s", cpu=1, mem="512m", image_min_slots=slots(cpu="0.5", mem="1g", cuda_shares=0))],
                  BIG))
    assert d.placements[0].slots == ResourceSlot({"cpu": 1, "mem": GIB, "cuda.shares": 0})
    s = session("s", cpu=4, mem="8g", image_min_slots=slots(mem="2g"))
    assert s.effective_slots == slots(cpu=4, mem="8g")
    assert s.total_slots == slots(cpu=4, mem="8g")


def test_image_minimum_counts_for_capacity_and_limits():
    kp = {"AK1": KeypairQuota(limit=slots(mem="3g"))}
    d = only(tick([session("s", mem="1g", image_min_slots=slots(mem="4g"))], BIG, keypairs=kp))
    assert isinstance(d, StillPending) and not predicate(d, PRED_KEYPAIR_LIMIT).passed
    d = only(tick([session("s", mem="1g", image_min_slots=slots(mem="32g"))], [agent("a", mem="16g")]))
    assert isinstance(d, StillPending) and [p.name for p in d.failed] == [PRED_CAPACITY]


# -- capacity -----------------------------------------------------------------------------------
def test_capacity_message_names_the_request_and_what_is_free():
    d = only(tick([session("s", cpu=2, mem="4g", cuda_shares=1)], [agent("a", cpu=8, mem="16g", cuda_shares="0.5")]))
    p = predicate(d, PRED_CAPACITY)
    assert not p.passed
    assert "cpu 2, cuda.shares 1, mem 4 GiB" in p.message
    assert "free in the group: cpu 8, cuda.shares 0.5, mem 16 GiB" in p.message


def test_zero_slots_need_no_agent_slot():
    d = only(tick([session("s", cpu=1, cuda_shares=0)], [agent("cpu-only")]))
    assert isinstance(d, Scheduled)


def test_decimals_are_exact():
    agents = [agent("a", cuda_shares="1")]
    r = tick([session(f"s{i}", age=10 - i, cuda_shares="0.1", cpu=0, mem=0) for i in range(11)], agents,
             retries_to_skip=0)
    assert len(r.scheduled) == 10  # 10 × 0.1 == 1 exactly; floats would say 0.9999999999999999
    assert r.agent_occupied["a"]["cuda.shares"] == Decimal("1.0")


# -- input validation ---------------------------------------------------------------------------
def test_bad_input_fails_loudly():
    with pytest.raises(ValueError, match="scheduler"):
        ResourceGroupPolicy("g", scheduler="random")
    with pytest.raises(ValueError, match="agent selection"):
        ResourceGroupPolicy("g", agent_selection="roundrobin")
    with pytest.raises(ValueError, match="session type"):
        ResourceGroupPolicy("g", allowed_session_types={"weird"})
    with pytest.raises(ValueError, match="at least one"):
        ResourceGroupPolicy("g", allowed_session_types=set())
    with pytest.raises(ValueError):
        ResourceGroupPolicy("g", pending_timeout=-1)
    with pytest.raises(ValueError):
        ResourceGroupPolicy("g", retries_to_skip=-1)
    with pytest.raises(ValueError, match="cluster_size"):
        session("s", cluster_size=0)
    with pytest.raises(ValueError, match="cluster mode"):
        session("s", cluster_mode="mesh")
    with pytest.raises(ValueError, match="finite"):
        PendingSession("s", NOW, "a", "p", "d", "default", ResourceSlot({"cpu": -1}))
    with pytest.raises(ValueError, match="resource group"):
        tick([session("s", group="other")], BIG)
    with pytest.raises(ValueError, match="twice"):
        tick([session("s"), session("s")], BIG)
    with pytest.raises(ValueError, match="twice"):
        tick([session("s")], [agent("a"), agent("a")])


def test_string_enums_are_accepted():
    g = ResourceGroupPolicy("g", scheduler="drf", agent_selection="concentrated", allowed_session_types=["batch"])
    assert g.scheduler == "drf" and g.agent_selection == "concentrated"
    assert g.allowed_session_types == frozenset({SessionType.BATCH})
