"""What a user may still allocate: limits, use and remainders (check-presets, UI-4)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.domain import LIVE_STATUSES
from workbay.common.errors import ObjectNotFound
from workbay.common.slots import ResourceSlot
from workbay.manager.models import Keypair, KeypairResourcePolicy, Project, ProjectMember, ResourceGroup, User
from workbay.manager.models.compute import Agent, ComputeSession

from .access import Actor
from .compute_admin import PresetInfo
from .context import ServiceContext

INF = Decimal("Infinity")


def _remaining(limit: ResourceSlot, using: ResourceSlot, slot_names: set[str]) -> ResourceSlot:
    out: dict[str, Decimal] = {}
    for name in slot_names:
        cap = limit.get(name, INF)
        out[name] = INF if cap.is_infinite() else max(cap - using.get(name, Decimal(0)), Decimal(0))
    return ResourceSlot(out)


async def member_project(s: AsyncSession, actor: Actor, project_ref: str | None) -> Project:
    """The caller's project by id or name (default "default"); 404 unless they are a member."""
    stmt = select(Project).where(Project.domain_name == actor.domain_name)
    try:
        stmt = stmt.where(Project.id == uuid.UUID(project_ref or ""))
    except ValueError:
        stmt = stmt.where(Project.name == (project_ref or "default"))
    project = (await s.execute(stmt)).scalar_one_or_none()
    if project is None or await s.get(ProjectMember, (project.id, actor.user_id)) is None:
        raise ObjectNotFound(object_name="project")
    return project


def _pct(value: Any) -> Decimal | None:
    try:
        out = Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return None
    return out if out.is_finite() else None


def measured_utilization(agents: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, float | None]:
    """What the nodes really use (UI-4 "utilization"), from each alive agent's heartbeat node stats:
    CPU percent weighted by the agent's cores, memory as used over total bytes. ``agents`` holds
    ``(available_slots, live_stat)`` pairs; None where no agent reported the figure."""
    cpu_sum = cpu_weight = Decimal(0)
    mem_used = mem_total = Decimal(0)
    for slots, live in agents:
        node = (live or {}).get("node") if isinstance(live, dict) else None
        if not isinstance(node, dict):
            continue
        cpu = _pct((node.get("cpu_util") or {}).get("pct")) if isinstance(node.get("cpu_util"), dict) else None
        if cpu is not None:
            weight = _pct((slots or {}).get("cpu")) or Decimal(1)
            cpu_sum += cpu * weight
            cpu_weight += weight
        mem = node.get("mem")
        if not isinstance(mem, dict):
            mem = {}
        used, total = _pct(mem.get("current")), _pct(mem.get("capacity"))
        if used is not None and total:
            mem_used += used
            mem_total += total
    return {"cpu": round(float(cpu_sum / cpu_weight), 1) if cpu_weight else None,
            "mem": round(float(mem_used / mem_total * 100), 1) if mem_total else None}


class SessionScope(Protocol):
    """What these services ask of the session service (injected, so no import cycle)."""

    async def resolve_owner(self, s: AsyncSession, actor: Actor,
                            owner_access_key: str | None) -> tuple[Keypair, User]: ...

    async def allowed_resource_groups(self, s: AsyncSession, domain: str,
                                      project_id: uuid.UUID) -> list[ResourceGroup]: ...


@dataclass(frozen=True)
class ResourceGroupRoom:
    """The caller's use of one resource group and what its agents still have free."""

    using: ResourceSlot
    remaining: ResourceSlot


@dataclass(frozen=True)
class PresetFit:
    preset: PresetInfo
    allocatable: bool


@dataclass(frozen=True)
class Allocatable:
    """What a keypair may still allocate (limits, use, remainders) and which presets fit."""

    keypair_limits: ResourceSlot
    keypair_using: ResourceSlot
    keypair_remaining: ResourceSlot
    project_limits: ResourceSlot
    project_using: ResourceSlot
    project_remaining: ResourceSlot
    resource_group_remaining: ResourceSlot
    resource_groups: dict[str, ResourceGroupRoom]
    presets: list[PresetFit]


# -- Workbay's own /resource/summary and /resource/agent-summary (Workbay's names on the wire) --------
class SummaryProject(BaseModel):
    id: str
    name: str


class SummaryAgents(BaseModel):
    alive: int
    total: int


class Utilization(BaseModel):
    cpu: float | None
    mem: float | None


class SummarySessions(BaseModel):
    running: int
    pending: int
    live: int


class MySessions(BaseModel):
    live: int
    limit: int


class ResourceSummaryOut(BaseModel):
    project: SummaryProject
    resource_group: str | None
    resource_groups: list[str]
    agents: SummaryAgents
    capacity: dict[str, str]
    occupied: dict[str, str]
    utilization: Utilization
    sessions: SummarySessions
    my_sessions: MySessions


class AgentSummaryItem(BaseModel):
    id: str
    status: str
    region: str | None
    architecture: str | None
    resource_group: str
    schedulable: bool
    available_slots: dict[str, Any]
    occupied_slots: dict[str, Any]
    first_contact: str | None


class AgentSummaryOut(BaseModel):
    items: list[AgentSummaryItem]
    total_count: int


class ResourceUsageService:
    def __init__(self, ctx: ServiceContext, sessions: SessionScope) -> None:
        self.ctx = ctx
        self.sessions = sessions

    async def check_presets(self, actor: Actor, resource_group: str | None, project_ref: str | None,
                            presets: list[PresetInfo], owner_access_key: str | None = None
                            ) -> Allocatable:
        """With ``owner_access_key`` (an admin launching for someone else, CS-4) the limits, use and
        project are the owner's, as the session will be theirs."""
        if owner_access_key and owner_access_key != actor.access_key:
            async with self.ctx.db() as s:
                kp, user = await self.sessions.resolve_owner(s, actor, owner_access_key)
            actor = Actor(user_id=user.uuid, email=user.email, role=user.role,
                          domain_name=user.domain_name, access_key=kp.access_key)
        async with self.ctx.db() as s:
            own_kp = await s.get(Keypair, actor.access_key)
            if own_kp is None:
                raise ObjectNotFound(object_name="keypair")
            policy = await s.get(KeypairResourcePolicy, own_kp.resource_policy)
            if policy is None:
                raise ObjectNotFound(f"The keypair's resource policy {own_kp.resource_policy} is gone.",
                                     object_name="keypair resource policy")
            project = await member_project(s, actor, project_ref)
            groups = await self.sessions.allowed_resource_groups(s, actor.domain_name, project.id)
            live = (await s.execute(select(ComputeSession).where(
                ComputeSession.status.in_(LIVE_STATUSES), ComputeSession.status != "PENDING",
                ComputeSession.session_type != "system"))).scalars().all()  # system sessions are free
            agents = (await s.execute(select(Agent).where(Agent.status == "ALIVE", Agent.schedulable.is_(True)))).scalars().all()
        slot_names = {"cpu", "mem"}
        for a in agents:
            slot_names.update(a.available_slots or {})
        key_using = sum((ResourceSlot.from_json(x.occupying_slots) for x in live if x.access_key == actor.access_key),
                        ResourceSlot())
        project_using = sum((ResourceSlot.from_json(x.occupying_slots) for x in live if x.project_id == project.id),
                            ResourceSlot())
        key_limit = ResourceSlot.from_json(policy.total_resource_slots or {})
        project_limit = ResourceSlot.from_json(project.total_resource_slots or {})
        key_remaining = _remaining(key_limit, key_using, slot_names)
        project_remaining = _remaining(project_limit, project_using, slot_names)
        by_group: dict[str, ResourceGroupRoom] = {}
        group_names = [g.name for g in groups]
        using_by_group: dict[str, ResourceSlot] = defaultdict(ResourceSlot)
        for x in live:
            if x.access_key == actor.access_key:
                using_by_group[x.resource_group] += ResourceSlot.from_json(x.occupying_slots)
        for name in group_names:
            free = ResourceSlot()
            for a in agents:
                if a.resource_group == name:
                    free = free + (ResourceSlot.from_json(a.available_slots) - ResourceSlot.from_json(a.occupied_slots))
            by_group[name] = ResourceGroupRoom(
                using=using_by_group[name], remaining=ResourceSlot({k: max(v, Decimal(0)) for k, v in free.items()}))
        chosen = resource_group if resource_group in by_group else (group_names[0] if group_names else None)
        rg_remaining = by_group[chosen].remaining if chosen else ResourceSlot()
        # Largest single agent free space decides whether one session fits.
        best_agent_free = [ResourceSlot.from_json(a.available_slots) - ResourceSlot.from_json(a.occupied_slots)
                           for a in agents if a.resource_group == chosen]
        fits = []
        for p in presets:
            need = ResourceSlot.from_json(p.resource_slots)
            fits_limits = need.within_limit(key_remaining) and need.within_limit(project_remaining)
            fits_agent = any(need.fits_in(free) for free in best_agent_free)
            fits.append(PresetFit(preset=p, allocatable=bool(fits_limits and fits_agent)))
        return Allocatable(
            keypair_limits=key_limit, keypair_using=key_using, keypair_remaining=key_remaining,
            project_limits=project_limit, project_using=project_using, project_remaining=project_remaining,
            resource_group_remaining=rg_remaining, resource_groups=by_group, presets=fits)


class ResourceSummary:
    """UI-4 and AS-1: what the resource groups a user may use hold, without admin details."""

    def __init__(self, ctx: ServiceContext, sessions: SessionScope) -> None:
        self.ctx = ctx
        self.sessions = sessions

    async def _scope(self, s: AsyncSession, actor: Actor, project_ref: str | None) -> tuple[Project, list[str]]:
        project = await member_project(s, actor, project_ref)
        groups = await self.sessions.allowed_resource_groups(s, actor.domain_name, project.id)
        return project, [g.name for g in groups]

    async def summary(self, actor: Actor, project_ref: str | None, resource_group: str | None) -> ResourceSummaryOut:
        async with self.ctx.db() as s:
            project, names = await self._scope(s, actor, project_ref)
            chosen = resource_group if resource_group in names else (names[0] if names else None)
            agents = (await s.execute(select(Agent).where(Agent.resource_group == chosen))).scalars().all()
            live = (await s.execute(select(ComputeSession).where(
                ComputeSession.status.in_(LIVE_STATUSES), ComputeSession.resource_group == chosen))).scalars().all()
            kp = await s.get(Keypair, actor.access_key)
            policy = await s.get(KeypairResourcePolicy, kp.resource_policy) if kp is not None else None
        alive = [a for a in agents if a.status == "ALIVE"]
        capacity = sum((ResourceSlot.from_json(a.available_slots) for a in alive), ResourceSlot())
        occupied = sum((ResourceSlot.from_json(a.occupied_slots) for a in alive), ResourceSlot())
        mine = [x for x in live if x.access_key == actor.access_key]
        visible = live if actor.role in ("superadmin", "admin", "monitor") else mine
        if actor.role in ("admin", "monitor"):
            visible = [x for x in live if x.domain_name == actor.domain_name]
        return ResourceSummaryOut(
            project=SummaryProject(id=str(project.id), name=project.name),
            resource_group=chosen, resource_groups=names,
            agents=SummaryAgents(alive=len(alive), total=len(agents)),
            capacity=capacity.to_json(), occupied=occupied.to_json(),
            utilization=Utilization.model_validate(
                measured_utilization([(a.available_slots, a.live_stat) for a in alive])),
            sessions=SummarySessions(running=sum(1 for x in visible if x.status == "RUNNING"),
                                   pending=sum(1 for x in visible if x.status == "PENDING"),
                                   live=len(visible)),
            my_sessions=MySessions(live=len(mine), limit=policy.max_concurrent_sessions if policy else 0))

    async def agents(self, actor: Actor, project_ref: str | None, resource_group: str | None) -> AgentSummaryOut:
        async with self.ctx.db() as s:
            _, names = await self._scope(s, actor, project_ref)
            wanted = [resource_group] if resource_group in names else names
            agents = (await s.execute(select(Agent).where(Agent.resource_group.in_(wanted))
                                      .order_by(Agent.id))).scalars().all() if wanted else []
        return AgentSummaryOut(items=[AgentSummaryItem(
            id=a.id, status=a.status, region=a.region, architecture=a.architecture,
            resource_group=a.resource_group, schedulable=a.schedulable,
            available_slots=a.available_slots or {}, occupied_slots=a.occupied_slots or {},
            first_contact=a.first_contact.isoformat() if a.first_contact else None,
        ) for a in agents], total_count=len(agents))
