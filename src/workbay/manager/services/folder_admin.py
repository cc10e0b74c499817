"""Storage hosts, the Data page's status numbers (VF-2), volumes and quotas per scope (VF-12/13)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.errors import GenericBadRequest, InvalidAPIParameters, ObjectNotFound
from workbay.manager.models import Folder, FolderShare, Project, QuotaLimit, User, UserResourcePolicy

from . import access
from .access import Actor
from .context import ServiceContext
from .folder_lookup import viewer_for
from .folders import FolderService


@dataclass(frozen=True)
class VolumeInfo:
    host: str
    backend: str
    capabilities: list[str]
    quota_supported: bool
    usage: dict[str, Any]  # the storage-proxy's used / total / percentage


@dataclass(frozen=True)
class StorageHosts:
    default: str | None
    allowed: list[str]
    volumes: list[VolumeInfo] = field(default_factory=list)  # of the allowed hosts


@dataclass(frozen=True)
class ScopeUsage:
    used_bytes: int | None
    limit_bytes: int | None  # None: unlimited


@dataclass(frozen=True)
class HostUsage:
    user: ScopeUsage
    project: ScopeUsage | None


@dataclass(frozen=True)
class FolderStatus:
    """The Data page's numbers (VF-2)."""

    user_count: int
    user_limit: int  # 0: unlimited
    project_count: int
    invited_count: int
    hosts: dict[str, HostUsage]


@dataclass(frozen=True)
class QuotaState:
    host: str
    quota_scope_id: str
    supported: bool
    limit_bytes: int | None
    explicit: bool
    default_limit_bytes: int | None
    used_bytes: int | None


def volume_of(raw: dict[str, Any]) -> VolumeInfo:
    return VolumeInfo(host=raw["host"], backend=raw["backend"], capabilities=list(raw["capabilities"]),
                  quota_supported=bool(raw["quota_supported"]), usage=dict(raw["usage"]))


class FolderAdmin:
    def __init__(self, ctx: ServiceContext, folders: FolderService) -> None:
        self.ctx = ctx
        self.folders = folders
        self.storage = folders.storage

    async def hosts(self, actor: Actor, project_ref: str | None = None) -> StorageHosts:
        """Hosts the caller may use (with those of the project ``project_ref``, an id)."""
        volumes = await self.folders.known_hosts()
        project_id = _uuid_or_none(project_ref)
        async with self.ctx.db() as s:
            if actor.is_superadmin:
                allowed = sorted(volumes)
            else:
                perms = await self.folders.host_permissions(s, actor)
                if project_id is not None:
                    for host, p in (await self.folders.host_permissions(s, actor, project_id)).items():
                        perms.setdefault(host, set()).update(p)
                allowed = sorted(h for h in perms if h in volumes)
        default = self.ctx.config.storage.default_volume_host
        return StorageHosts(default=default if default in allowed else (allowed[0] if allowed else None),
                            allowed=allowed, volumes=[volume_of(volumes[h]) for h in allowed])

    async def all_hosts(self, actor: Actor) -> StorageHosts:
        access.require_superadmin(actor)
        hosts = sorted(await self.folders.known_hosts())
        return StorageHosts(default=self.ctx.config.storage.default_volume_host, allowed=hosts)

    def allowed_types(self, actor: Actor) -> list[str]:
        """Ownership types the caller may create folders of."""
        return ["user", "project"] if actor.is_admin else ["user"]

    async def volumes(self, actor: Actor) -> list[VolumeInfo]:
        access.require_superadmin(actor)
        return [volume_of(v) for v in await self.storage.volumes()]

    async def status(self, actor: Actor, project_ref: str | None) -> FolderStatus:
        project_id = _uuid_or_none(project_ref)
        async with self.ctx.db() as s:
            viewer = await viewer_for(s, actor)
            user = await s.get(User, actor.user_id)
            policy = await s.get(UserResourcePolicy, user.resource_policy) if user else None
            user_count = (await s.execute(select(func.count()).select_from(Folder)
                                          .where(Folder.user_id == actor.user_id))).scalar_one()
            project_ids = list(viewer.project_ids)
            project_count = (await s.execute(select(func.count()).select_from(Folder).where(
                Folder.project_id.in_(project_ids), Folder.status == "ready"))).scalar_one() if project_ids else 0
            invited = (await s.execute(select(func.count()).select_from(FolderShare)
                                       .where(FolderShare.user_id == actor.user_id))).scalar_one()
        hosts = await self.hosts(actor, project_ref)
        per_host: dict[str, HostUsage] = {}
        for host in hosts.allowed:
            mine = await self._scope_usage(host, f"user:{actor.user_id}")
            theirs = None
            if project_id is not None and project_id in viewer.project_ids:
                theirs = await self._scope_usage(host, f"project:{project_id}")
            per_host[host] = HostUsage(user=mine, project=theirs)
        return FolderStatus(user_count=user_count, user_limit=policy.max_folder_count if policy else 0,
                            project_count=project_count, invited_count=invited, hosts=per_host)

    async def _scope_usage(self, host: str, qsid: str) -> ScopeUsage:
        state = await self.storage.get_quota(host, qsid)
        async with self.ctx.db() as s:
            limit, _, _ = await self.folders.effective_limit(s, host, qsid)
        return ScopeUsage(used_bytes=state.get("used_bytes", 0), limit_bytes=limit)

    # -- quotas --------------------------------------------------------------------------------------
    async def _check_scope(self, s: AsyncSession, actor: Actor, qsid: str) -> None:
        access.require_admin(actor)
        kind, _, raw = qsid.partition(":")
        oid = _uuid_or_none(raw)
        if kind not in ("user", "project") or oid is None:
            raise InvalidAPIParameters("quota_scope_id is user:<uuid> or project:<uuid>.")
        row: User | Project | None = await s.get(User, oid) if kind == "user" else await s.get(Project, oid)
        if row is None:
            raise ObjectNotFound(f"No such {kind}.", object_name=kind)
        access.check_domain_visible(actor, row.domain_name, kind)

    async def _host(self, host: str) -> None:
        if host not in await self.folders.known_hosts():
            raise InvalidAPIParameters(f"No such storage host: {host}")

    async def get_quota(self, actor: Actor, host: str, qsid: str) -> QuotaState:
        qsid = _normal_scope(qsid)
        async with self.ctx.db() as s:
            await self._check_scope(s, actor, qsid)
        await self._host(host)
        state = await self.storage.get_quota(host, qsid)
        async with self.ctx.db() as s:
            limit, explicit, default = await self.folders.effective_limit(s, host, qsid)
        return QuotaState(host=host, quota_scope_id=qsid, supported=bool(state.get("supported")),
                          limit_bytes=limit, explicit=explicit, default_limit_bytes=default,
                          used_bytes=state.get("used_bytes", 0))

    async def set_quota(self, actor: Actor, host: str, qsid: str, limit_bytes: int | None) -> QuotaState:
        qsid = _normal_scope(qsid)
        if limit_bytes is not None and (limit_bytes < 0 or limit_bytes > 2**62):
            raise InvalidAPIParameters("limit_bytes must be between 0 and 2^62.")
        async with self.ctx.db() as s:
            await self._check_scope(s, actor, qsid)
        await self._host(host)
        state = await self.storage.get_quota(host, qsid)
        if not state.get("supported"):
            raise GenericBadRequest(f"The volume of {host} does not support quotas.")
        async with self.ctx.db.begin() as s:
            row = await s.get(QuotaLimit, (host, qsid))
            if limit_bytes is None:
                if row is not None:
                    await s.delete(row)
            elif row is None:
                s.add(QuotaLimit(host=host, quota_scope_id=qsid, limit_bytes=limit_bytes))
            else:
                row.limit_bytes = limit_bytes
        await self.folders.sync_quota(host, qsid)
        return await self.get_quota(actor, host, qsid)


def _uuid_or_none(raw: str | None) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


def _normal_scope(qsid: str) -> str:
    kind, sep, raw = (qsid or "").partition(":")
    oid = _uuid_or_none(raw)
    if not sep or oid is None:
        raise InvalidAPIParameters("quota_scope_id is user:<uuid> or project:<uuid>.")
    return f"{kind}:{oid}"
