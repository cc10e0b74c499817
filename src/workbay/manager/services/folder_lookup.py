"""Finding folders as a caller sees them: which folders, with which permission."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.domain import LIVE_STATUSES
from workbay.common.errors import Conflict, InsufficientPrivilege, ObjectNotFound
from workbay.manager.models import ComputeSession, Folder, FolderShare, ProjectMember

from .access import Actor
from .folder_rules import CLONING, IN_TRASH, READY, Viewer, effective_permission


@dataclass
class Visible:
    folder: Folder
    permission: str
    share: str | None  # the caller's share, when the folder is shared with them


async def viewer_for(s: AsyncSession, actor: Actor) -> Viewer:
    rows = await s.execute(select(ProjectMember.project_id).where(ProjectMember.user_id == actor.user_id))
    return Viewer(actor.user_id, actor.role, actor.domain_name, frozenset(r[0] for r in rows.all()))


def permission_of(viewer: Viewer, f: Folder, share: str | None) -> str | None:
    return effective_permission(viewer, ownership_type=f.ownership_type, owner_user=f.user_id,
                                owner_project=f.project_id, folder_domain=f.domain_name,
                                folder_permission=f.permission, share=share)


async def shares_of(s: AsyncSession, user_id: uuid.UUID) -> dict[uuid.UUID, str]:
    rows = await s.execute(select(FolderShare.folder_id, FolderShare.permission)
                           .where(FolderShare.user_id == user_id))
    return dict(rows.all())


async def visible_folders(s: AsyncSession, actor: Actor, viewer: Viewer, *, all_folders: bool = False) -> list[Visible]:
    """Own folders, project folders of the caller's projects (every project folder of their domain
    for admins), folders shared with them; ``all_folders`` (superadmin) adds everyone's."""
    shares = await shares_of(s, actor.user_id)
    conds = [Folder.user_id == actor.user_id]
    if viewer.project_ids:
        conds.append(Folder.project_id.in_(viewer.project_ids))
    if shares:
        conds.append(Folder.id.in_(list(shares)))
    if actor.role == "admin":
        conds.append((Folder.ownership_type == "project") & (Folder.domain_name == actor.domain_name))
    stmt = select(Folder)
    if not (all_folders and actor.is_superadmin):
        stmt = stmt.where(or_(*conds))
    out = []
    for f in (await s.execute(stmt.order_by(Folder.created_at))).scalars().all():
        share = shares.get(f.id)
        perm = permission_of(viewer, f, share)
        if perm is None:
            continue
        if f.status != READY and perm != "wd":
            continue  # a folder in the trash is its managers' business only
        out.append(Visible(f, perm, share))
    return out


def _as_uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


async def resolve(s: AsyncSession, actor: Actor, ref: str, *, trash: bool = False) -> Visible:
    """A folder by id (hex or dashed) or name: own folders first, then project folders, then shares.
    Folders the caller cannot see answer 404 — they do not learn that they exist."""
    viewer = await viewer_for(s, actor)
    fid = _as_uuid(ref)
    if fid is not None:
        f = await s.get(Folder, fid)
        if f is not None:
            share = (await shares_of(s, actor.user_id)).get(f.id)
            perm = permission_of(viewer, f, share)
            if perm is not None and (f.status == READY or perm == "wd"):
                return _check_trash(Visible(f, perm, share), trash)
    candidates = [v for v in await visible_folders(s, actor, viewer) if v.folder.name == ref]
    if not candidates:
        raise ObjectNotFound(f"No such folder: {ref}", object_name="virtual folder")

    def rank(v: Visible) -> int:
        if v.folder.user_id == actor.user_id:
            return 0
        return 1 if v.share is None else 2
    candidates.sort(key=rank)
    return _check_trash(candidates[0], trash)


def _check_trash(v: Visible, trash: bool) -> Visible:
    if v.folder.status == IN_TRASH and not trash:
        raise ObjectNotFound(f"The folder {v.folder.name} is in the trash.", object_name="virtual folder")
    if v.folder.status == CLONING and not trash:
        raise Conflict(f"The folder {v.folder.name} is still being cloned; try again shortly.")
    return v


def require(perm_ok: bool, what: str) -> None:
    if not perm_ok:
        raise InsufficientPrivilege(f"You do not have permission to {what}.")


async def live_mount_users(s: AsyncSession, folder_id: uuid.UUID) -> list[str]:
    """Names of live sessions that mount the folder."""
    rows = await s.execute(select(ComputeSession.name, ComputeSession.mounts)
                           .where(ComputeSession.status.in_(LIVE_STATUSES)))
    fid = str(folder_id)
    return [name for name, mounts in rows.all()
            if any(isinstance(m, dict) and m.get("folder_id") == fid for m in (mounts or []))]
