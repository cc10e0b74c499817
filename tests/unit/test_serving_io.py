"""The serving reconciler's I/O helpers (manager/compute/serving.py, serving_probe.py): reading a
replica's launch spec, the published model port, figures from kernels and model servers, and the
health check through a real app gate (runner/gate.py) to a small HTTP app."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.support.ports import free_port
from workbay.manager.compute import serving_probe as probe
from workbay.manager.compute.serving import (
    CONNECT_CHECK,
    health_check_of,
    kernel_metric,
    model_port,
    parse_prometheus,
    replica_request,
    replica_session_name,
)
from workbay.manager.models.serving import ModelService
from workbay.manager.serving.plan import HealthCheck
from workbay.runner.gate import Gate

SECRET = "serving-io-test-secret"


@pytest.mark.parametrize(("spec", "hc"), [
    (None, CONNECT_CHECK),
    ({"port": 8000}, CONNECT_CHECK),
    ({"health_check": None}, CONNECT_CHECK),  # the command variant without a health path
    ({"health_check": {"path": "/health", "interval": 2, "max_retries": 3, "max_wait_time": 1,
                       "expected_status_code": 204, "initial_delay": 5}},
     HealthCheck("/health", 2.0, 3, 1.0, 204, 5.0)),
    ({"health_check": {"path": "/h"}}, HealthCheck("/h")),
    ({"health_check": {"path": "/h", "interval": "x"}}, CONNECT_CHECK),
])
def test_health_check_of_the_launch_spec(spec: dict[str, Any] | None, hc: HealthCheck) -> None:
    assert health_check_of(spec) == hc


@pytest.mark.parametrize(("spec", "port"), [(None, None), ({"port": 8000}, 8000), ({"port": True}, None),
                                            ({"port": "8000"}, None)])
def test_model_port(spec: dict[str, Any] | None, port: int | None) -> None:
    assert model_port(spec) == port


@pytest.mark.parametrize(("ports", "target"), [
    (None, None),
    ([{"name": "jupyter", "container_ports": [8888], "host_ports": [30001], "kernel_host": "h"}], None),
    ([{"name": "8000", "container_ports": [8000], "host_ports": [30002], "kernel_host": "10.0.0.2"}],
     probe.Target("10.0.0.2", 30002)),
    ([{"name": "x", "container_ports": [7000, 8000], "host_ports": [30003, 30004], "kernel_host": "h"}],
     probe.Target("h", 30004)),
    ([{"name": "8000", "container_ports": [8000], "host_ports": [None], "kernel_host": "h"}], None),  # unpublished
    ([{"name": "8000", "container_ports": [8000], "host_ports": [30005]}], None),  # no host yet
])
def test_model_target(ports: list[Any] | None, target: probe.Target | None) -> None:
    assert probe.model_target(ports, 8000) == target


def test_parse_prometheus_sums_every_label_set() -> None:
    text = """# HELP model_requests_running Requests in flight.
# TYPE model_requests_running gauge
model_requests_running 3
vllm:num_requests_waiting{model_name="m",engine="0"} 2.5
vllm:num_requests_waiting{model_name="m",engine="1"} 1.5 1700000000000
weird{label="a } b"} 4
nan_value NaN
"""
    assert parse_prometheus(text) == {"model_requests_running": 3.0, "vllm:num_requests_waiting": 4.0,
                                      "weird": 4.0}


def test_parse_prometheus_keeps_what_precedes_a_malformed_line() -> None:
    assert parse_prometheus("good 1\nbad_value abc\nlater 2\n") == {"good": 1.0}
    assert parse_prometheus("") == {}


@pytest.mark.parametrize(("name", "value"), [
    ("cpu_util", Decimal("12.5")), ("cpu_util.pct", Decimal("6.25")), ("mem", Decimal("1048576")),
    ("mem.capacity", None), ("gpu_util", None),
])
def test_kernel_metric(name: str, value: Decimal | None) -> None:
    stat = {"cpu_util": {"current": "12.5", "pct": "6.25"}, "mem": {"current": "1048576", "capacity": None}}
    assert kernel_metric(stat, name) == value


def test_a_replica_is_an_inference_session_of_the_owner_with_its_folders() -> None:
    folder, extra, project = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    svc = ModelService(name="my-svc", image="img:1", architecture="x86_64", cluster_size=1,
                       cluster_mode="single-node", project_id=project, resource_group="rg",
                       resource_slots={"cpu": "1", "mem": "268435456"}, resource_opts={}, environ={"A": "1"},
                       model_folder_id=folder, model_mount_destination="/models",
                       extra_mounts=[{"folder_id": str(extra), "mount_destination": "/data"}],
                       bootstrap_script=None, tag=None)
    rid = uuid.uuid4()
    req = replica_request(svc, replica_session_name("my-svc", rid))
    assert req.type == "inference" and req.enqueue_only and not req.reuse_if_exists
    assert req.name == f"my-svc-r{rid.hex[:8]}" and req.project == str(project)
    assert req.config.mounts == [str(folder), str(extra)]
    assert req.config.mount_map == {str(folder): "/models", str(extra): "/data"}
    assert req.config.resource_group == "rg" and req.config.environ == {"A": "1"}


def test_replica_session_names_stay_valid_for_long_service_names() -> None:
    name = replica_session_name("s" * 64, uuid.uuid4())
    assert len(name) <= 64


async def _app(status: int, body: bytes, delay: float = 0.0) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay)
        writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()
        writer.close()
    port = free_port()
    return await asyncio.start_server(handle, "127.0.0.1", port), port


@pytest.mark.parametrize(("status", "delay", "path", "ok", "detail"), [
    (200, 0.0, "/health", True, ""),
    (503, 0.0, "/health", False, "answered 503, not 200"),
    (200, 1.0, "/health", False, "took longer than"),
    (200, 0.0, None, True, ""),  # no path: the gate says the app accepts connections
])
async def test_health_check_through_the_gate(status: int, delay: float, path: str | None, ok: bool,
                                            detail: str) -> None:
    server, port = await _app(status, b'{"status":"ok"}', delay)
    gate = Gate(free_port(), port, SECRET)
    await gate.start("127.0.0.1")
    try:
        target = probe.Target("127.0.0.1", gate.gate_port)
        result = await probe.health_check(target, SECRET, path, 200, 0.5)
        assert result.ok is ok and detail in result.detail
        if ok and path:
            assert await probe.http_get(target, SECRET, path, 2) == (200, b'{"status":"ok"}')
        # the wrong secret is refused by the gate: never healthy
        assert not (await probe.health_check(target, "wrong", path, 200, 0.5)).ok
    finally:
        gate.close()
        server.close()


async def test_nothing_listening_is_unhealthy() -> None:
    result = await probe.health_check(probe.Target("127.0.0.1", free_port()), SECRET, "/health", 200, 0.5)
    assert not result.ok and "failed" in result.detail
