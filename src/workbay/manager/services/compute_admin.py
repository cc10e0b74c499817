"""Administration of compute: agents (AD-5), resource groups (AD-6), presets (AD-4), images (AD-2)."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.agent.client import AgentError
from workbay.common.domain import LIVE_STATUSES, AgentSelection, SchedulerKind
from workbay.common.errors import AlreadyExists, Conflict, InvalidAPIParameters, ObjectNotFound
from workbay.common.slots import ResourceSlot, SlotParseError
from workbay.common.text import MultilineText
from workbay.manager.models import Domain, Project, ResourceGroup
from workbay.manager.models.compute import (
    Agent,
    ComputeSession,
    Image,
    ResourceGroupForDomain,
    ResourceGroupForProject,
    ResourcePreset,
)

from . import access
from .access import Actor
from .agent_registry import AgentRegistry, Heartbeat, occupancy_by_agent
from .compute_ports import AgentClients
from .context import ServiceContext
from .serialize import iso

log = logging.getLogger(__name__)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def _object_name(v: str) -> str:
    if not NAME_RE.match(v):
        raise ValueError("1–64 letters, digits, '.', '_' or '-'")
    return v


ObjectName = Annotated[str, AfterValidator(_object_name)]


def _user_slots(v: dict[str, Any] | None, field: str) -> dict[str, str]:
    try:
        return ResourceSlot.from_user({k: x for k, x in (v or {}).items() if x is not None}).to_json()
    except (SlotParseError, ValueError) as e:
        raise InvalidAPIParameters(f"{field}: {e}", data={field: str(e)}) from e


JSONObject = dict[str, Any]


@dataclass(frozen=True)
class AgentInfo:
    """One agent as administrators see it (``occupied_slots``: what its live kernels hold)."""

    id: str
    status: str
    status_info: str | None
    schedulable: bool
    addr: str
    region: str
    resource_group: str
    architecture: str
    available_slots: JSONObject
    occupied_slots: JSONObject
    accelerators: list[Any]
    version: str
    first_contact: datetime | None
    last_heartbeat: datetime | None
    lost_at: datetime | None
    live_stat: JSONObject

    @classmethod
    def of(cls, a: Agent, occupied: dict[str, str] | None = None) -> AgentInfo:
        return cls(id=a.id, status=a.status, status_info=a.status_info, schedulable=a.schedulable, addr=a.addr,
                   region=a.region, resource_group=a.resource_group, architecture=a.architecture,
                   available_slots=a.available_slots,
                   occupied_slots=occupied if occupied is not None else a.occupied_slots,
                   accelerators=a.accelerators, version=a.version, first_contact=a.first_contact,
                   last_heartbeat=a.last_heartbeat, lost_at=a.lost_at, live_stat=a.live_stat)

    def as_json(self) -> JSONObject:
        return {"id": self.id, "status": self.status, "status_info": self.status_info,
                "schedulable": self.schedulable, "addr": self.addr, "region": self.region,
                "resource_group": self.resource_group, "architecture": self.architecture,
                "available_slots": self.available_slots, "occupied_slots": self.occupied_slots,
                "accelerators": self.accelerators, "version": self.version,
                "first_contact": iso(self.first_contact), "last_heartbeat": iso(self.last_heartbeat),
                "lost_at": iso(self.lost_at), "live_stat": self.live_stat}


@dataclass(frozen=True)
class ResourceGroupInfo:
    """A resource group with its scheduler options read out (defaults filled in) and the domains
    and projects (ids) it is allotted to."""

    name: str
    description: str
    is_active: bool
    is_public: bool
    scheduler: str
    scheduler_opts: JSONObject
    wsproxy_addr: str | None
    allowed_session_types: list[str]
    pending_timeout: int | float
    retries_to_skip: int
    agent_selection: str
    domains: list[str]
    projects: list[str]
    created_at: datetime | None

    @classmethod
    def of(cls, rg: ResourceGroup, domains: list[str], projects: list[str]) -> ResourceGroupInfo:
        opts = rg.scheduler_opts or {}
        return cls(name=rg.name, description=rg.description, is_active=rg.is_active, is_public=rg.is_public,
                   scheduler=rg.scheduler, scheduler_opts=opts, wsproxy_addr=rg.wsproxy_addr,
                   allowed_session_types=opts.get("allowed_session_types") or ["interactive", "batch", "inference"],
                   pending_timeout=opts.get("pending_timeout", 0), retries_to_skip=opts.get("retries_to_skip", 3),
                   agent_selection=opts.get("agent_selection", "dispersed"), domains=domains, projects=projects,
                   created_at=rg.created_at)

    def as_json(self) -> JSONObject:
        return {"name": self.name, "description": self.description, "is_active": self.is_active,
                "is_public": self.is_public, "scheduler": self.scheduler, "scheduler_opts": self.scheduler_opts,
                "wsproxy_addr": self.wsproxy_addr, "allowed_session_types": self.allowed_session_types,
                "pending_timeout": self.pending_timeout, "retries_to_skip": self.retries_to_skip,
                "agent_selection": self.agent_selection, "domains": self.domains, "projects": self.projects,
                "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class ImageInfo:
    id: uuid.UUID
    name: str
    registry: str
    tag: str
    architecture: str
    digest: str
    size_bytes: int
    labels: JSONObject
    min_slots: JSONObject
    service_ports: list[Any]
    installed_on: list[str]
    created_at: datetime | None
    modified_at: datetime | None

    @property
    def installed(self) -> bool:
        return bool(self.installed_on)

    @classmethod
    def of(cls, i: Image) -> ImageInfo:
        return cls(id=i.id, name=i.name, registry=i.image_registry, tag=i.tag, architecture=i.architecture,
                   digest=i.digest, size_bytes=i.size_bytes, labels=i.labels, min_slots=i.min_slots,
                   service_ports=i.service_ports, installed_on=i.installed_on, created_at=i.created_at,
                   modified_at=i.modified_at)

    def as_json(self) -> JSONObject:
        return {"id": str(self.id), "name": self.name, "registry": self.registry, "tag": self.tag,
                "architecture": self.architecture, "digest": self.digest, "size_bytes": self.size_bytes,
                "labels": self.labels, "min_slots": self.min_slots, "service_ports": self.service_ports,
                "installed_on": self.installed_on, "installed": self.installed,
                "created_at": iso(self.created_at), "modified_at": iso(self.modified_at)}


@dataclass(frozen=True)
class PresetInfo:
    name: str
    resource_slots: JSONObject
    shared_memory: int | None  # bytes
    resource_group: str | None  # None: offered in every resource group

    @classmethod
    def of(cls, p: ResourcePreset) -> PresetInfo:
        return cls(name=p.name, resource_slots=p.resource_slots, shared_memory=p.shared_memory,
                   resource_group=p.resource_group)

    def as_json(self) -> JSONObject:
        return {"name": self.name, "resource_slots": self.resource_slots,
                "shared_memory": str(self.shared_memory) if self.shared_memory is not None else None,
                "resource_group": self.resource_group}


@dataclass(frozen=True)
class RescanFailure:
    agent: str
    error: str


@dataclass(frozen=True)
class RescanResult:
    scanned_agents: list[str]
    failed: list[RescanFailure]
    images: list[ImageInfo]


class ResourceGroupFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: MultilineText | None = Field(None, max_length=4096)
    is_active: bool | None = None
    is_public: bool | None = None
    scheduler: SchedulerKind | None = None
    allowed_session_types: list[Literal["interactive", "batch", "inference"]] | None = Field(None, min_length=1)
    pending_timeout: float | None = Field(None, ge=0, le=10**7)
    retries_to_skip: int | None = Field(None, ge=0, le=10**6)
    agent_selection: AgentSelection | None = None
    wsproxy_addr: str | None = Field(None, max_length=1024)
    domains: list[Annotated[str, Field(max_length=256)]] | None = Field(None, max_length=1024)
    projects: list[Annotated[str, Field(max_length=256)]] | None = Field(None, max_length=1024)


class NewResourceGroup(ResourceGroupFields):
    name: ObjectName


class PresetFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource_slots: dict[str, Any] | None = None
    shared_memory: Annotated[str, Field(max_length=64)] | int | None = None
    resource_group: str | None = Field(None, max_length=64)


class NewPreset(PresetFields):
    name: ObjectName


class ImagePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_slots: dict[str, Any] | None = None
    service_ports: list[dict[str, Any]] | None = None

    @field_validator("service_ports")
    @classmethod
    def _ports(cls, v: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for p in v or []:
            if not isinstance(p.get("name"), str) or p.get("protocol") not in ("http", "tcp", "pty", "preopen"):
                raise ValueError("each app needs a name and a protocol (http, tcp, pty or preopen)")
            ports = p.get("ports")
            if not isinstance(ports, list) or not ports or not all(isinstance(x, int) and 1 <= x <= 65535 for x in ports):
                raise ValueError("each app needs ports between 1 and 65535")
        return v


class ComputeAdmin:
    def __init__(self, ctx: ServiceContext, agents: AgentClients) -> None:
        self.ctx = ctx
        self.agents = agents

    # -- agents ------------------------------------------------------------------------------------
    async def list_agents(self, actor: Actor, status: str | None, resource_group: str | None) -> list[AgentInfo]:
        access.require_reader(actor)
        stmt = select(Agent).order_by(Agent.id)
        if status:
            stmt = stmt.where(Agent.status == status.upper())
        if resource_group:
            stmt = stmt.where(Agent.resource_group == resource_group)
        async with self.ctx.db() as s:
            agents = (await s.execute(stmt)).scalars().all()
            occupied = await occupancy_by_agent(s)
        return [AgentInfo.of(a, occupied.get(a.id, ResourceSlot()).to_json()) for a in agents]

    async def set_schedulable(self, actor: Actor, agent_id: str, schedulable: bool) -> AgentInfo:
        access.require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            agent = await s.get(Agent, agent_id)
            if agent is None:
                raise ObjectNotFound(object_name="agent")
            agent.schedulable = schedulable
            return AgentInfo.of(agent)

    # -- resource groups -----------------------------------------------------------------------------
    async def _rg_links(self, s: AsyncSession, name: str) -> tuple[list[str], list[str]]:
        domains = (await s.execute(select(ResourceGroupForDomain.domain_name).where(
            ResourceGroupForDomain.resource_group == name))).scalars().all()
        projects = (await s.execute(select(ResourceGroupForProject.project_id).where(
            ResourceGroupForProject.resource_group == name))).scalars().all()
        return sorted(domains), sorted(str(p) for p in projects)

    async def list_resource_groups(self, actor: Actor) -> list[ResourceGroupInfo]:
        access.require_reader(actor)
        async with self.ctx.db() as s:
            rows = (await s.execute(select(ResourceGroup).order_by(ResourceGroup.name))).scalars().all()
            return [ResourceGroupInfo.of(rg, *(await self._rg_links(s, rg.name))) for rg in rows]

    async def get_resource_group(self, actor: Actor, name: str) -> ResourceGroupInfo:
        access.require_reader(actor)
        async with self.ctx.db() as s:
            rg = await s.get(ResourceGroup, name)
            if rg is None:
                raise ObjectNotFound(object_name="resource group")
            return ResourceGroupInfo.of(rg, *(await self._rg_links(s, name)))

    async def _apply_rg(self, s: AsyncSession, rg: ResourceGroup, fields: dict[str, Any]) -> None:
        opts = dict(rg.scheduler_opts or {})
        for key in ("allowed_session_types", "pending_timeout", "retries_to_skip", "agent_selection"):
            if fields.get(key) is not None:
                opts[key] = fields[key]
        rg.scheduler_opts = opts
        for key in ("description", "is_active", "is_public", "scheduler", "wsproxy_addr"):
            if key in fields and fields[key] is not None:
                setattr(rg, key, fields[key])
        if fields.get("domains") is not None:
            await s.execute(delete(ResourceGroupForDomain).where(
                ResourceGroupForDomain.resource_group == rg.name).execution_options(synchronize_session=False))
            for d in dict.fromkeys(fields["domains"]):
                if await s.get(Domain, d) is None:
                    raise InvalidAPIParameters(f"No such domain: {d}", data={"domains": d})
                s.add(ResourceGroupForDomain(resource_group=rg.name, domain_name=d))
        if fields.get("projects") is not None:
            await s.execute(delete(ResourceGroupForProject).where(
                ResourceGroupForProject.resource_group == rg.name).execution_options(synchronize_session=False))
            for p in dict.fromkeys(fields["projects"]):
                try:
                    pid = uuid.UUID(p)
                except ValueError as e:
                    raise InvalidAPIParameters(f"Not a project id: {p}", data={"projects": p}) from e
                if await s.get(Project, pid) is None:
                    raise InvalidAPIParameters(f"No such project: {p}", data={"projects": p})
                s.add(ResourceGroupForProject(resource_group=rg.name, project_id=pid))

    async def create_resource_group(self, actor: Actor, new: NewResourceGroup) -> ResourceGroupInfo:
        access.require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            if await s.get(ResourceGroup, new.name) is not None:
                raise AlreadyExists("A resource group with this name already exists.", data={"name": "already exists"})
            rg = ResourceGroup(name=new.name, description="", scheduler="fifo", scheduler_opts={})
            s.add(rg)
            await s.flush()
            await self._apply_rg(s, rg, new.model_dump())
            await s.flush()
            return ResourceGroupInfo.of(rg, *(await self._rg_links(s, rg.name)))

    async def update_resource_group(self, actor: Actor, name: str, patch: ResourceGroupFields
                                    ) -> ResourceGroupInfo:
        access.require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            rg = await s.get(ResourceGroup, name)
            if rg is None:
                raise ObjectNotFound(object_name="resource group")
            await self._apply_rg(s, rg, patch.model_dump(exclude_unset=True))
            await s.flush()
            return ResourceGroupInfo.of(rg, *(await self._rg_links(s, name)))

    async def delete_resource_group(self, actor: Actor, name: str) -> None:
        access.require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            rg = await s.get(ResourceGroup, name)
            if rg is None:
                raise ObjectNotFound(object_name="resource group")
            agents = (await s.execute(select(func.count()).select_from(Agent).where(
                Agent.resource_group == name, Agent.status == "ALIVE"))).scalar_one()
            sessions = (await s.execute(select(func.count()).select_from(ComputeSession).where(
                ComputeSession.resource_group == name, ComputeSession.status.in_(LIVE_STATUSES)))).scalar_one()
            if agents or sessions:
                raise Conflict(f"The resource group still has {agents} agents and {sessions} live sessions.")
            await s.delete(rg)

    # -- presets ---------------------------------------------------------------------------------------
    async def list_presets(self, resource_group: str | None = None) -> list[PresetInfo]:
        async with self.ctx.db() as s:
            stmt = select(ResourcePreset).order_by(ResourcePreset.name)
            rows = (await s.execute(stmt)).scalars().all()
        return [PresetInfo.of(p) for p in rows
                if resource_group is None or p.resource_group in (None, resource_group)]

    def _preset_values(self, fields: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if fields.get("resource_slots") is not None:
            out["resource_slots"] = _user_slots(fields["resource_slots"], "resource_slots")
            if "cpu" not in out["resource_slots"] or "mem" not in out["resource_slots"]:
                raise InvalidAPIParameters("A preset needs cpu and mem.", data={"resource_slots": "cpu and mem"})
        if "shared_memory" in fields:
            shm = fields["shared_memory"]
            if shm in (None, ""):
                out["shared_memory"] = None
            else:
                amount = ResourceSlot.from_json(_user_slots({"mem": shm}, "shared_memory"))["mem"]
                if amount >= 2**63:  # from_user amounts are finite
                    raise InvalidAPIParameters("shared_memory: too large", data={"shared_memory": "too large"})
                out["shared_memory"] = int(amount)
        if "resource_group" in fields:
            out["resource_group"] = fields["resource_group"] or None
        return out

    async def create_preset(self, actor: Actor, new: NewPreset) -> PresetInfo:
        access.require_superadmin(actor)
        values = self._preset_values(new.model_dump())
        if "resource_slots" not in values:
            raise InvalidAPIParameters("resource_slots is required.", data={"resource_slots": "required"})
        async with self.ctx.db.begin() as s:
            if await s.get(ResourcePreset, new.name) is not None:
                raise AlreadyExists("A preset with this name already exists.", data={"name": "already exists"})
            if values.get("resource_group") and await s.get(ResourceGroup, values["resource_group"]) is None:
                raise InvalidAPIParameters("No such resource group.", data={"resource_group": "unknown"})
            self._check_shmem(values)
            preset = ResourcePreset(name=new.name, **values)
            s.add(preset)
            await s.flush()
            return PresetInfo.of(preset)

    @staticmethod
    def _check_shmem(values: dict[str, Any]) -> None:
        shm, slots = values.get("shared_memory"), values.get("resource_slots") or {}
        if shm is not None and "mem" in slots and shm > int(slots["mem"]):
            raise InvalidAPIParameters("Shared memory cannot exceed the memory size.", data={"shared_memory": "> mem"})

    async def update_preset(self, actor: Actor, name: str, patch: PresetFields) -> PresetInfo:
        access.require_superadmin(actor)
        values = self._preset_values(patch.model_dump(exclude_unset=True))
        async with self.ctx.db.begin() as s:
            preset = await s.get(ResourcePreset, name)
            if preset is None:
                raise ObjectNotFound(object_name="resource preset")
            if values.get("resource_group") and await s.get(ResourceGroup, values["resource_group"]) is None:
                raise InvalidAPIParameters("No such resource group.", data={"resource_group": "unknown"})
            self._check_shmem({"resource_slots": preset.resource_slots, "shared_memory": preset.shared_memory, **values})
            for key, value in values.items():
                setattr(preset, key, value)
            await s.flush()
            return PresetInfo.of(preset)

    async def delete_preset(self, actor: Actor, name: str) -> None:
        access.require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            preset = await s.get(ResourcePreset, name)
            if preset is None:
                raise ObjectNotFound(object_name="resource preset")
            await s.delete(preset)

    # -- images ------------------------------------------------------------------------------------------
    async def list_images(self, actor: Actor, installed_only: bool = False) -> list[ImageInfo]:
        async with self.ctx.db() as s:
            rows = (await s.execute(select(Image).order_by(Image.name))).scalars().all()
        return [ImageInfo.of(i) for i in rows if i.installed_on or not installed_only]

    async def _image(self, s: AsyncSession, ref: str) -> Image:
        try:
            row = await s.get(Image, uuid.UUID(ref))
        except ValueError:
            row = (await s.execute(select(Image).where(Image.name == ref))).scalars().first()
        if row is None:
            raise ObjectNotFound(object_name="environment image")
        return row

    async def update_image(self, actor: Actor, ref: str, patch: ImagePatch) -> ImageInfo:
        access.require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            image = await self._image(s, ref)
            if patch.min_slots is not None:
                image.min_slots = _user_slots(patch.min_slots, "min_slots")
            if patch.service_ports is not None:
                image.service_ports = patch.service_ports
            await s.flush()
            return ImageInfo.of(image)

    async def rescan_images(self, actor: Actor) -> RescanResult:
        """Ask every live agent to rescan its images, then refresh the catalog from their answers."""
        access.require_superadmin(actor)
        async with self.ctx.db() as s:
            agents = (await s.execute(select(Agent).where(Agent.status == "ALIVE"))).scalars().all()
        registry = AgentRegistry(self.ctx)
        scanned: list[str] = []
        failed: list[RescanFailure] = []

        async def one(agent: Agent) -> None:
            try:
                async with self.agents.client(agent.addr, timeout=120) as client:
                    await client.rescan_images()
                    info = await client.info()
                await registry.heartbeat(Heartbeat.model_validate({**info, "id": agent.id}))
                scanned.append(agent.id)
            except (AgentError, httpx.HTTPError, OSError, ValueError) as e:
                log.warning("image rescan on agent %s failed: %s", agent.id, e)
                failed.append(RescanFailure(agent=agent.id, error=str(e)))

        await asyncio.gather(*(one(a) for a in agents))
        return RescanResult(scanned_agents=sorted(scanned), failed=failed, images=await self.list_images(actor))
