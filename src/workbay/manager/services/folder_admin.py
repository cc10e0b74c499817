"""Storage hosts, the Data page's status numbers (VF-2), volumes and quotas per scope (VF-12/13)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from workbay.common.errors import GenericBadRequest, InvalidAPIParameters, ObjectNotFound
from workbay.manager.models import Folder, FolderShare, Project, QuotaLimit, User, UserResourcePolicy

from . import access
from .access import Actor
from .context import ServiceContext
from .folder_lookup import viewer_for
from .folders import FolderService


class FolderAdmin:
    def __init__(self, ctx: ServiceContext, folders: FolderService) -> None:
        self.ctx = ctx
        self.folders = folders
        self.storage = folders.storage

    async def hosts(self, actor: Actor, group_id: str | None = None) -> dict[str, Any]:
        volumes = await self.folders.known_hosts()
        project_id = _uuid_or_none(group_id)
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
        info = {h: {"backend": volumes[h]["backend"], "capabilities": volumes[h]["capabilities"],
                    "usage": volumes[h]["usage"], "sftp_scaling_groups": []} for h in allowed}
        return {"default": default if default in allowed else (allowed[0] if allowed else None),
                "allowed": allowed, "volume_info": info}

    async def all_hosts(self, actor: Actor) -> dict[str, Any]:
        access.require_superadmin(actor)
        hosts = sorted(await self.folders.known_hosts())
        return {"default": self.ctx.config.storage.default_volume_host, "allowed": hosts}

    def allowed_types(self, actor: Actor) -> list[str]:
        return ["user", "group"] if actor.is_admin else ["user"]

    async def volumes(self, actor: Actor) -> dict[str, Any]:
        access.require_superadmin(actor)
        return {"volumes": [{k: v[k] for k in ("host", "backend", "capabilities", "quota_supported", "usage")}
                            for v in await self.storage.volumes()]}

    async def status(self, actor: Actor, group_id: str | None) -> dict[str, Any]:
        project_id = _uuid_or_none(group_id)
        async with self.ctx.db() as s:
            viewer = await viewer_for(s, actor)
            user = await s.get(User, actor.user_id)
            policy = await s.get(UserResourcePolicy, user.resource_policy)
            user_count = (await s.execute(select(func.count()).select_from(Folder)
                                          .where(Folder.user_id == actor.user_id))).scalar_one()
            project_ids = list(viewer.project_ids)
            project_count = (await s.execute(select(func.count()).select_from(Folder).where(
                Folder.project_id.in_(project_ids), Folder.status == "ready"))).scalar_one() if project_ids else 0
            invited = (await s.execute(select(func.count()).select_from(FolderShare)
                                       .where(FolderShare.user_id == actor.user_id))).scalar_one()
        hosts = await self.hosts(actor, group_id)
        per_host: dict[str, Any] = {}
        for host in hosts["allowed"]:
            entry: dict[str, Any] = {"user": await self._scope_usage(host, f"user:{actor.user_id}"),
                                     "project": None}
            if project_id is not None and project_id in viewer.project_ids:
                entry["project"] = await self._scope_usage(host, f"project:{project_id}")
            per_host[host] = entry
        return {"user_count": user_count, "user_limit": policy.max_vfolder_count if policy else 0,
                "project_count": project_count, "invited_count": invited, "hosts": per_host}

    async def _scope_usage(self, host: str, qsid: str) -> dict[str, Any]:
        state = await self.storage.get_quota(host, qsid)
        async with self.ctx.db() as s:
            limit, _, _ = await self.folders.effective_limit(s, host, qsid)
        return {"used_bytes": state.get("used_bytes", 0), "limit_bytes": limit}

    # -- quotas --------------------------------------------------------------------------------------
    async def _check_scope(self, s, actor: Actor, qsid: str) -> None:
        access.require_admin(actor)
        kind, _, raw = qsid.partition(":")
        oid = _uuid_or_none(raw)
        if kind == "group":
            kind = "project"
        if kind not in ("user", "project") or oid is None:
            raise InvalidAPIParameters("quota_scope_id is user:<uuid> or project:<uuid>.")
        row = await s.get(User, oid) if kind == "user" else await s.get(Project, oid)
        if row is None:
            raise ObjectNotFound(f"No such {kind}.", object_name=kind)
        access.check_domain_visible(actor, row.domain_name, kind)

    async def _host(self, host: str) -> None:
        if host not in await self.folders.known_hosts():
            raise InvalidAPIParameters(f"No such storage host: {host}")

    async def get_quota(self, actor: Actor, host: str, qsid: str) -> dict[str, Any]:
        qsid = _normal_scope(qsid)
        async with self.ctx.db() as s:
            await self._check_scope(s, actor, qsid)
        await self._host(host)
        state = await self.storage.get_quota(host, qsid)
        async with self.ctx.db() as s:
            limit, explicit, default = await self.folders.effective_limit(s, host, qsid)
        return {"host": host, "quota_scope_id": qsid, "supported": bool(state.get("supported")),
                "limit_bytes": limit, "explicit": explicit, "default_limit_bytes": default,
                "used_bytes": state.get("used_bytes", 0)}

    async def set_quota(self, actor: Actor, host: str, qsid: str, limit_bytes: int | None) -> dict[str, Any]:
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
    return f"{'project' if kind == 'group' else kind}:{oid}"
