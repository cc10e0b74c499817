"""The scheduling loop: reads the database, asks the pure core, writes its decisions, launches.

One tick per resource group with pending sessions.  Several manager replicas may run it: on
PostgreSQL each tick holds a transaction-scoped advisory lock; SQLite means one process, so an
asyncio lock is enough.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from workbay.common.slots import ResourceSlot
from workbay.manager.models import Domain, Keypair, KeypairResourcePolicy, Project, ResourceGroup
from workbay.manager.models.compute import Agent, ComputeSession, Kernel, SessionDependency
from workbay.manager.services.context import ServiceContext
from workbay.manager.services.session_status import LIVE, OCCUPYING, set_status

from . import core
from .launcher import Launcher

log = logging.getLogger(__name__)
ADVISORY_LOCK_KEY = 0x57_42_53_43  # "WBSC"


def group_settings(rg: ResourceGroup) -> core.ResourceGroup:
    opts = rg.scheduler_opts or {}
    return core.ResourceGroup(
        name=rg.name, scheduler=rg.scheduler or "fifo",
        pending_timeout=float(opts.get("pending_timeout") or 0),
        retries_to_skip=int(opts.get("retries_to_skip", core.DEFAULT_RETRIES_TO_SKIP)),
        allowed_session_types=frozenset(opts.get("allowed_session_types") or core.ALL_SESSION_TYPES),
        agent_selection=opts.get("agent_selection") or "dispersed")


def _slots(data: dict[str, Any] | None) -> ResourceSlot:
    return ResourceSlot.from_json(data or {})


def dependency_state(sess: ComputeSession) -> core.DependencyState:
    if sess.status in ("ERROR", "CANCELLED") or sess.result == "FAILURE":
        return core.DependencyState.FAILED
    if sess.status == "TERMINATED":
        return core.DependencyState.SUCCEEDED
    return core.DependencyState.WAITING


async def occupancy_by_agent(s) -> dict[str, ResourceSlot]:
    """What live kernels hold on each agent (the source of truth; "recalculate usage")."""
    acc: dict[str, ResourceSlot] = defaultdict(ResourceSlot)
    rows = await s.execute(select(Kernel.agent_id, Kernel.occupied_slots)
                           .where(Kernel.status.in_(OCCUPYING), Kernel.agent_id.is_not(None)))
    for agent_id, slots in rows.all():
        try:
            acc[agent_id] = acc[agent_id] + _slots(slots)
        except (TypeError, ValueError, ArithmeticError) as e:
            log.warning("a kernel on agent %s holds unreadable slots %r: %s (not counted)", agent_id, slots, e)
    return acc


class Dispatcher:
    def __init__(self, ctx: ServiceContext, launcher: Launcher) -> None:
        self.ctx = ctx
        self.launcher = launcher
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        interval = self.ctx.config.manager.scheduler_interval
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed; retrying on the next one")

    async def tick(self, now: datetime | None = None) -> core.SchedulingResult | None:
        """One pass over every resource group with pending sessions; returns the last result."""
        now = now or datetime.now(UTC)
        async with self._lock:
            async with self.ctx.db.begin() as s:
                if s.bind.dialect.name == "postgresql":
                    await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
                groups = (await s.execute(select(ComputeSession.resource_group).where(
                    ComputeSession.status == "PENDING").distinct())).scalars().all()
                result = None
                scheduled: list[uuid.UUID] = []
                events: list[tuple[ComputeSession, str, str]] = []
                for name in groups:
                    rg = await s.get(ResourceGroup, name)
                    if rg is None:
                        continue
                    try:
                        result = await self._tick_group(s, rg, now, scheduled, events)
                    except Exception:  # one group's trouble never stops the others
                        log.exception("scheduling resource group %s failed; the other groups go on", name)
        for sess, event, reason in events:
            await self.launcher.lifecycle.publish(sess, event, reason)
        for sid in scheduled:
            self.launcher.launch(sid)
        return result

    async def _tick_group(self, s, rg: ResourceGroup, now: datetime, scheduled: list[uuid.UUID],
                          events: list) -> core.SchedulingResult:
        pending_ids = select(ComputeSession.id).where(
            ComputeSession.resource_group == rg.name, ComputeSession.status == "PENDING")
        pending_rows = (await s.execute(select(ComputeSession).where(ComputeSession.id.in_(pending_ids)))).scalars().all()
        by_id = {str(p.id): p for p in pending_rows}
        # Everything per session in a few set queries (not one query per session: the pass must
        # stay cheap with thousands queued).
        kernels_of: dict[uuid.UUID, list[Kernel]] = defaultdict(list)
        for k in (await s.execute(select(Kernel).where(Kernel.session_id.in_(pending_ids))
                                  .order_by(Kernel.cluster_role != "main", Kernel.cluster_idx))).scalars():
            kernels_of[k.session_id].append(k)
        deps_of: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for sid, dep_id in (await s.execute(select(SessionDependency.session_id, SessionDependency.depends_on)
                                            .where(SessionDependency.session_id.in_(pending_ids)))).all():
            deps_of[sid].append(dep_id)
        deps: dict[str, core.DependencyState] = {}
        dep_ids_all = {d for ds in deps_of.values() for d in ds}
        if dep_ids_all:
            dep_rows = select(ComputeSession).join(
                SessionDependency, SessionDependency.depends_on == ComputeSession.id).where(
                SessionDependency.session_id.in_(pending_ids))
            for dep in (await s.execute(dep_rows)).scalars().unique():
                deps[str(dep.id)] = dependency_state(dep)
        occupied = await occupancy_by_agent(s)
        agents = []
        for a in (await s.execute(select(Agent).where(Agent.resource_group == rg.name,
                                                     Agent.status == "ALIVE"))).scalars():
            try:
                agents.append(core.Agent(id=a.id, resource_group=a.resource_group,
                                         total_slots=_slots(a.available_slots),
                                         occupied_slots=occupied.get(a.id, ResourceSlot()),
                                         architecture=a.architecture, schedulable=a.schedulable))
            except (TypeError, ValueError, ArithmeticError) as e:
                log.warning("agent %s reports unreadable capacity: %s (not a candidate this tick)", a.id, e)
        addr = {a.id: a.addr for a in (await s.execute(select(Agent))).scalars()}
        live = (await s.execute(select(ComputeSession).where(ComputeSession.status.in_(LIVE)))).scalars().all()
        by_key: dict[str, ResourceSlot] = defaultdict(ResourceSlot)
        active: dict[str, int] = defaultdict(int)
        by_project: dict[str, ResourceSlot] = defaultdict(ResourceSlot)
        by_domain: dict[str, ResourceSlot] = defaultdict(ResourceSlot)
        in_group: dict[str, ResourceSlot] = defaultdict(ResourceSlot)
        for sess in live:
            if sess.status == "PENDING" or sess.session_type == "system":
                continue
            try:
                slots = _slots(sess.occupying_slots)
            except (TypeError, ValueError, ArithmeticError) as e:
                log.warning("session %s occupies unreadable slots: %s (not counted)", sess.id, e)
                continue
            by_key[sess.access_key] += slots
            active[sess.access_key] += 1
            by_project[str(sess.project_id)] += slots
            by_domain[sess.domain_name] += slots
            if sess.resource_group == rg.name:
                in_group[sess.access_key] += slots
        keypairs, projects, domains = {}, {}, {}
        pending: list[core.PendingSession] = []
        refused: list[tuple[ComputeSession, str]] = []
        for p in pending_rows:
            # A row no API accepts (written around it, or by an older version) is refused on its
            # own: cancelled with the reason, never failing the tick for everyone else.
            try:
                pending.append(await self._pending_session(s, p, rg, deps_of, by_key, active, by_project,
                                                           by_domain, keypairs, projects, domains))
            except Exception as e:
                log.warning("pending session %s cannot be scheduled: %s", p.id, e)
                refused.append((p, str(e) or type(e).__name__))
        result = core.schedule(core.SchedulingInput(
            now=now, resource_group=group_settings(rg), agents=agents, pending=pending, keypairs=keypairs,
            projects=projects, domains=domains, dependencies=deps, group_usage=in_group))
        decisions: list[Any] = list(result.decisions)
        for p, error in refused:
            decisions.append(core.Cancelled(_Refused(str(p.id)), core.CANCEL_INVALID_REQUEST,
                                            f"the request cannot be scheduled: {error[:500]}"))
        for decision in decisions:
            try:
                self._apply(decision, by_id[decision.session.id], now, kernels_of, addr, scheduled, events)
            except Exception:
                log.exception("recording the scheduler's decision on session %s failed", decision.session.id)
        for agent_id, slots in result.agent_occupied.items():
            agent = await s.get(Agent, agent_id)
            if agent is not None:
                agent.occupied_slots = slots.to_json()
        return result

    async def _pending_session(self, s, p: ComputeSession, rg: ResourceGroup, deps_of, by_key, active,
                               by_project, by_domain, keypairs, projects, domains) -> core.PendingSession:
        """One PENDING row as the pure core sees it, loading its keypair / project / domain usage
        on first sight; raises on a row that cannot be read."""
        if p.access_key not in keypairs:
            kp = await s.get(Keypair, p.access_key)
            if kp is None:
                raise ValueError(f"its keypair {p.access_key} no longer exists")
            policy = await s.get(KeypairResourcePolicy, kp.resource_policy)
            if policy is None:
                raise ValueError(f"its keypair's resource policy {kp.resource_policy!r} no longer exists")
            keypairs[p.access_key] = core.KeypairUsage(
                limit=_slots(policy.total_resource_slots), occupied=by_key[p.access_key],
                max_concurrent_sessions=policy.max_concurrent_sessions, active_sessions=active[p.access_key])
        pid = str(p.project_id)
        if pid not in projects:
            project = await s.get(Project, p.project_id)
            if project is None:
                raise ValueError(f"its project {pid} no longer exists")
            projects[pid] = core.Usage(limit=_slots(project.total_resource_slots), occupied=by_project[pid])
        if p.domain_name not in domains:
            domain = await s.get(Domain, p.domain_name)
            if domain is None:
                raise ValueError(f"its domain {p.domain_name!r} no longer exists")
            domains[p.domain_name] = core.Usage(limit=_slots(domain.total_resource_slots),
                                                occupied=by_domain[p.domain_name])
        if not isinstance(p.created_at, datetime):
            raise ValueError("it has no creation time")
        dep_ids = deps_of.get(p.id, [])
        blocking = int((p.status_data or {}).get("scheduler", {}).get("blocking_retries", p.skip_count or 0))
        return core.PendingSession(
            id=str(p.id), created_at=p.created_at, access_key=p.access_key, project_id=pid,
            domain=p.domain_name, resource_group=rg.name, requested_slots=_slots(p.requested_slots),
            user_id=str(p.user_id), session_type=p.session_type, cluster_size=p.cluster_size,
            cluster_mode=p.cluster_mode, architecture=p.architecture,
            designated_agents=tuple(p.designated_agents or ()), starts_at=p.starts_at,
            dependencies=tuple(str(d) for d in dep_ids), attempts=p.scheduling_attempts,
            blocking_retries=blocking)

    @staticmethod
    def _apply(decision, sess: ComputeSession, now: datetime, kernels_of, addr, scheduled: list, events: list) -> None:
        """Write one decision onto its rows (everything that can fail is computed first)."""
        record = {"last_try": now.isoformat(), "predicates": [
            {"name": p.name, "passed": p.passed, "message": p.message}
            for p in getattr(decision, "predicates", ())]}
        previous = sess.status_data if isinstance(sess.status_data, dict) else {}
        if isinstance(decision, core.Scheduled):
            placements = [(k, p.agent_id, addr[p.agent_id], p.slots.to_json())
                          for k, p in zip(kernels_of[sess.id], sorted(decision.placements, key=lambda p: p.index), strict=False)]
            occupying = decision.slots.to_json()
            for k, agent_id, agent_addr, slots in placements:
                k.agent_id, k.agent_addr, k.occupied_slots = agent_id, agent_addr, slots
                set_status(k, "SCHEDULED")
            sess.occupying_slots = occupying
            sess.scheduling_attempts = (sess.scheduling_attempts or 0) + 1
            sess.last_try_at = now
            sess.status_data = {**previous, "scheduler": {**record, "retries": sess.scheduling_attempts}}
            set_status(sess, "SCHEDULED", "scheduled")
            scheduled.append(sess.id)
            events.append((sess, "session_scheduled", "scheduled"))
        elif isinstance(decision, core.StillPending):
            sess.scheduling_attempts = decision.attempts
            sess.skip_count = decision.blocking_retries
            sess.last_try_at = now
            sess.status_info = "pending"
            sess.status_data = {**previous, "scheduler": {
                **record, "retries": decision.attempts, "blocking_retries": decision.blocking_retries,
                "blocked_by": decision.blocked_by, "msg": decision.message}}
        else:
            for k in kernels_of[sess.id]:
                set_status(k, "CANCELLED", decision.reason)
            sess.status_data = {**previous, "scheduler": {**record, "msg": decision.message}}
            set_status(sess, "CANCELLED", decision.reason)
            events.append((sess, "session_cancelled", decision.reason))


@dataclass(frozen=True)
class _Refused:
    """The session of a decision about a row that never became a ``core.PendingSession``."""
    id: str
