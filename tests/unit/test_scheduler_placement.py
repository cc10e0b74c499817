"""Agent selection: dispersed / concentrated, slot-type preference, unschedulable agents,
architecture, designated agents, single-node and multi-node clusters, all-or-nothing."""

from __future__ import annotations

from tests.unit.scheduler_factory import agent, ids, session, slots, tick
from workbay.manager.scheduler.core import (
    PRED_CAPACITY,
    AgentPool,
    AgentSelection,
    ClusterMode,
    Scheduled,
    StillPending,
)


def agent_of(result, sid):
    d = result.for_session(sid)
    assert isinstance(d, Scheduled), d
    return d.agent_ids


def test_dispersed_takes_the_least_loaded_agent():
    agents = [agent("busy", cpu=8, occupied={"cpu": 6}), agent("idle", cpu=8), agent("half", cpu=8, occupied={"cpu": 4})]
    r = tick([session("s", cpu=1)], agents)
    assert agent_of(r, "s") == ("idle",)


def test_concentrated_takes_the_most_loaded_agent_that_fits():
    agents = [agent("busy", cpu=8, occupied={"cpu": 7.5}), agent("idle", cpu=8), agent("half", cpu=8, occupied={"cpu": 4})]
    r = tick([session("s", cpu=1)], agents, agent_selection="concentrated")
    assert agent_of(r, "s") == ("half",)  # busy has only 0.5 cpu free


def test_load_is_the_dominant_utilisation_share_not_absolute_amounts():
    # big: 16 of 64 cpu used (25%); small: 1 of 8 used (12.5%) — dispersed picks small even though big has more free
    agents = [agent("big", cpu=64, mem="256g", occupied={"cpu": 16}), agent("small", cpu=8, mem="32g", occupied={"cpu": 1})]
    assert agent_of(tick([session("s")], agents), "s") == ("small",)
    assert agent_of(tick([session("s")], agents, agent_selection="concentrated"), "s") == ("big",)


def test_dispersed_spreads_a_tick_over_agents():
    agents = [agent(f"a{i}", cpu=4) for i in range(3)]
    r = tick([session(f"s{i}", age=10 - i) for i in range(3)], agents)
    assert sorted(a for d in r.scheduled for a in d.agent_ids) == ["a0", "a1", "a2"]


def test_concentrated_packs_a_tick_onto_one_agent():
    agents = [agent(f"a{i}", cpu=4) for i in range(3)]
    r = tick([session(f"s{i}", age=10 - i) for i in range(4)], agents, agent_selection="concentrated")
    assert [d.agent_ids[0] for d in r.scheduled] == ["a0"] * 4


def test_ties_go_to_the_lowest_agent_id():
    agents = [agent("b"), agent("a"), agent("c")]
    assert agent_of(tick([session("s")], agents), "s") == ("a",)
    assert agent_of(tick([session("s")], agents, agent_selection="concentrated"), "s") == ("a",)


def test_cpu_sessions_prefer_agents_without_accelerators():
    agents = [agent("gpu", cpu=64, mem="256g", cuda_shares=8), agent("cpu", cpu=8, mem="16g", occupied={"cpu": 6})]
    r = tick([session("c", cpu=1), session("g", cuda_shares=1)], agents)
    assert agent_of(r, "c") == ("cpu",)
    assert agent_of(r, "g") == ("gpu",)
    # … but use the GPU agent when no CPU-only agent has room
    r = tick([session("c", cpu=4)], agents)
    assert agent_of(r, "c") == ("gpu",)


def test_unschedulable_agents_are_never_chosen():
    agents = [agent("off", cpu=64, schedulable=False), agent("on", cpu=2)]
    r = tick([session("s1", cpu=2, age=2), session("s2", cpu=2, age=1)], agents, retries_to_skip=0)
    assert agent_of(r, "s1") == ("on",)
    assert isinstance(r.for_session("s2"), StillPending)
    assert "off" not in r.agent_occupied


def test_agents_of_other_groups_are_never_chosen():
    agents = [agent("mine", cpu=1), agent("theirs", cpu=64, group="other")]
    r = tick([session("s", cpu=2)], agents)
    assert isinstance(r.for_session("s"), StillPending)
    assert set(r.agent_occupied) == {"mine"}


def test_agent_without_a_requested_slot_type_does_not_fit():
    r = tick([session("g", cuda_device=1)], [agent("cpu-only", cpu=64)])
    assert isinstance(r.for_session("g"), StillPending)


def test_designated_agents_restrict_candidates_and_keep_preference():
    agents = [agent("a1", cpu=8, occupied={"cpu": 4}), agent("a2", cpu=8, occupied={"cpu": 2}), agent("a3", cpu=8)]
    r = tick([session("s", designated_agents=("a1", "a2"))], agents)
    assert agent_of(r, "s") == ("a2",)
    r = tick([session("s", designated_agents=("a1", "a2"))], agents, agent_selection="concentrated")
    assert agent_of(r, "s") == ("a1",)


def test_single_node_cluster_goes_whole_to_one_agent():
    agents = [agent("a1", cpu=4), agent("a2", cpu=4)]
    r = tick([session("c", cluster_size=3, cpu=1)], agents)
    assert agent_of(r, "c") == ("a1",)
    assert [p.agent_id for p in r.for_session("c").placements] == ["a1"] * 3


def test_single_node_cluster_never_spreads():
    agents = [agent("a1", cpu=2), agent("a2", cpu=2)]
    r = tick([session("c", cluster_size=3, cpu=1)], agents)
    d = r.for_session("c")
    assert isinstance(d, StillPending) and [p.name for p in d.failed] == [PRED_CAPACITY]
    assert all(o.get("cpu", 0) == 0 for o in r.agent_occupied.values())  # nothing half-allocated


def test_multi_node_prefers_one_agent_when_one_can_hold_all():
    agents = [agent("a1", cpu=2), agent("a2", cpu=8)]
    r = tick([session("c", cluster_size=3, cpu=1, cluster_mode=ClusterMode.MULTI_NODE)], agents)
    assert agent_of(r, "c") == ("a2",)


def test_multi_node_spreads_only_when_no_agent_can_hold_all():
    agents = [agent("a1", cpu=2), agent("a2", cpu=2), agent("a3", cpu=1)]
    r = tick([session("c", cluster_size=5, cpu=1, cluster_mode="multi-node")], agents)
    d = r.for_session("c")
    assert isinstance(d, Scheduled)
    assert sorted(p.agent_id for p in d.placements) == ["a1", "a1", "a2", "a2", "a3"]
    assert all(r.agent_occupied[a]["cpu"] == agents[i].total_slots["cpu"] for i, a in enumerate(["a1", "a2", "a3"]))


def test_multi_node_concentrated_packs_kernels():
    agents = [agent("a1", cpu=3), agent("a2", cpu=3), agent("a3", cpu=3)]
    r = tick([session("c", cluster_size=4, cpu=1, cluster_mode="multi-node")], agents, agent_selection="concentrated")
    assert sorted(p.agent_id for p in r.for_session("c").placements) == ["a1", "a1", "a1", "a2"]


def test_multi_node_dispersed_spreads_kernels():
    agents = [agent("a1", cpu=3), agent("a2", cpu=3), agent("a3", cpu=3)]
    r = tick([session("c", cluster_size=4, cpu=1, cluster_mode="multi-node")], agents)
    assert sorted(p.agent_id for p in r.for_session("c").placements) == ["a1", "a1", "a2", "a3"]


def test_multi_node_all_or_nothing():
    agents = [agent("a1", cpu=2), agent("a2", cpu=2)]
    r = tick([session("c", cluster_size=5, cpu=1, cluster_mode="multi-node"), session("s", age=-1, cpu=2)],
             agents, retries_to_skip=0)
    assert isinstance(r.for_session("c"), StillPending)
    assert isinstance(r.for_session("s"), Scheduled)  # the room was not half-taken by the cluster
    assert sum(o.amount("cpu") for o in r.agent_occupied.values()) == 2


def test_multi_node_respects_architecture_and_designation():
    agents = [agent("x1", cpu=1), agent("x2", cpu=1), agent("arm1", cpu=1, arch="aarch64"),
              agent("arm2", cpu=1, arch="aarch64"), agent("arm3", cpu=1, arch="aarch64")]
    r = tick([session("c", cluster_size=2, cpu=1, cluster_mode="multi-node", architecture="aarch64",
                      designated_agents=("arm1", "arm3"))], agents)
    assert sorted(p.agent_id for p in r.for_session("c").placements) == ["arm1", "arm3"]


def test_pool_find_does_not_reserve_and_commit_does():
    pool = AgentPool([agent("a", cpu=2)], "default", AgentSelection.DISPERSED)
    p = pool.find(slots(cpu=2), 1, ClusterMode.SINGLE_NODE, "x86_64")
    assert p is not None and pool.find(slots(cpu=2), 1, ClusterMode.SINGLE_NODE, "x86_64") is not None
    pool.commit(p)
    assert pool.find(slots(cpu=1), 1, ClusterMode.SINGLE_NODE, "x86_64") is None
    assert pool.free_total["cpu"] == 0


def test_failed_shape_cache_answers_bigger_requests_and_not_smaller_ones():
    pool = AgentPool([agent("a", cpu=4, mem="8g")], "default", AgentSelection.DISPERSED)
    assert pool.find(slots(cpu=5, mem="1g"), 1, ClusterMode.SINGLE_NODE, "x86_64") is None
    assert pool.find(slots(cpu=6, mem="2g"), 1, ClusterMode.SINGLE_NODE, "x86_64") is None
    assert pool.find(slots(cpu=4, mem="9g"), 1, ClusterMode.SINGLE_NODE, "x86_64") is None
    assert pool.find(slots(cpu=4, mem="1g"), 1, ClusterMode.SINGLE_NODE, "x86_64") is not None


def test_occupied_over_capacity_is_never_made_worse():
    agents = [agent("over", cpu=4, occupied={"cpu": 6}), agent("ok", cpu=4)]
    r = tick([session("s", cpu=1)], agents, agent_selection="concentrated")
    assert agent_of(r, "s") == ("ok",)
    assert r.agent_occupied["over"]["cpu"] == 6


def test_many_sessions_of_many_shapes_fill_agents_exactly():
    agents = [agent(f"a{i}", cpu=4, mem="4g") for i in range(5)]
    sessions = [session(f"s{i}", age=100 - i, cpu=1 + i % 3, mem="1g") for i in range(20)]
    for sel in ("dispersed", "concentrated"):
        r = tick(sessions, agents, agent_selection=sel, retries_to_skip=0)
        for a in agents:
            occ = r.agent_occupied[a.id]
            assert occ["cpu"] <= 4 and occ["mem"] <= 4 * 1024**3
        assert ids(r.scheduled)[0] == "s0"
