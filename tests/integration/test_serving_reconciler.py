"""The serving reconciler's passes against a real database (SQLite and PostgreSQL, with its advisory
lock), without containers: replica sessions are rows a fake ``SessionService.create`` writes, each
"published" at a real app gate (runner/gate.py) in front of a small HTTP app whose health the test
flips; the app-proxy is a fake that records the routing tables and serves figures.  Passes run
with explicit times, so backoff, delays and cooldowns are exact."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.integration.test_folders import new_user
from tests.integration.test_services_api import join_default_project
from tests.support.ports import free_port
from workbay.manager.compute.serving import ServingReconciler
from workbay.manager.models import Image
from workbay.manager.models.compute import ComputeSession, Kernel
from workbay.manager.models.serving import AutoScalingRule, ModelService, Route, ServiceError, ServiceToken
from workbay.manager.services.model_services import ServingService
from workbay.manager.services.session_apps import app_secret
from workbay.manager.serving.definition import HealthCheck
from workbay.manager.serving.runtimes import ReplicaSpec
from workbay.runner.gate import Gate

PORT = 8000
SPEC = ReplicaSpec(start_command=["python3", "server.py"], port=PORT, health_check=HealthCheck(
    path="/health", interval=1.0, max_retries=2, max_wait_time=1.0, initial_delay=1.0))


class App:
    """The model server of every fake replica: /health answers 200 or 503."""

    def __init__(self) -> None:
        self.healthy = True
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                status = 200 if self.healthy or b"/metrics" in head else 503
                body = b"model_requests_running 7\n" if b"/metrics" in head else b"ok"
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n%s" % (status, len(body), body))
                await writer.drain()
            finally:
                writer.close()
        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port)


@dataclass
class Created:
    id: uuid.UUID


class FakeSessions:
    """``SessionService.create``: a RUNNING session row with its main kernel published at a gate."""

    def __init__(self, h: Any, app: App) -> None:
        self.h, self.app = h, app
        self.started_at = datetime.now(UTC)
        self.gates: list[Gate] = []
        self.fail = False

    async def create(self, actor: Any, req: Any, system: bool = False, replica: Any = None) -> Created:
        if self.fail:
            raise ValueError("no room")
        sid = uuid.uuid4()
        gate = Gate(free_port(), self.app.port, app_secret(self.h.state.ctx.config, sid))
        await gate.start("127.0.0.1")
        self.gates.append(gate)
        async with self.h.state.ctx.db.begin() as s:
            s.add(ComputeSession(id=sid, name=req.name, session_type="inference", status="RUNNING",
                                 access_key=actor.access_key, user_id=actor.user_id,
                                 project_id=uuid.UUID(req.project), domain_name=actor.domain_name,
                                 resource_group=req.config.resource_group, image=req.image,
                                 model_service=replica.model_service, started_at=self.started_at,
                                 mounts=[], status_history=[]))
            await s.flush()
            s.add(Kernel(session_id=sid, cluster_role="main", status="RUNNING", agent_addr="http://fake",
                         last_stat={"cpu_util": {"current": "80"}},
                         service_ports=[{"name": str(PORT), "protocol": "preopen", "container_ports": [PORT],
                                         "host_ports": [gate.gate_port], "kernel_host": "127.0.0.1"}]))
        return Created(sid)


class FakeKernels:
    def __init__(self, h: Any) -> None:
        self.h = h
        self.terminated: list[uuid.UUID] = []

    async def terminate_session(self, session_id: uuid.UUID, reason: str, forced: bool = False) -> None:
        self.terminated.append(session_id)
        await end_session(self.h, session_id, "TERMINATED", reason)

    async def logs(self, kernel: Kernel) -> str:
        return "\n".join(f"line {i}" for i in range(80)) + "\nTraceback: the model cannot load"


class FakeSpecs:
    async def replica_spec(self, folder: ModelService) -> ReplicaSpec:
        return SPEC


class FakeProxy:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.figures: dict[str, Any] = {}

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        self.calls.append((method, path, kw.get("json")))
        if method == "GET":
            return {"services": self.figures}
        return None

    def tables(self, sid: uuid.UUID) -> list[dict[str, Any]]:
        return [body for m, p, body in self.calls if m == "PUT" and p == f"/v1/services/{sid}"]


async def end_session(h: Any, session_id: uuid.UUID, status: str, info: str, exit_code: int | None = None) -> None:
    async with h.state.ctx.db.begin() as s:
        sess = await s.get(ComputeSession, session_id)
        sess.status, sess.status_info, sess.exit_code = status, info, exit_code


@pytest.fixture(scope="module")
async def world(manager):
    h = manager
    await h.state.serving_reconciler.stop()  # this module drives its own passes
    if not h.state.ctx.config.secrets.appproxy:  # replicas' app secrets derive from it
        h.state.ctx.config.secrets.appproxy = "serving-reconciler-test-secret"
    user, _ = await new_user(h)
    await join_default_project(h, user)
    image = f"cr.test/serving/python-{uuid.uuid4().hex[:6]}:3.11"
    async with h.state.ctx.db.begin() as s:
        s.add(Image(name=image, image_registry="cr.test", tag="3.11"))
    app = App()
    await app.start()
    sessions, kernels, proxy = FakeSessions(h, app), FakeKernels(h), FakeProxy()
    rec = ServingReconciler(h.state.ctx, sessions, kernels, FakeSpecs(), proxy, ServingService.replica_limit)
    default = next(p for p in (await h.admin().get("/admin/projects", params={"domain": "default"}))["items"]
                   if p["name"] == "default")
    yield {"h": h, "user": user, "image": image, "app": app, "sessions": sessions, "kernels": kernels,
           "proxy": proxy, "rec": rec, "project": default["id"]}
    for gate in sessions.gates:
        gate.close()
    if app.server is not None:
        app.server.close()


async def new_service(w: dict[str, Any], desired: int = 2, **fields: Any) -> uuid.UUID:
    sid = uuid.uuid4()
    async with w["h"].state.ctx.db.begin() as s:
        s.add(ModelService(id=sid, name=f"svc-{sid.hex[:8]}", owner_user_id=uuid.UUID(w["user"]["uuid"]),
                           owner_access_key=w["user"]["keypair"]["access_key"],
                           created_by=uuid.UUID(w["user"]["uuid"]), project_id=uuid.UUID(w["project"]),
                           domain_name="default", resource_group="default", model_folder_id=uuid.uuid4(),
                           image=w["image"], resource_slots={"cpu": "1", "mem": "268435456"}, extra_mounts=[],
                           environ={}, resource_opts={}, live_stat={}, desired_replicas=desired,
                           status="PROVISIONING", **fields))
    return sid


async def rows(w: dict[str, Any], sid: uuid.UUID) -> tuple[ModelService, list[Route], list[ServiceError]]:
    async with w["h"].state.ctx.db() as s:
        svc = await s.get(ModelService, sid)
        routes = list((await s.execute(select(Route).where(Route.endpoint_id == sid)
                                       .order_by(Route.created_at))).scalars())
        errors = list((await s.execute(select(ServiceError).where(ServiceError.endpoint_id == sid))).scalars())
    return svc, routes, errors


async def settle(w: dict[str, Any]) -> None:
    """Let spawned terminations finish."""
    for _ in range(50):
        if not w["rec"]._tasks:
            return
        await asyncio.sleep(0.05)


async def test_replicas_start_turn_healthy_and_are_routed(world):
    w, rec, proxy = world, world["rec"], world["proxy"]
    sid = await new_service(w, desired=2)
    t0 = w["sessions"].started_at
    result = (await rec.run_once(t0))[sid]
    assert len(result.started) == 2
    svc, routes, _ = await rows(w, sid)
    assert [r.status for r in routes] == ["PROVISIONING"] * 2 and all(r.session_id for r in routes)
    assert svc.status == "PROVISIONING"
    assert proxy.tables(sid)[-1]["routes"] == [] and proxy.tables(sid)[-1]["wake"] is True
    async with w["h"].state.ctx.db() as s:
        sess = await s.get(ComputeSession, routes[0].session_id)
    assert sess.model_service["health_check"]["path"] == "/health"
    assert sess.name.startswith(svc.name) and sess.session_type == "inference"
    await rec.run_once(t0 + timedelta(seconds=1.5))  # past the initial delay: checked
    svc, routes, _ = await rows(w, sid)
    assert [r.status for r in routes] == ["HEALTHY"] * 2
    assert (svc.status, svc.status_info) == ("HEALTHY", "2 of 2 replicas healthy")
    table = proxy.tables(sid)[-1]
    assert table["wake"] is False and table["name"] == svc.name
    assert sorted(r["route_id"] for r in table["routes"]) == sorted(str(r.id) for r in routes)
    assert all(r["app_secret"] == app_secret(w["h"].state.ctx.config, route.session_id)
               for r, route in zip(sorted(table["routes"], key=lambda r: r["route_id"]),
                                   sorted(routes, key=lambda r: str(r.id)), strict=True))
    # unchanged: not pushed again before the resync interval
    pushed = len(proxy.tables(sid))
    await rec.run_once(t0 + timedelta(seconds=2))
    assert len(proxy.tables(sid)) == pushed
    rec.wake()  # a change (or POST /services/{id}/sync): pushed in the next pass anyway
    await rec.run_once(t0 + timedelta(seconds=3))
    assert len(proxy.tables(sid)) == pushed + 1
    await rec.run_once(t0 + timedelta(seconds=4))
    assert len(proxy.tables(sid)) == pushed + 1
    await rec.run_once(t0 + timedelta(seconds=14))  # the resync interval passed
    assert len(proxy.tables(sid)) == pushed + 2
    w["svc"] = sid


async def test_a_dead_replica_is_recorded_with_its_log_and_replaced(world):
    """A replica that served and died is replaced at once (failover); a replacement that dies before
    it ever got healthy is a failed start and backs off."""
    w, rec = world, world["rec"]
    sid = w["svc"]
    _, routes, _ = await rows(w, sid)
    await end_session(w["h"], routes[0].session_id, "ERROR", "self-terminated", exit_code=3)
    t1 = w["sessions"].started_at + timedelta(seconds=20)
    result = (await rec.run_once(t1))[sid]
    assert len(result.started) == 1  # no backoff: it had served
    svc, after, errors = await rows(w, sid)
    assert svc.retries == 0 and svc.next_retry_at is None
    assert svc.status == "DEGRADED"
    [err] = errors
    assert "self-terminated" in err.message and "exit code 3" in err.message
    assert err.route_id == routes[0].id and err.session_id == routes[0].session_id
    assert err.log_tail.splitlines()[-1] == "Traceback: the model cannot load"
    assert len(err.log_tail.splitlines()) == 50
    assert all(r["route_id"] != str(routes[0].id) for r in w["proxy"].tables(sid)[-1]["routes"])
    [replacement] = [r for r in after if r.status == "PROVISIONING"]
    # the replacement dies before it was ever healthy: a failed start, 2 s of backoff
    await end_session(w["h"], replacement.session_id, "ERROR", "self-terminated", exit_code=1)
    t2 = t1 + timedelta(seconds=1)
    result = (await rec.run_once(t2))[sid]
    assert result.started == []
    svc, after, errors = await rows(w, sid)
    assert svc.retries == 1 and svc.next_retry_at == t2 + timedelta(seconds=2) and len(errors) == 2
    assert str(routes[0].id) not in {str(r.id) for r in after}  # the dead route is forgotten
    result = (await rec.run_once(t2 + timedelta(seconds=2)))[sid]
    assert len(result.started) == 1
    _, after, _ = await rows(w, sid)
    # the new replica turns healthy: the failures are forgotten too
    async with w["h"].state.ctx.db.begin() as s:
        new = await s.get(ComputeSession, after[-1].session_id)
        new.started_at = t1
    await rec.run_once(t2 + timedelta(seconds=4))
    svc, after, _ = await rows(w, sid)
    assert svc.status == "HEALTHY" and svc.retries == 0 and svc.next_retry_at is None


async def test_failing_checks_take_a_replica_out_of_rotation(world):
    w, rec = world, world["rec"]
    sid = w["svc"]
    w["app"].healthy = False
    t = w["sessions"].started_at + timedelta(seconds=40)
    try:
        await rec.run_once(t)
        svc, routes, _ = await rows(w, sid)
        assert {r.status for r in routes} == {"HEALTHY"} and {r.health_failures for r in routes} == {1}
        await rec.run_once(t + timedelta(seconds=1))
        svc, routes, _ = await rows(w, sid)
        assert {r.status for r in routes} == {"UNHEALTHY"}  # max_retries (2) failures in a row
        assert svc.status == "UNHEALTHY" and w["proxy"].tables(sid)[-1]["routes"] == []
        assert w["proxy"].tables(sid)[-1]["wake"] is True
    finally:
        w["app"].healthy = True
    await rec.run_once(t + timedelta(seconds=2))
    svc, routes, _ = await rows(w, sid)
    assert {r.status for r in routes} == {"HEALTHY"} and svc.status == "HEALTHY"
    assert len(w["proxy"].tables(sid)[-1]["routes"]) == 2


async def test_autoscaling_rules_and_figures(world):
    w, rec, proxy = world, world["rec"], world["proxy"]
    sid = w["svc"]
    t = w["sessions"].started_at + timedelta(seconds=60)
    async with w["h"].state.ctx.db.begin() as s:
        for source, metric, threshold in (("endpoint", "requests_per_second", "5"), ("kernel", "cpu_util", "90"),
                                          ("inference-framework", "model_requests_running", "100")):
            s.add(AutoScalingRule(endpoint_id=sid, metric_source=source, metric_name=metric, comparator="gt",
                                  threshold=threshold, step_size=1, cooldown_seconds=30, max_replicas=3))
    proxy.figures = {str(sid): {"rps": 10.0, "waiting": 0, "in_flight": 1, "requests": 50,
                                "routes": {}}}
    result = (await rec.run_once(t))[sid]
    assert result.desired == 3 and result.scaled_by is not None
    svc, _, _ = await rows(w, sid)
    assert svc.desired_replicas == 3 and svc.live_stat["rps"] == 10.0
    async with w["h"].state.ctx.db() as s:
        fired = (await s.execute(select(AutoScalingRule).where(AutoScalingRule.endpoint_id == sid,
                                                               AutoScalingRule.last_triggered_at.is_not(None))
                                 )).scalars().all()
    assert [r.metric_source for r in fired] == ["endpoint"]
    # kernel cpu_util 80 and the model servers' 7 requests stay under their thresholds
    metrics = await rec._metrics((await rec.load(sid)), proxy.figures[str(sid)])
    assert metrics[("kernel", "cpu_util")] == 80 and metrics[("inference-framework", "model_requests_running")] == 7
    proxy.figures = {}
    async with w["h"].state.ctx.db.begin() as s:
        for rule in (await s.execute(select(AutoScalingRule).where(AutoScalingRule.endpoint_id == sid))).scalars():
            await s.delete(rule)


async def test_the_policy_limit_holds_starts_back(world):
    w, rec = world, world["rec"]
    sid = await new_service(w, desired=1)
    async with w["h"].state.ctx.db() as s:
        limit = await ServingService.replica_limit(s, uuid.UUID(w["user"]["uuid"]))
    async with w["h"].state.ctx.db.begin() as s:
        svc = await s.get(ModelService, sid)
        svc.desired_replicas = limit + 5
    t = w["sessions"].started_at + timedelta(seconds=80)
    await rec.run_once(t)
    svc, routes, _ = await rows(w, sid)
    # every live route of the owner's *service* counts: this one may start up to the limit
    assert len(routes) == limit
    assert "max_session_count_per_model_session" in svc.status_info
    await terminate(w, sid, t)


async def test_scaled_to_zero_and_woken_by_waiting_requests(world):
    w, rec, proxy = world, world["rec"], world["proxy"]
    sid = w["svc"]
    async with w["h"].state.ctx.db.begin() as s:
        (await s.get(ModelService, sid)).desired_replicas = 0
    t = w["sessions"].started_at + timedelta(seconds=100)
    await rec.run_once(t)
    await settle(w)
    await rec.run_once(t + timedelta(seconds=1))
    svc, routes, _ = await rows(w, sid)
    assert routes == [] and (svc.status, svc.status_info) == ("HEALTHY", "scaled to zero")
    assert proxy.tables(sid)[-1]["wake"] is True and proxy.tables(sid)[-1]["routes"] == []
    proxy.figures = {str(sid): {"waiting": 2, "rps": 0}}
    result = (await rec.run_once(t + timedelta(seconds=2)))[sid]
    proxy.figures = {}
    svc, routes, _ = await rows(w, sid)
    assert result.scaled_by == "wake" and svc.desired_replicas == 1 and len(routes) == 1
    assert svc.woken_at == t + timedelta(seconds=2)


async def test_revoked_tokens_reach_the_proxy(world):
    w, rec, proxy = world, world["rec"], world["proxy"]
    sid = w["svc"]
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(3)]
    async with w["h"].state.ctx.db.begin() as s:
        for tid, expires, revoked in ((ids[0], now + timedelta(hours=1), now),  # revoked: listed
                                      (ids[1], now - timedelta(hours=1), now),  # expired anyway: not
                                      (ids[2], now + timedelta(hours=1), None)):  # valid: not
            s.add(ServiceToken(id=tid, endpoint_id=sid, token="t", created_by=uuid.UUID(w["user"]["uuid"]),
                               expires_at=expires, revoked_at=revoked))
    assert await rec.sync(sid, force=True)
    assert proxy.tables(sid)[-1]["revoked"] == [str(ids[0])]


async def terminate(w: dict[str, Any], sid: uuid.UUID, t: datetime) -> None:
    async with w["h"].state.ctx.db.begin() as s:
        (await s.get(ModelService, sid)).status = "TERMINATING"
    await w["rec"].run_once(t)
    await settle(w)
    await w["rec"].run_once(t + timedelta(seconds=1))


async def test_a_deleted_service_stops_its_replicas_then_is_destroyed(world):
    w, rec, proxy = world, world["rec"], world["proxy"]
    sid = w["svc"]
    _, routes, _ = await rows(w, sid)
    assert routes
    t = w["sessions"].started_at + timedelta(seconds=120)
    await terminate(w, sid, t)
    svc, left, errors = await rows(w, sid)
    assert (svc.status, left) == ("DESTROYED", []) and svc.destroyed_at is not None
    assert {r.session_id for r in routes} <= set(w["kernels"].terminated)
    assert ("DELETE", f"/v1/services/{sid}", None) in proxy.calls
    # the proxy still serving a destroyed service is told to forget it
    proxy.calls.clear()
    proxy.figures = {str(sid): {"waiting": 0}}
    await rec.run_once(t + timedelta(seconds=2))
    proxy.figures = {}
    assert ("DELETE", f"/v1/services/{sid}", None) in proxy.calls


async def test_a_session_that_cannot_be_created_is_a_failure(world):
    w, rec = world, world["rec"]
    sid = await new_service(w, desired=1)
    w["sessions"].fail = True
    t = w["sessions"].started_at + timedelta(seconds=140)
    try:
        await rec.run_once(t)
    finally:
        w["sessions"].fail = False
    svc, routes, errors = await rows(w, sid)
    assert [e.message for e in errors] == ["the replica's session could not be created: no room"]
    assert svc.retries == 1 and svc.status == "UNHEALTHY" and "no room" in svc.status_info
    await rec.run_once(t + timedelta(seconds=1))  # within the backoff: nothing starts
    _, routes, _ = await rows(w, sid)
    assert routes == []
    await rec.run_once(t + timedelta(seconds=3))
    _, routes, _ = await rows(w, sid)
    assert len(routes) == 1 and routes[0].session_id is not None
    await terminate(w, sid, t + timedelta(seconds=4))
