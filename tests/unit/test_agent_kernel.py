"""Pure builders of the agent: container bodies, environment, service ports, stats, config."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from workbay.agent.agent import is_local_address
from workbay.agent.engine import engine_candidates, normalize_arch
from workbay.agent.kernel import (
    PortPool,
    build_container_body,
    cluster_env,
    kernel_environ,
    kernel_service_ports,
    parse_port_range,
    parse_service_ports,
    publish_ip,
    runner_config,
)
from workbay.agent.models import CreateKernels, Execute
from workbay.agent.resources import InsufficientResources
from workbay.agent.stats import compute_stats


def request(**kw):
    base = {"session_id": "sess", "session_name": "demo", "image": "img:1",
            "kernels": [{"kernel_id": "k1", "resource_slots": {"cpu": "2", "mem": "1g"}},
                        {"kernel_id": "k2", "cluster_role": "sub", "cluster_idx": 1,
                         "resource_slots": {"cpu": "2", "mem": "1g"}}]}
    base.update(kw)
    return CreateKernels.model_validate(base)


def test_service_ports_label():
    assert parse_service_ports("jupyter:http:8080,sshd:tcp:2200,multi:tcp:[5000,5001]") == [
        {"name": "jupyter", "protocol": "http", "container_ports": [8080]},
        {"name": "sshd", "protocol": "tcp", "container_ports": [2200]},
        {"name": "multi", "protocol": "tcp", "container_ports": [5000, 5001]}]
    assert parse_service_ports("bad,x:http:notaport,y:http:99999,ok:http:1") == [
        {"name": "ok", "protocol": "http", "container_ports": [1]}]
    assert parse_service_ports(None) == []
    ports = kernel_service_ports({"ai.backend.service-ports": "jupyter:http:8080"}, [8080, 9000])
    assert [p["name"] for p in ports] == ["jupyter", "9000"]  # 8080 is already jupyter's
    assert ports[1]["protocol"] == "preopen"


def test_request_validation():
    r = request()
    assert [k.cluster_hostname for k in r.kernels] == ["main1", "sub1"]
    for bad in [{"kernels": []},
                {"preopen_ports": [80]},
                {"environ": {"1BAD": "x"}},
                {"mounts": [{"source": "relative", "target": "/x"}]},
                {"kernels": [{"kernel_id": "k", "resource_slots": {}},
                             {"kernel_id": "k", "resource_slots": {}}]},
                {"unknown_key": 1}]:
        with pytest.raises(ValidationError):
            request(**bad)
    assert Execute.model_validate({"runId": "r1", "mode": "continue"}).run_id == "r1"


def test_cluster_environment():
    r = request(cluster_hosts=["main1", "sub1", "sub2"], cluster_mode="multi-node")
    env = cluster_env(r, r.kernels[1])
    assert env["BACKENDAI_CLUSTER_HOST"] == "sub1"
    assert env["BACKENDAI_CLUSTER_HOSTS"] == "main1,sub1,sub2"
    assert env["BACKENDAI_CLUSTER_SIZE"] == "3"
    assert env["BACKENDAI_CLUSTER_REPLICAS"] == "main:1,sub:2"
    assert env["BACKENDAI_CLUSTER_LOCAL_RANK"] == "1"
    assert env["BACKENDAI_CLUSTER_MODE"] == "multi-node"
    assert env["BACKENDAI_CLUSTER_ROLE"] == "sub" and env["BACKENDAI_CLUSTER_IDX"] == "1"


def test_environment_precedence():
    r = request(environ={"OMP_NUM_THREADS": "7", "BACKENDAI_KERNEL_ID": "spoof", "X": "1"})
    env = kernel_environ(r, r.kernels[0], D(2), {"CUDA_VISIBLE_DEVICES": "0"}, [])
    assert env["OMP_NUM_THREADS"] == "7"           # user value
    assert env["MKL_NUM_THREADS"] == "2"           # cpu count
    assert env["BACKENDAI_KERNEL_ID"] == "k1"      # not overridable
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["X"] == "1"
    r = request(thread_count=4)
    assert kernel_environ(r, r.kernels[0], D(2), {}, [])["OPENBLAS_NUM_THREADS"] == "4"


def test_container_body():
    r = request(network="net1", mounts=[{"source": "/srv/data", "target": "/data",
                                         "read_only": True}],
                extra_hosts={"sub2": "10.0.0.5"}, batch_timeout=60, session_type="batch")
    k = r.kernels[0]
    body = build_container_body(
        req=r, k=k, image="img:1", agent_id="a1", data_dir="/var/wb", env={"A": "1"},
        host_config={"CpusetCpus": "0,1", "Memory": 2**30},
        service_ports=[{"name": "sshd", "protocol": "tcp", "container_ports": [2200]}],
        runner_dir="/src/runner", ipc_dir="/var/wb/kernels/k1/ipc",
        scratch_dir="/var/wb/scratch/k1", ulimits={"nofile": 20000, "nproc": 32768},
        host_ip="127.0.0.1", host_ports=None, slots={"cpu": D(2), "mem": D(2**30)},
        allocations={"cpu": {"cores": [0, 1]}})
    hc = body["HostConfig"]
    assert body["Entrypoint"] == ["python3", "/opt/workbay/runner/entry.py"]
    assert body["Hostname"] == "main1" and body["Env"] == ["A=1"]
    assert hc["Init"] is True and hc["CpusetCpus"] == "0,1" and hc["Memory"] == 2**30
    assert {"Name": "nofile", "Soft": 20000, "Hard": 20000} in hc["Ulimits"]
    mounts = {m["Target"]: m for m in hc["Mounts"]}
    assert mounts["/opt/workbay/runner"]["ReadOnly"] is True
    assert mounts["/home/work"]["Source"] == "/var/wb/scratch/k1"
    assert mounts["/data"]["ReadOnly"] is True
    assert hc["PortBindings"] == {"2200/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert hc["NetworkMode"] == "net1" and hc["ExtraHosts"] == ["sub2:10.0.0.5"]
    assert body["NetworkingConfig"]["EndpointsConfig"]["net1"]["Aliases"] == ["main1"]
    labels = body["Labels"]
    assert labels["ai.backend.kernel-id"] == "k1" and labels["ai.backend.agent-id"] == "a1"
    assert labels["ai.backend.session-type"] == "batch"
    assert labels["ai.backend.resource-slots"] == '{"cpu": "2", "mem": "1073741824"}'
    assert labels["workbay.batch-timeout"] == "60.0"
    cfg = runner_config(r, k, {"A": "1"}, [], {"cpu": "2"}, {"private_key": "p",
                                                            "public_key": "q"})
    assert cfg["session_type"] == "batch" and cfg["uid"] == 1000 and cfg["sudo"] is False
    assert cfg["cluster"] is None


def test_ports():
    assert parse_port_range("") is None
    assert parse_port_range("30000-30002") == (30000, 30002)
    for bad in ("x", "5-1", "0-10"):
        with pytest.raises(ValueError):
            parse_port_range(bad)
    pool = PortPool(30000, 30002)
    assert pool.take("a", 2) == [30000, 30001]
    with pytest.raises(InsufficientResources):
        pool.take("b", 2)
    pool.release("a")
    pool.restore("c", [30001])
    assert pool.take("b", 2) == [30002, 30000]


def test_a_freed_host_port_is_reused_last():
    """A replacement session must not get the port a dead one had while clients still hold it."""
    pool = PortPool(30000, 30003)
    assert pool.take("old", 1) == [30000]
    pool.release("old")
    assert pool.take("new", 1) == [30001]
    assert pool.take("next", 2) == [30002, 30003]
    assert pool.take("last", 1) == [30000]


def test_stats_from_two_samples():
    def sample(cpu_ns, mem=100):
        return {"cpu_stats": {"cpu_usage": {"total_usage": cpu_ns}},
                "memory_stats": {"usage": mem, "limit": 1000},
                "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}},
                "blkio_stats": {"io_service_bytes_recursive": [
                    {"op": "Read", "value": 5}, {"op": "Write", "value": 7}]}}
    s = compute_stats(sample(3_000_000_000), 12.0, sample(1_000_000_000), 10.0, 2)
    assert s["cpu_util"]["current"] == "100" and s["cpu_util"]["pct"] == "50"
    assert s["cpu_util"]["capacity"] == "200"
    assert s["cpu_used"]["current"] == "3000"
    assert s["mem"] == {"current": "100", "capacity": "1000", "pct": "10", "unit_hint": "bytes"}
    assert s["io_read"]["current"] == "5" and s["io_write"]["current"] == "7"
    assert s["net_rx"]["current"] == "10" and s["net_tx"]["current"] == "20"
    first = compute_stats({"blkio_stats": {"io_service_bytes_recursive": []}}, 1.0, None, None,
                          1, io_fallback=(1, 2))
    assert first["cpu_util"]["current"] is None and first["io_write"]["current"] == "2"


def test_engine_selection():
    assert engine_candidates("tcp://h:2375", {}) == ["tcp://h:2375"]
    assert engine_candidates("", {"DOCKER_HOST": "unix:///x.sock"}) == ["unix:///x.sock"]
    assert engine_candidates("", {}) == ["unix:///run/podman/podman.sock",
                                         "unix:///var/run/docker.sock"]
    assert normalize_arch("amd64") == "x86_64" and normalize_arch("arm64") == "aarch64"


def test_published_ports_bind_to_the_container_host_when_the_node_holds_it():
    held = {"192.0.2.2", "2001:db8::2"}
    assert publish_ip("127.0.0.1", held.__contains__) == "127.0.0.1"
    assert publish_ip("localhost", held.__contains__) == "127.0.0.1"
    assert publish_ip("::1", held.__contains__) == "::1"
    assert publish_ip("192.0.2.2", held.__contains__) == "192.0.2.2"      # not the other interfaces
    assert publish_ip("2001:db8::2", held.__contains__) == "2001:db8::2"
    assert publish_ip("203.0.113.7", held.__contains__) == "0.0.0.0"      # NAT / floating address
    assert publish_ip("node1.example.test", held.__contains__) == "0.0.0.0"  # a DNS name


def test_is_local_address():
    assert is_local_address("127.0.0.1")
    assert not is_local_address("203.0.113.7")
