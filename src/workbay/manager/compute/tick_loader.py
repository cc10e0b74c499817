"""The one place that reads the database into the pure scheduler's input.

``load_group`` turns one resource group's rows (its PENDING sessions and their kernels, its live
agents, the keypairs / projects / domains involved and what they occupy, the dependencies) into a
``SchedulingInput`` plus what the dispatcher needs to write the decisions back.  Everything per
session comes from a few set queries (never one query per session: the pass must stay cheap with
thousands queued).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.domain import LIVE_STATUSES, SessionStatus, SessionType
from workbay.common.slots import ResourceSlot
from workbay.manager.models import Domain, Keypair, KeypairResourcePolicy, Project, ResourceGroup
from workbay.manager.models.compute import Agent, ComputeSession, Kernel, SessionDependency
from workbay.manager.scheduler import core
from workbay.manager.services.agent_registry import occupancy_by_agent

log = logging.getLogger(__name__)


def group_policy(rg: ResourceGroup) -> core.ResourceGroupPolicy:
    """A resource group row's scheduler settings (unknown values raise ``ValueError``)."""
    opts = rg.scheduler_opts or {}
    return core.ResourceGroupPolicy(
        name=rg.name, scheduler=core.enum_value(core.SchedulerKind, rg.scheduler or "fifo", "scheduler"),
        pending_timeout=float(opts.get("pending_timeout") or 0),
        retries_to_skip=int(opts.get("retries_to_skip", core.DEFAULT_RETRIES_TO_SKIP)),
        allowed_session_types=frozenset(opts.get("allowed_session_types") or core.ALL_SESSION_TYPES),
        agent_selection=core.enum_value(core.AgentSelection, opts.get("agent_selection") or "dispersed",
                                        "agent selection"))


def slots_of(data: dict[str, Any] | None) -> ResourceSlot:
    return ResourceSlot.from_json(data or {})


def dependency_state(sess: ComputeSession) -> core.DependencyState:
    if sess.status in (SessionStatus.ERROR, SessionStatus.CANCELLED) or sess.result == "FAILURE":
        return core.DependencyState.FAILED
    if sess.status == SessionStatus.TERMINATED:
        return core.DependencyState.SUCCEEDED
    return core.DependencyState.WAITING


@dataclass
class GroupSnapshot:
    """One resource group as loaded for a tick: the core's input and the rows to write back to."""
    input: core.SchedulingInput
    rows: dict[str, ComputeSession]  # pending session id -> row
    kernels_of: dict[uuid.UUID, list[Kernel]]  # pending session id -> its kernels, main first
    agent_addr: dict[str, str]  # agent id -> RPC address (every agent)
    # Rows no API accepts (written around it, or by an older version), with why: the dispatcher
    # cancels them on their own, never failing the tick for everyone else.
    refused: list[tuple[ComputeSession, str]] = field(default_factory=list)


@dataclass
class _Usage:
    """What live sessions occupy, summed per scope (loaded once per group)."""
    by_key: dict[str, ResourceSlot] = field(default_factory=lambda: defaultdict(ResourceSlot))
    active: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_project: dict[str, ResourceSlot] = field(default_factory=lambda: defaultdict(ResourceSlot))
    by_domain: dict[str, ResourceSlot] = field(default_factory=lambda: defaultdict(ResourceSlot))
    in_group: dict[str, ResourceSlot] = field(default_factory=lambda: defaultdict(ResourceSlot))
    keypairs: dict[str, core.KeypairQuota] = field(default_factory=dict)
    projects: dict[str, core.Usage] = field(default_factory=dict)
    domains: dict[str, core.Usage] = field(default_factory=dict)


async def pending_groups(s: AsyncSession) -> list[str]:
    """Resource groups with at least one PENDING session."""
    return list((await s.execute(select(ComputeSession.resource_group).where(
        ComputeSession.status == SessionStatus.PENDING).distinct())).scalars().all())


async def load_group(s: AsyncSession, rg: ResourceGroup, now: datetime) -> GroupSnapshot:
    pending_ids = select(ComputeSession.id).where(
        ComputeSession.resource_group == rg.name, ComputeSession.status == SessionStatus.PENDING)
    pending_rows = (await s.execute(select(ComputeSession).where(ComputeSession.id.in_(pending_ids)))).scalars().all()
    kernels_of: dict[uuid.UUID, list[Kernel]] = defaultdict(list)
    for k in (await s.execute(select(Kernel).where(Kernel.session_id.in_(pending_ids))
                              .order_by(Kernel.cluster_role != "main", Kernel.cluster_idx))).scalars():
        kernels_of[k.session_id].append(k)
    deps_of: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for sid, dep_id in (await s.execute(select(SessionDependency.session_id, SessionDependency.depends_on)
                                        .where(SessionDependency.session_id.in_(pending_ids)))).all():
        deps_of[sid].append(dep_id)
    deps: dict[str, core.DependencyState] = {}
    if any(deps_of.values()):
        dep_rows = select(ComputeSession).join(
            SessionDependency, SessionDependency.depends_on == ComputeSession.id).where(
            SessionDependency.session_id.in_(pending_ids))
        for dep in (await s.execute(dep_rows)).scalars().unique():
            deps[str(dep.id)] = dependency_state(dep)
    agents = await _agents(s, rg.name)
    addr = {a.id: a.addr for a in (await s.execute(select(Agent))).scalars()}
    usage = await _usage(s, rg.name)
    pending: list[core.PendingSession] = []
    refused: list[tuple[ComputeSession, str]] = []
    for p in pending_rows:
        try:
            pending.append(await _pending_session(s, p, rg.name, deps_of, usage))
        except Exception as e:  # any unreadable row is refused on its own, with the error
            log.warning("pending session %s cannot be scheduled: %s", p.id, e)
            refused.append((p, str(e) or type(e).__name__))
    inp = core.SchedulingInput(
        now=now, resource_group=group_policy(rg), agents=agents, pending=pending, keypairs=usage.keypairs,
        projects=usage.projects, domains=usage.domains, dependencies=deps, group_usage=usage.in_group)
    return GroupSnapshot(input=inp, rows={str(p.id): p for p in pending_rows}, kernels_of=kernels_of,
                         agent_addr=addr, refused=refused)


async def _agents(s: AsyncSession, group: str) -> list[core.AgentCapacity]:
    occupied = await occupancy_by_agent(s)
    agents = []
    for a in (await s.execute(select(Agent).where(Agent.resource_group == group,
                                                 Agent.status == "ALIVE"))).scalars():
        try:
            agents.append(core.AgentCapacity(id=a.id, resource_group=a.resource_group,
                                             total_slots=slots_of(a.available_slots),
                                             occupied_slots=occupied.get(a.id, ResourceSlot()),
                                             architecture=a.architecture, schedulable=a.schedulable))
        except (TypeError, ValueError, ArithmeticError) as e:
            log.warning("agent %s reports unreadable capacity: %s (not a candidate this tick)", a.id, e)
    return agents


async def _usage(s: AsyncSession, group: str) -> _Usage:
    usage = _Usage()
    live = (await s.execute(select(ComputeSession).where(ComputeSession.status.in_(LIVE_STATUSES)))).scalars().all()
    for sess in live:
        if sess.status == SessionStatus.PENDING or sess.session_type == SessionType.SYSTEM:
            continue
        try:
            slots = slots_of(sess.occupying_slots)
        except (TypeError, ValueError, ArithmeticError) as e:
            log.warning("session %s occupies unreadable slots: %s (not counted)", sess.id, e)
            continue
        usage.by_key[sess.access_key] += slots
        usage.active[sess.access_key] += 1
        usage.by_project[str(sess.project_id)] += slots
        usage.by_domain[sess.domain_name] += slots
        if sess.resource_group == group:
            usage.in_group[sess.access_key] += slots
    return usage


async def _pending_session(s: AsyncSession, p: ComputeSession, group: str,
                           deps_of: dict[uuid.UUID, list[uuid.UUID]], usage: _Usage) -> core.PendingSession:
    """One PENDING row as the pure core sees it, loading its keypair / project / domain usage on
    first sight; raises on a row that cannot be read."""
    if p.access_key not in usage.keypairs:
        kp = await s.get(Keypair, p.access_key)
        if kp is None:
            raise ValueError(f"its keypair {p.access_key} no longer exists")
        policy = await s.get(KeypairResourcePolicy, kp.resource_policy)
        if policy is None:
            raise ValueError(f"its keypair's resource policy {kp.resource_policy!r} no longer exists")
        usage.keypairs[p.access_key] = core.KeypairQuota(
            limit=slots_of(policy.total_resource_slots), occupied=usage.by_key[p.access_key],
            max_concurrent_sessions=policy.max_concurrent_sessions, active_sessions=usage.active[p.access_key])
    pid = str(p.project_id)
    if pid not in usage.projects:
        project = await s.get(Project, p.project_id)
        if project is None:
            raise ValueError(f"its project {pid} no longer exists")
        usage.projects[pid] = core.Usage(limit=slots_of(project.total_resource_slots),
                                         occupied=usage.by_project[pid])
    if p.domain_name not in usage.domains:
        domain = await s.get(Domain, p.domain_name)
        if domain is None:
            raise ValueError(f"its domain {p.domain_name!r} no longer exists")
        usage.domains[p.domain_name] = core.Usage(limit=slots_of(domain.total_resource_slots),
                                                  occupied=usage.by_domain[p.domain_name])
    if not isinstance(p.created_at, datetime):
        raise ValueError("it has no creation time")
    blocking = int((p.status_data or {}).get("scheduler", {}).get("blocking_retries", p.skip_count or 0))
    return core.PendingSession(
        id=str(p.id), created_at=p.created_at, access_key=p.access_key, project_id=pid,
        domain=p.domain_name, resource_group=group, requested_slots=slots_of(p.requested_slots),
        user_id=str(p.user_id), session_type=core.enum_value(core.SessionType, p.session_type, "session type"),
        cluster_size=p.cluster_size, cluster_mode=core.enum_value(core.ClusterMode, p.cluster_mode, "cluster mode"),
        architecture=p.architecture,
        designated_agents=tuple(p.designated_agents or ()), starts_at=p.starts_at,
        dependencies=tuple(str(d) for d in deps_of.get(p.id, [])), attempts=p.scheduling_attempts,
        blocking_retries=blocking)
