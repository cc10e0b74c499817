"""How `workbay up --agents N` splits one machine among agents (pure parts)."""

from pathlib import Path

import pytest

from workbay.lite import agent_configs, agent_ports, lite_config, split_cores, split_port_range


@pytest.mark.parametrize(("cores", "parts", "expected"), [
    ([0, 1], 1, [[0, 1]]),
    ([0, 1], 2, [[0], [1]]),
    (list(range(8)), 3, [[0, 1, 2], [3, 4, 5], [6, 7]]),
    ([0, 1], 3, [[0], [1], [0]]),  # more agents than cores: shares wrap, each keeps one core
])
def test_split_cores(cores, parts, expected):
    assert split_cores(cores, parts) == expected


def test_split_port_range_is_disjoint_and_inside():
    ranges = split_port_range("30000-31999", 4)
    bounds = [tuple(map(int, r.split("-"))) for r in ranges]
    assert bounds[0][0] == 30000 and bounds[-1][1] <= 31999
    assert all(a[1] < b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert split_port_range("", 3) == ["", "", ""]
    with pytest.raises(ValueError):
        split_port_range("30000-30001", 3)


def test_agent_configs_give_each_agent_its_own_id_port_cores_and_ports(tmp_path: Path):
    config = lite_config(tmp_path, 18000)
    assert config.agent.port == 18005 and config.agent.port_range  # lite never lets the engine pick
    agents = agent_configs(config, 2)
    assert len({a.agent.id for a in agents}) == 2
    assert [a.agent.port for a in agents] == [18005, 18006]
    assert agents[0].agent.port_range != agents[1].agent.port_range
    assert all(a.agent.slots["mem"] for a in agents)
    assert agent_configs(config, 1) == [config]


def test_agent_ports_skip_the_inference_listener(tmp_path: Path):
    config = lite_config(tmp_path, 18000)
    assert config.appproxy.inference_port == 18009
    ports = agent_ports(config, 6)
    assert ports == [18005, 18006, 18007, 18008, 18010, 18011]
