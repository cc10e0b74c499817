"""The model-serving reconciler (docs/serving.md): every ``[manager] serving_interval`` (sooner when
a service changes: :meth:`ServingReconciler.wake`), for each live model service:

1. load its rows (routes, their sessions and main kernels, rules, revoked tokens);
2. health-check the replicas that are due, concurrently, through their app gates;
3. autoscale (rules against the app-proxy's, the kernels' or the model servers' figures) and wake a
   service scaled to zero when requests wait at the app-proxy;
4. ask the pure plan (``manager/serving/plan.py``) and write it: failures recorded with the log
   tail, the backoff, the service's status;
5. push the routing table to the app-proxy when it changed (and every :data:`RESYNC_INTERVAL`: the
   app-proxy may have restarted); DELETE it when the service is destroyed;
6. then terminate the sessions of the replicas that left the rotation and start new ones.

Several manager processes: on PostgreSQL a pass runs only under a session-level advisory lock (one
manager at a time; the others skip the pass); SQLite is one process, an asyncio lock is enough.
Implements ``services.compute_ports.ServingWake``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, select, text

from workbay.common.background import BackgroundLoop
from workbay.common.domain import DEAD_STATUSES, LIVE_SERVICE_STATUSES, RouteStatus, ServiceStatus
from workbay.common.errors import BackendError
from workbay.manager.models import User
from workbay.manager.models.compute import ComputeSession, Kernel
from workbay.manager.models.serving import AutoScalingRule, ModelService, Route, ServiceError, ServiceToken
from workbay.manager.services.access import Actor
from workbay.manager.services.compute_ports import KernelOps
from workbay.manager.services.context import ServiceContext
from workbay.manager.services.session_apps import app_secret
from workbay.manager.services.session_request import CreateSession, ReplicaLaunch
from workbay.manager.serving import autoscaling, plan
from workbay.manager.serving.runtimes import ReplicaSpec

from . import serving_probe as probe

log = logging.getLogger(__name__)
ADVISORY_LOCK_KEY = 0x57_42_53_56  # "WBSV"
RESYNC_INTERVAL = 10.0  # seconds: the routing table is pushed at least this often
LIVE_STAT_INTERVAL = 5.0  # seconds: the proxy's figures are written at most this often per service
LOG_TAIL_LINES = 50
PARALLEL_SERVICES = 8  # services reconciled at once
METRICS_TIMEOUT = 5.0
# A replica whose definition has no health check: healthy once its model server accepts connections.
CONNECT_CHECK = plan.HealthCheck(path="", interval=5.0, max_retries=60, max_wait_time=5.0, initial_delay=0.0)
# The app-proxy's figures by the endpoint metric names rules use.
ENDPOINT_METRICS = {"requests_per_second": "rps", "rps": "rps", "in_flight": "in_flight", "waiting": "waiting",
                    "requests": "requests", "errors": "errors", "p50_ms": "p50_ms", "p95_ms": "p95_ms",
                    "p99_ms": "p99_ms"}


class ReplicaSpecs(Protocol):
    """What a service's replicas run (``services.model_definitions.ModelDefinitions``): raises a
    ``BackendError`` saying what is wrong with the definition."""

    async def replica_spec(self, folder: ModelService) -> ReplicaSpec: ...


class ReplicaSessions(Protocol):
    """Creating a replica's session (``services.sessions.SessionService.create``)."""

    async def create(self, actor: Actor, req: CreateSession, system: bool = False,
                     replica: ReplicaLaunch | None = None) -> Any: ...


class ProxyControl(Protocol):
    """The app-proxy's control API (``services.session_apps.AppProxyClient.call``)."""

    async def call(self, method: str, path: str, **kw: Any) -> Any: ...


def health_check_of(model_service: Mapping[str, Any] | None) -> plan.HealthCheck:
    """A replica's health check from its launch spec (``sessions.model_service``)."""
    raw = (model_service or {}).get("health_check")
    if not isinstance(raw, Mapping) or not raw.get("path"):
        return CONNECT_CHECK
    try:
        return plan.HealthCheck(path=str(raw["path"]), interval=float(raw.get("interval", 10.0)),
                                max_retries=int(raw.get("max_retries", 10)),
                                max_wait_time=float(raw.get("max_wait_time", 15.0)),
                                expected_status_code=int(raw.get("expected_status_code", 200)),
                                initial_delay=float(raw.get("initial_delay", 60.0)))
    except (TypeError, ValueError):
        return CONNECT_CHECK


def model_port(model_service: Mapping[str, Any] | None) -> int | None:
    port = (model_service or {}).get("port")
    return port if isinstance(port, int) and not isinstance(port, bool) else None


def replica_session_name(service_name: str, route_id: uuid.UUID) -> str:
    return f"{service_name[:48].rstrip('-_.')}-r{route_id.hex[:8]}"


def replica_request(svc: ModelService, name: str) -> CreateSession:
    """The session a replica of ``svc`` runs in: an inference session of its owner with the model
    folder (read-only) and the extra folders mounted."""
    mounts = [str(svc.model_folder_id)]
    mount_map = {str(svc.model_folder_id): svc.model_mount_destination or "/models"}
    for extra in svc.extra_mounts or []:
        if isinstance(extra, dict) and extra.get("folder_id"):
            mounts.append(str(extra["folder_id"]))
            if extra.get("mount_destination"):
                mount_map[str(extra["folder_id"])] = str(extra["mount_destination"])
    return CreateSession.model_validate({
        "image": svc.image, "type": "inference", "name": name, "project": str(svc.project_id),
        "architecture": svc.architecture, "cluster_size": svc.cluster_size, "cluster_mode": svc.cluster_mode,
        "config": {"resources": dict(svc.resource_slots or {}), "resource_opts": dict(svc.resource_opts or {}),
                   "environ": {str(k): str(v) for k, v in (svc.environ or {}).items()},
                   "mounts": mounts, "mount_map": mount_map, "scaling_group": svc.resource_group},
        "bootstrap_script": svc.bootstrap_script, "tag": svc.tag, "callback_url": svc.callback_url,
        "enqueue_only": True,
        "reuse_if_exists": False})


def owner_actor(user: User, access_key: str) -> Actor:
    return Actor(user_id=user.uuid, email=user.email, role=user.role, domain_name=user.domain_name,
                 access_key=access_key)


def parse_prometheus(text_body: str) -> dict[str, float]:
    """Prometheus text exposition (prometheus-client's parser) → sample name → the sum of its
    samples over every label set.  A malformed page yields the samples before the first bad line."""
    out: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text_body):
            for sample in family.samples:
                if math.isfinite(sample.value):
                    out[sample.name] = out.get(sample.name, 0.0) + sample.value
    except ValueError:
        pass
    return out


def _decimal(value: Any) -> Decimal | None:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def kernel_metric(last_stat: Mapping[str, Any] | None, name: str) -> Decimal | None:
    """A kernel's figure from its last stats sample: ``cpu_util`` (its current value) or
    ``cpu_util.pct`` (a field of it)."""
    base, _, key = name.partition(".")
    entry = (last_stat or {}).get(base)
    if isinstance(entry, Mapping):
        return _decimal(entry.get(key or "current"))
    return _decimal(entry) if entry is not None else None


def _average(values: Sequence[Decimal]) -> Decimal | None:
    return sum(values, Decimal(0)) / len(values) if values else None


@dataclass
class Replica:
    """A route with what the pass loaded about it."""

    route: Route
    session: ComputeSession | None
    kernel: Kernel | None

    @property
    def spec(self) -> dict[str, Any] | None:
        return self.session.model_service if self.session is not None else None

    @property
    def health(self) -> plan.HealthCheck:
        return health_check_of(self.spec)

    def target(self) -> probe.Target | None:
        port = model_port(self.spec)
        if self.kernel is None or port is None:
            return None
        return probe.model_target(self.kernel.service_ports, port)

    def view(self) -> plan.RouteView:
        r, sess = self.route, self.session
        running = sess.started_at or r.created_at if sess is not None and sess.status == "RUNNING" else None
        return plan.RouteView(
            id=str(r.id), status=r.status, generation=r.generation, created_at=r.created_at,
            session_status=sess.status if sess is not None else None,
            session_info=_session_info(sess), running_since=running, health_failures=r.health_failures,
            last_health_at=r.last_health_at, healthy_since=r.healthy_since,
            has_session=r.session_id is not None and sess is not None)


def _session_info(sess: ComputeSession | None) -> str | None:
    if sess is None:
        return None
    parts = [sess.status_info or ""]
    if sess.exit_code is not None:
        parts.append(f"exit code {sess.exit_code}")
    return ", ".join(p for p in parts if p) or None


@dataclass
class Loaded:
    svc: ModelService
    replicas: list[Replica]
    rules: list[AutoScalingRule]
    revoked: list[str]
    owner: User | None
    limit: int


@dataclass
class _Synced:
    body: dict[str, Any]
    at: datetime


@dataclass
class PassResult:
    """What one pass did to one service (for tests and the log)."""

    plan: plan.Plan | None = None
    started: list[uuid.UUID] = field(default_factory=list)
    desired: int | None = None
    scaled_by: str | None = None


class ServingReconciler:
    def __init__(self, ctx: ServiceContext, sessions: ReplicaSessions, kernels: KernelOps, specs: ReplicaSpecs,
                 proxy: ProxyControl, replica_limit: Any = None) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.kernels = kernels
        self.specs = specs
        self.proxy = proxy
        self._replica_limit = replica_limit  # async (session, owner id) -> int; None: no limit
        self._lock = asyncio.Lock()
        self._synced: dict[uuid.UUID, _Synced] = {}
        self._stat_written: dict[uuid.UUID, datetime] = {}
        self._terminating: set[uuid.UUID] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.figures: dict[str, Any] = {}  # the app-proxy's last GET /v1/services
        self._force_sync = False
        self.loop = BackgroundLoop("serving-reconciler", self.run_once,
                                   lambda: ctx.config.manager.serving_interval, immediate=True,
                                   max_backoff=30.0, logger=log)

    # -- ServingWake ------------------------------------------------------------------------------
    def wake(self) -> None:
        """A service changed (or ``POST /services/{id}/sync``): pass soon, and push every routing
        table in that pass even if it looks unchanged."""
        self._force_sync = True
        self.loop.wake()

    def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one pass -----------------------------------------------------------------------------------
    async def run_once(self, now: datetime | None = None) -> dict[uuid.UUID, PassResult]:
        async with self._lock, self.ctx.db() as lock_session:
            if lock_session.get_bind().dialect.name == "postgresql":
                got = (await lock_session.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                                  {"k": ADVISORY_LOCK_KEY})).scalar()
                if not got:
                    return {}  # another manager runs this pass
                try:
                    return await self._pass(now)
                finally:
                    await lock_session.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            return await self._pass(now)

    async def _pass(self, now: datetime | None) -> dict[uuid.UUID, PassResult]:
        now = now or datetime.now(UTC)
        await self.pull_figures()
        async with self.ctx.db() as s:
            ids = (await s.execute(select(ModelService.id).where(ModelService.status.in_(
                (*LIVE_SERVICE_STATUSES, ServiceStatus.TERMINATING))))).scalars().all()
        force, self._force_sync = self._force_sync, False
        out: dict[uuid.UUID, PassResult] = {}
        limit = asyncio.Semaphore(PARALLEL_SERVICES)

        async def one(sid: uuid.UUID) -> None:
            async with limit:
                try:
                    out[sid] = await self.reconcile(sid, now, force_sync=force)
                except Exception:  # one service's trouble never stops the others
                    log.exception("reconciling model service %s failed", sid)

        # Services in parallel (bounded): one slow health check does not hold up the others.
        await asyncio.gather(*(one(sid) for sid in ids))
        await self._forget_unknown_on_proxy(set(ids))
        return out

    async def pull_figures(self) -> None:
        try:
            answer = await self.proxy.call("GET", "/v1/services")
        except BackendError as e:
            log.info("the app-proxy's service figures are unavailable: %s", e)
            self.figures = {}
            return
        services = answer.get("services") if isinstance(answer, dict) else None
        self.figures = services if isinstance(services, dict) else {}

    async def _forget_unknown_on_proxy(self, live: set[uuid.UUID]) -> None:
        """A service the app-proxy serves that is no longer live here (destroyed while the proxy
        was unreachable, or by another manager): delete it there."""
        for key in list(self.figures):
            try:
                sid = uuid.UUID(str(key))
            except ValueError:
                continue
            if sid not in live:
                await self._proxy_delete(sid)

    # -- loading ------------------------------------------------------------------------------------
    async def load(self, service_id: uuid.UUID) -> Loaded | None:
        async with self.ctx.db() as s:
            svc = await s.get(ModelService, service_id)
            if svc is None:
                return None
            routes = list((await s.execute(select(Route).where(Route.endpoint_id == service_id)
                                           .order_by(Route.created_at, Route.id))).scalars())
            session_ids = [r.session_id for r in routes if r.session_id is not None]
            sessions = {x.id: x for x in (await s.execute(select(ComputeSession).where(
                ComputeSession.id.in_(session_ids)))).scalars()} if session_ids else {}
            kernels = {k.session_id: k for k in (await s.execute(select(Kernel).where(
                Kernel.session_id.in_(session_ids), Kernel.cluster_role == "main"))).scalars()} \
                if session_ids else {}
            rules = list((await s.execute(select(AutoScalingRule).where(
                AutoScalingRule.endpoint_id == service_id).order_by(AutoScalingRule.created_at))).scalars())
            now = datetime.now(UTC)
            revoked = [str(t) for t in (await s.execute(select(ServiceToken.id).where(
                ServiceToken.endpoint_id == service_id, ServiceToken.revoked_at.is_not(None),
                ServiceToken.expires_at > now))).scalars()]
            owner = await s.get(User, svc.owner_user_id)
            limit = await self._replica_limit(s, svc.owner_user_id) if self._replica_limit else 0
        replicas = [Replica(r, sessions.get(r.session_id) if r.session_id else None,
                            kernels.get(r.session_id) if r.session_id else None) for r in routes]
        return Loaded(svc, replicas, rules, revoked, owner, int(limit or 0))

    # -- the pass for one service ---------------------------------------------------------------------
    async def reconcile(self, service_id: uuid.UUID, now: datetime, force_sync: bool = False) -> PassResult:
        loaded = await self.load(service_id)
        result = PassResult()
        if loaded is None:
            return result
        svc = loaded.svc
        figures = self.figures.get(str(service_id)) or {}
        terminating = svc.status == ServiceStatus.TERMINATING
        # 1. health checks
        outcomes = await self._check(loaded.replicas, now)
        views = []
        condemned: dict[str, str] = {}
        for rep in loaded.replicas:
            view = rep.view()
            outcome = outcomes.get(rep.route.id)
            if outcome is not None:
                view = plan.with_outcome(view, outcome, now)
                if outcome.failed:
                    condemned[view.id] = outcome.failed
            views.append(view)
        # 2. autoscaling and waking up
        desired = svc.desired_replicas
        if not terminating:
            desired, fired = await self._autoscale(loaded, figures, now)
            if desired != svc.desired_replicas:
                result.desired, result.scaled_by = desired, fired
        # 3. the plan
        hc = self._service_health_check(loaded)
        service_view = plan.ServiceView(status=svc.status, desired=desired, generation=svc.generation,
                                retries=svc.retries, next_retry_at=svc.next_retry_at,
                                max_replicas=loaded.limit or None)
        decided = plan.plan(service_view, views, now, hc, condemned)
        result.plan = decided
        tails = await self._log_tails(loaded, [f.route_id for f in decided.failed])
        await self._write(loaded, outcomes, decided, tails, figures, now)
        # 4. the routing table first: replicas leave the rotation before their sessions end
        if decided.destroyed:
            await self._proxy_delete(service_id)
        elif not terminating:
            await self.sync(service_id, now, force=force_sync)
        # 5. sessions: stop those of routes that go, start new ones
        await self._terminate_gone(service_id)
        if decided.start and not terminating:
            result.started = await self._start(loaded, decided.start, now)
        return result

    def _service_health_check(self, loaded: Loaded) -> plan.HealthCheck:
        """The current generation's health check (from its newest replica's launch spec)."""
        for rep in reversed(loaded.replicas):
            if rep.route.generation == loaded.svc.generation and rep.spec is not None:
                return rep.health
        for rep in reversed(loaded.replicas):
            if rep.spec is not None:
                return rep.health
        return plan.HealthCheck()

    async def _check(self, replicas: list[Replica], now: datetime) -> dict[uuid.UUID, plan.CheckOutcome]:
        due = [rep for rep in replicas if plan.check_due(rep.view(), now, rep.health)]

        async def one(rep: Replica) -> tuple[uuid.UUID, plan.CheckOutcome]:
            hc = rep.health
            target = rep.target()
            if target is None or rep.session is None:
                res = probe.CheckResult(False, "the model port is not published")
            else:
                res = await probe.health_check(target, app_secret(self.ctx.config, rep.session.id),
                                               hc.path or None, hc.expected_status_code, hc.max_wait_time)
            return rep.route.id, plan.check_outcome(rep.view(), res.ok, now, hc, res.detail)

        return dict(await asyncio.gather(*(one(rep) for rep in due)))

    # -- autoscaling ----------------------------------------------------------------------------------
    async def _autoscale(self, loaded: Loaded, figures: Mapping[str, Any], now: datetime) -> tuple[int, str | None]:
        svc = loaded.svc
        woken = autoscaling.wake(svc.desired_replicas, int(figures.get("waiting") or 0))
        if woken is not None:
            await self._set_desired(svc.id, woken, None, now, woken=True)
            log.info("model service %s is woken from zero: requests wait", svc.name)
            return woken, "wake"
        if not loaded.rules:
            return svc.desired_replicas, None
        metrics = await self._metrics(loaded, figures)
        rules = [autoscaling.Rule(id=str(r.id), source=r.metric_source, metric=r.metric_name,
                                  comparator=r.comparator, threshold=_decimal(r.threshold) or Decimal(0),
                                  step=r.step_size, cooldown=float(r.cooldown_seconds),
                                  min_replicas=r.min_replicas, max_replicas=r.max_replicas,
                                  last_triggered_at=r.last_triggered_at) for r in loaded.rules]
        decision = autoscaling.decide(rules, metrics, svc.desired_replicas, now, svc.woken_at)
        if decision.rule_id is None or decision.desired == svc.desired_replicas:
            return svc.desired_replicas, None
        await self._set_desired(svc.id, decision.desired, uuid.UUID(decision.rule_id), now)
        log.info("model service %s autoscaled: %s", svc.name, decision.reason)
        return decision.desired, decision.rule_id

    async def _set_desired(self, service_id: uuid.UUID, desired: int, rule_id: uuid.UUID | None, now: datetime,
                           woken: bool = False) -> None:
        async with self.ctx.db.begin() as s:
            svc = await s.get(ModelService, service_id)
            if svc is None or svc.status not in LIVE_SERVICE_STATUSES:
                return
            svc.desired_replicas = desired
            if woken:
                svc.woken_at = now
            if rule_id is not None:
                rule = await s.get(AutoScalingRule, rule_id)
                if rule is not None:
                    rule.last_triggered_at = now

    async def _metrics(self, loaded: Loaded, figures: Mapping[str, Any]) -> dict[tuple[str, str], Decimal]:
        out: dict[tuple[str, str], Decimal] = {}
        for name, key in ENDPOINT_METRICS.items():
            value = _decimal(figures.get(key)) if figures.get(key) is not None else None
            if value is not None:
                out[("endpoint", name)] = value
        running = [rep for rep in loaded.replicas if rep.session is not None and rep.session.status == "RUNNING"
                   and rep.route.status in plan.ACTIVE]
        for name in {r.metric_name for r in loaded.rules if r.metric_source == "kernel"}:
            values = [v for rep in running if rep.kernel is not None
                      and (v := kernel_metric(rep.kernel.last_stat, name)) is not None]
            if (avg := _average(values)) is not None:
                out[("kernel", name)] = avg
        wanted = {r.metric_name for r in loaded.rules if r.metric_source == "inference-framework"}
        if wanted:
            healthy = [rep for rep in running if rep.route.status == RouteStatus.HEALTHY]
            pages = await asyncio.gather(*(self._scrape(rep) for rep in healthy))
            for name in wanted:
                values = [Decimal(str(page[name])) for page in pages if name in page]
                if (avg := _average(values)) is not None:
                    out[("inference-framework", name)] = avg
        return out

    async def _scrape(self, rep: Replica) -> dict[str, float]:
        target = rep.target()
        if target is None or rep.session is None:
            return {}
        try:
            status, body = await probe.http_get(target, app_secret(self.ctx.config, rep.session.id), "/metrics",
                                                METRICS_TIMEOUT)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            return {}
        return parse_prometheus(body.decode("utf-8", "replace")) if status == 200 else {}

    # -- writing the plan -------------------------------------------------------------------------------
    async def _log_tails(self, loaded: Loaded, route_ids: list[str]) -> dict[str, str]:
        by_id = {str(rep.route.id): rep for rep in loaded.replicas}

        async def tail(rid: str) -> tuple[str, str]:
            rep = by_id.get(rid)
            if rep is None or rep.kernel is None or rep.kernel.agent_addr is None:
                return rid, ""
            try:
                text_ = await self.kernels.logs(rep.kernel)
            except Exception as e:  # the log is a courtesy: a failure is recorded without it
                log.info("no log of replica %s: %s", rid, e)
                return rid, ""
            return rid, "\n".join(text_.splitlines()[-LOG_TAIL_LINES:])

        return dict(await asyncio.gather(*(tail(rid) for rid in route_ids)))

    async def _write(self, loaded: Loaded, outcomes: dict[uuid.UUID, plan.CheckOutcome], decided: plan.Plan,
                     tails: dict[str, str], figures: Mapping[str, Any], now: datetime) -> None:
        by_id = {rep.route.id: rep for rep in loaded.replicas}
        failed = {uuid.UUID(f.route_id): f.reason for f in decided.failed}
        stop = {uuid.UUID(r) for r in decided.stop}
        forget = {uuid.UUID(r) for r in decided.forget}
        became_healthy = any(o.became_healthy for o in outcomes.values())
        async with self.ctx.db.begin() as s:
            svc = await s.get(ModelService, loaded.svc.id)
            if svc is None:
                return
            routes = {r.id: r for r in (await s.execute(select(Route).where(
                Route.endpoint_id == svc.id))).scalars()}
            for rid, outcome in outcomes.items():
                route = routes.get(rid)
                if route is None or route.status not in plan.ACTIVE:
                    continue  # removed meanwhile (DELETE …/routings/…)
                route.status = outcome.status
                route.health_failures = outcome.failures
                route.healthy_since = outcome.healthy_since
                route.last_health_at = now
                route.status_info = None if outcome.status == RouteStatus.HEALTHY else (
                    route.status_info if outcome.failures == 0 else f"{outcome.failures} failed health checks")
            for rid, rep in by_id.items():
                route = routes.get(rid)
                target = rep.target()
                if route is not None and target is not None and (route.target_host, route.target_port) != (
                        target.host, target.port):
                    route.target_host, route.target_port = target.host, target.port
            for rid, reason in failed.items():
                route = routes.get(rid)
                if route is None:
                    continue
                route.status, route.status_info = RouteStatus.FAILED, reason[:500]
                s.add(ServiceError(id=uuid.uuid4(), endpoint_id=svc.id, route_id=rid, session_id=route.session_id,
                                   message=reason, log_tail=tails.get(str(rid), ""), created_at=now))
                log.warning("model service %s: replica %s failed: %s", svc.name, rid, reason)
            for rid in stop:
                route = routes.get(rid)
                if route is not None and route.status in plan.ACTIVE:
                    route.status, route.status_info = RouteStatus.TERMINATING, "scaled down or replaced"
            if forget:
                await s.execute(delete(Route).where(Route.id.in_(forget)))
            svc.retries, svc.next_retry_at = decided.retries, decided.next_retry_at
            if became_healthy and not decided.failed:
                svc.retries, svc.next_retry_at = 0, None
            if svc.status == ServiceStatus.TERMINATING and not decided.destroyed:
                svc.status_info = decided.status_info
            elif decided.destroyed:
                svc.status, svc.status_info, svc.destroyed_at = ServiceStatus.DESTROYED, "destroyed", now
            elif svc.status in LIVE_SERVICE_STATUSES:
                svc.status, svc.status_info = decided.status, decided.status_info
            if figures and self._stat_due(svc.id, now) and svc.live_stat != dict(figures):
                svc.live_stat = dict(figures)
                self._stat_written[svc.id] = now
        if decided.destroyed:
            self._stat_written.pop(loaded.svc.id, None)

    def _stat_due(self, service_id: uuid.UUID, now: datetime) -> bool:
        last = self._stat_written.get(service_id)
        return last is None or now >= last + timedelta(seconds=LIVE_STAT_INTERVAL)

    # -- sessions --------------------------------------------------------------------------------------
    async def _terminate_gone(self, service_id: uuid.UUID) -> None:
        """Routes on their way out (FAILED, TERMINATING) whose session still runs: terminate it."""
        async with self.ctx.db() as s:
            rows = (await s.execute(select(ComputeSession.id).join(Route, Route.session_id == ComputeSession.id)
                                    .where(Route.endpoint_id == service_id,
                                           Route.status.in_((RouteStatus.FAILED, RouteStatus.TERMINATING)),
                                           ComputeSession.status.not_in((*DEAD_STATUSES, "TERMINATING")))
                                    )).scalars().all()
        for sid in rows:
            if sid not in self._terminating:
                self._terminating.add(sid)
                self._spawn(self._terminate(sid))

    async def _terminate(self, session_id: uuid.UUID) -> None:
        try:
            await self.kernels.terminate_session(session_id, "model-service-replica-removed", forced=True)
        except Exception as e:  # the next pass tries again (the compute reconciler retries stuck ones)
            log.warning("terminating replica session %s failed: %s", session_id, e)
        finally:
            self._terminating.discard(session_id)
            self.wake()

    async def spec_for(self, svc: ModelService) -> ReplicaSpec:
        return await self.specs.replica_spec(svc)

    async def _start(self, loaded: Loaded, count: int, now: datetime) -> list[uuid.UUID]:
        svc = loaded.svc
        if loaded.owner is None:
            await self._record_failure(svc.id, None, "the service's owner no longer exists", now)
            return []
        try:
            spec = await self.spec_for(svc)
        except BackendError as e:
            await self._record_failure(svc.id, None, f"the model definition: {e}", now)
            return []
        actor = owner_actor(loaded.owner, svc.owner_access_key)
        started: list[uuid.UUID] = []
        for _ in range(count):
            rid = uuid.uuid4()
            async with self.ctx.db.begin() as s:
                s.add(Route(id=rid, endpoint_id=svc.id, status=RouteStatus.PROVISIONING, generation=svc.generation,
                            traffic_ratio=1.0, health_failures=0, created_at=now))
            try:
                req = replica_request(svc, replica_session_name(svc.name, rid))
                created = await self.sessions.create(actor, req, replica=ReplicaLaunch(
                    model_service=spec.launch(), read_only_folders=frozenset({svc.model_folder_id})))
            except (BackendError, ValueError) as e:
                # FAILED at once: the failure is recorded and the next start waits for the backoff.
                await self._record_failure(svc.id, rid, f"the replica's session could not be created: {e}", now)
                break
            async with self.ctx.db.begin() as s:
                route = await s.get(Route, rid)
                if route is not None:
                    route.session_id = created.id
            started.append(rid)
            log.info("model service %s: replica %s starts (session %s)", svc.name, rid, created.id)
        return started

    async def _record_failure(self, service_id: uuid.UUID, route_id: uuid.UUID | None, message: str,
                              now: datetime) -> None:
        async with self.ctx.db.begin() as s:
            svc = await s.get(ModelService, service_id)
            if svc is None:
                return
            if route_id is not None:
                route = await s.get(Route, route_id)
                if route is not None:
                    route.status, route.status_info = RouteStatus.FAILED, message[:500]
            s.add(ServiceError(id=uuid.uuid4(), endpoint_id=service_id, route_id=route_id, session_id=None,
                               message=message, log_tail="", created_at=now))
            svc.retries = (svc.retries or 0) + 1
            svc.next_retry_at = now + timedelta(seconds=plan.backoff(svc.retries))
            if svc.status in LIVE_SERVICE_STATUSES and svc.status != ServiceStatus.HEALTHY:
                svc.status = ServiceStatus.UNHEALTHY
                svc.status_info = f"no healthy replica: {message}"[:500]
        log.warning("model service %s: %s", service_id, message)

    # -- the app-proxy's routing table ----------------------------------------------------------------
    async def routing_table(self, service_id: uuid.UUID) -> dict[str, Any] | None:
        loaded = await self.load(service_id)
        if loaded is None or loaded.svc.status not in LIVE_SERVICE_STATUSES:
            return None
        svc = loaded.svc
        routes = []
        for rep in loaded.replicas:
            r = rep.route
            if r.status != RouteStatus.HEALTHY or r.session_id is None:
                continue
            target = rep.target()
            host, port = (target.host, target.port) if target else (r.target_host, r.target_port)
            if not host or not port:
                continue
            routes.append({"route_id": str(r.id), "host": host, "port": port,
                           "app_secret": app_secret(self.ctx.config, r.session_id),
                           "traffic_ratio": r.traffic_ratio})
        return {"name": svc.name, "open_to_public": svc.open_to_public, "routes": routes,
                "revoked": sorted(loaded.revoked), "wake": svc.desired_replicas == 0 or not routes,
                "wake_timeout": self.ctx.config.manager.service_wake_timeout}

    async def sync(self, service_id: uuid.UUID, now: datetime | None = None, force: bool = False) -> bool:
        """Push the routing table when it changed (or is :data:`RESYNC_INTERVAL` old); True if pushed."""
        now = now or datetime.now(UTC)
        body = await self.routing_table(service_id)
        if body is None:
            return False
        last = self._synced.get(service_id)
        if not force and last is not None and last.body == body and now < last.at + timedelta(seconds=RESYNC_INTERVAL):
            return False
        try:
            await self.proxy.call("PUT", f"/v1/services/{service_id}", json=body)
        except BackendError as e:
            log.warning("pushing the routing table of service %s failed: %s", service_id, e)
            self._synced.pop(service_id, None)
            return False
        self._synced[service_id] = _Synced(body, now)
        return True

    async def _proxy_delete(self, service_id: uuid.UUID) -> None:
        try:
            await self.proxy.call("DELETE", f"/v1/services/{service_id}")
        except BackendError as e:
            log.info("removing service %s from the app-proxy failed: %s", service_id, e)
        self._synced.pop(service_id, None)
        self.figures.pop(str(service_id), None)
