"""UI-4 utilization: what the nodes really use, from the agents' heartbeat node stats."""

from __future__ import annotations

from workbay.manager.services.resource_usage import measured_utilization


def node(cpu_pct=None, mem_used=None, mem_total=None) -> dict:
    stats: dict = {}
    if cpu_pct is not None:
        stats["cpu_util"] = {"pct": str(cpu_pct)}
    if mem_total is not None:
        stats["mem"] = {"current": str(mem_used), "capacity": str(mem_total), "pct": "0"}
    return {"node": stats}


def test_cpu_is_weighted_by_cores_and_memory_by_bytes():
    got = measured_utilization([
        ({"cpu": "6"}, node(cpu_pct=10, mem_used=1 << 30, mem_total=4 << 30)),
        ({"cpu": "2"}, node(cpu_pct=90, mem_used=3 << 30, mem_total=4 << 30)),
    ])
    assert got == {"cpu": 30.0, "mem": 50.0}        # (6·10 + 2·90) / 8; 4 GiB of 8 GiB


def test_agents_without_stats_are_left_out_and_none_means_unknown():
    assert measured_utilization([]) == {"cpu": None, "mem": None}
    assert measured_utilization([({"cpu": "4"}, {}), ({"cpu": "4"}, {"node": "garbage"})]) == {"cpu": None, "mem": None}
    got = measured_utilization([({"cpu": "4"}, {}), ({}, node(cpu_pct="12.5"))])
    assert got == {"cpu": 12.5, "mem": None}                 # no cpu slot → weight 1
    assert measured_utilization([({"cpu": "1"}, node(cpu_pct="NaN", mem_used=1, mem_total=0))]) == {"cpu": None, "mem": None}
