"""Storage folders: create, list, info, rename, trash/restore/purge, clone, files and transfers."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.errors import (
    AlreadyExists,
    Conflict,
    GenericBadRequest,
    InsufficientPrivilege,
    InvalidAPIParameters,
    ObjectNotFound,
)
from workbay.manager.models import (
    Domain,
    Folder,
    FolderShare,
    Keypair,
    KeypairResourcePolicy,
    Project,
    ProjectMember,
    ProjectResourcePolicy,
    QuotaLimit,
    User,
    UserResourcePolicy,
)
from workbay.manager.models.base import utcnow

from . import folder_rules as rules
from .access import Actor
from .bgtasks import BackgroundTasks, Progress
from .context import ServiceContext
from .folder_lookup import Visible, live_mount_users, require, resolve, viewer_for, visible_folders
from .folder_rules import FolderAction, field_problem
from .storage_proxy import StorageProxy, StorageProxyError

log = logging.getLogger(__name__)
UPLOAD_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


@dataclass(frozen=True)
class NewFolder:
    """A folder to create.  ``project``: a project's id or name for a project folder (admins)."""

    name: str
    host: str | None = None
    project: str | None = None
    usage_mode: str = "general"
    permission: str = "rw"
    cloneable: bool = False


@dataclass(frozen=True)
class CloneFolder:
    target_name: str
    target_host: str | None = None
    usage_mode: str = "general"
    permission: str = "rw"
    cloneable: bool = False


@dataclass(frozen=True)
class CreatedFolder:
    id: uuid.UUID
    name: str
    quota_scope_id: str
    host: str
    usage_mode: str
    permission: str
    creator: str
    ownership_type: str  # user | project
    owner_user_id: uuid.UUID | None
    project_id: uuid.UUID | None
    cloneable: bool
    status: str
    bgtask_id: str | None = None  # a clone's copy, running in the background


@dataclass(frozen=True)
class FolderView:
    """A folder as one caller sees it: their permission and what they may do with it."""

    id: uuid.UUID
    name: str
    host: str
    quota_scope_id: str
    status: str
    usage_mode: str
    ownership_type: str  # user | project
    owner_user_id: uuid.UUID | None
    owner_email: str | None
    project_id: uuid.UUID | None
    project_name: str | None
    creator: str
    cloneable: bool
    is_owner: bool
    permission: str
    mount_permission: str
    is_automount: bool
    shared: bool  # shared with the caller
    allowed_actions: list[FolderAction]
    created_at: datetime
    status_changed: datetime
    last_used: datetime | None
    used_bytes: int | None = None
    file_count: int | None = None


@dataclass(frozen=True)
class FileListing:
    items: list[dict[str, Any]]  # the storage-proxy's entries (docs/storage-api.md)


@dataclass(frozen=True)
class TransferTicket:
    """A storage-proxy URL and the short-lived token that allows one upload or download."""

    token: str
    url: str
    session: str | None = None  # an upload's session (resumable)


@dataclass
class _HostPermissions:
    """The caller's storage-host permissions per project scope, looked up once per listing."""

    by_project: dict[uuid.UUID | None, dict[str, set[str]]] = field(default_factory=dict)


def container_owner(user: User | None) -> list[int] | None:
    """[uid, gid] the user's sessions run as (the agent RPC's ``container_uid or 1000``): the owner
    of what the storage-proxy writes for them.  None when the user has neither set: the proxy's
    ``storage.file_owner`` then."""
    if user is None or (user.container_uid is None and user.container_gid is None):
        return None
    return [user.container_uid or 1000, user.container_gid or 1000]


class FolderService:
    def __init__(self, ctx: ServiceContext, storage: StorageProxy, bgtasks: BackgroundTasks | None = None) -> None:
        self.ctx = ctx
        self.storage = storage
        self.bgtasks = bgtasks

    # -- shared pieces -----------------------------------------------------------------------------
    async def host_permissions(self, s: AsyncSession, actor: Actor,
                               project_id: uuid.UUID | None = None) -> dict[str, set[str]]:
        """Hosts the caller may use, with the permissions for each (domain ∪ projects ∪ policy)."""
        domain = await s.get(Domain, actor.domain_name)
        kp = await s.get(Keypair, actor.access_key)
        policy = await s.get(KeypairResourcePolicy, kp.resource_policy) if kp else None
        stmt = select(Project.allowed_folder_hosts).join(
            ProjectMember, ProjectMember.project_id == Project.id).where(ProjectMember.user_id == actor.user_id)
        if project_id is not None:
            stmt = select(Project.allowed_folder_hosts).where(Project.id == project_id)
        projects: list[dict[str, list[str]] | None] = [r[0] for r in (await s.execute(stmt)).all()]
        return rules.allowed_host_permissions(domain.allowed_folder_hosts if domain else None,
                                              policy.allowed_folder_hosts if policy else None, *projects)

    async def check_host(self, s: AsyncSession, actor: Actor, host: str, perm: str,
                         project_id: uuid.UUID | None = None) -> None:
        if actor.is_superadmin:
            return
        allowed = await self.host_permissions(s, actor, project_id)
        if perm not in allowed.get(host, set()):
            raise field_problem(InsufficientPrivilege, f"Your policies do not allow '{perm}' on storage host {host}.",
                                "host", {"host": host, "permission": perm})

    async def known_hosts(self) -> dict[str, dict[str, Any]]:
        return {v["host"]: v for v in await self.storage.volumes()}

    async def scope_default_limit(self, s: AsyncSession, qsid: str) -> int | None:
        kind, _, raw = qsid.partition(":")
        policy: UserResourcePolicy | ProjectResourcePolicy | None
        if kind == "user":
            user = await s.get(User, uuid.UUID(raw))
            policy = await s.get(UserResourcePolicy, user.resource_policy) if user else None
        else:
            project = await s.get(Project, uuid.UUID(raw))
            policy = await s.get(ProjectResourcePolicy, project.resource_policy) if project else None
        return rules.effective_limit(None, policy.max_quota_scope_size if policy else None)

    async def effective_limit(self, s: AsyncSession, host: str, qsid: str) -> tuple[int | None, bool, int | None]:
        """(limit, explicit?, policy default) for a quota scope on a host."""
        explicit = await s.get(QuotaLimit, (host, qsid))
        default = await self.scope_default_limit(s, qsid)
        if explicit is not None:
            return explicit.limit_bytes, True, default
        return default, False, default

    async def sync_quota(self, host: str, qsid: str) -> dict[str, Any]:
        """Make the storage-proxy enforce the scope's effective limit; answers the scope's state."""
        async with self.ctx.db() as s:
            limit, _, _ = await self.effective_limit(s, host, qsid)
        state: dict[str, Any] = await self.storage.get_quota(host, qsid, usage=False)  # no walk of the scope
        if state.get("supported") and state.get("limit_bytes") != limit:
            state = await self.storage.set_quota(host, qsid, limit)
        return state

    async def _usage(self, f: Folder) -> dict[str, Any]:
        try:
            usage: dict[str, Any] = await self.storage.usage(f.host, f.id.hex)
            return usage
        except Exception as e:  # a listing survives one unreadable folder
            log.warning("usage of folder %s unavailable: %s", f.id, e)
            return {"used_bytes": None, "file_count": None}

    async def _usages(self, folders: list[Folder]) -> list[dict[str, Any]]:
        """Usage of each folder, one storage-proxy call per host (the proxy caches the figures)."""
        by_host: dict[str, list[str]] = defaultdict(list)
        for f in folders:
            by_host[f.host].append(f.id.hex)

        async def of_host(host: str, vfids: list[str]) -> dict[str, Any]:
            try:
                return await self.storage.folders_usage(host, vfids)
            except Exception as e:  # a listing survives one unreachable host
                log.warning("usage of the folders on %s unavailable: %s", host, e)
                return {}
        merged: dict[str, Any] = {}
        for part in await asyncio.gather(*(of_host(h, ids) for h, ids in by_host.items())):
            merged.update(part)
        unknown = {"used_bytes": None, "file_count": None}
        return [merged.get(f.id.hex) or unknown for f in folders]

    async def _owner(self, actor: Actor) -> list[int] | None:
        async with self.ctx.db() as s:
            return container_owner(await s.get(User, actor.user_id))

    async def _names(self, s: AsyncSession, folders: list[Folder]
                     ) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
        uids = {f.user_id for f in folders if f.user_id}
        pids = {f.project_id for f in folders if f.project_id}
        users: dict[uuid.UUID, str] = dict(
            (await s.execute(select(User.uuid, User.email).where(User.uuid.in_(uids)))).all()) if uids else {}
        projects: dict[uuid.UUID, str] = dict(
            (await s.execute(select(Project.id, Project.name).where(Project.id.in_(pids)))).all()) \
            if pids else {}
        return users, projects

    async def _actions(self, s: AsyncSession, actor: Actor, v: Visible, hosts: _HostPermissions) -> list[FolderAction]:
        f = v.folder
        host_perms: set[str] | None = None
        if not actor.is_superadmin:
            if f.project_id not in hosts.by_project:
                hosts.by_project[f.project_id] = await self.host_permissions(s, actor, f.project_id)
            host_perms = hosts.by_project[f.project_id].get(f.host, set())
        return rules.allowed_actions(
            permission=v.permission, shared_with_caller=v.share is not None, caller_owns=f.user_id == actor.user_id,
            caller_is_admin=actor.is_admin, ownership_type=f.ownership_type, status=f.status,
            cloneable=f.cloneable, host_permissions=host_perms)

    def _view(self, v: Visible, actor: Actor, users: dict[uuid.UUID, str], projects: dict[uuid.UUID, str],
              actions: list[FolderAction], usage: dict[str, Any] | None = None) -> FolderView:
        f = v.folder
        return FolderView(
            id=f.id, name=f.name, host=f.host, quota_scope_id=f.quota_scope_id, status=f.status,
            usage_mode=f.usage_mode, ownership_type=f.ownership_type, owner_user_id=f.user_id,
            owner_email=users.get(f.user_id) if f.user_id else None, project_id=f.project_id,
            project_name=projects.get(f.project_id) if f.project_id else None, creator=f.creator,
            cloneable=f.cloneable, is_owner=f.user_id == actor.user_id, permission=v.permission,
            mount_permission=rules.mount_permission(v.permission), is_automount=rules.is_automount(f.name),
            shared=v.share is not None, allowed_actions=actions, created_at=f.created_at,
            status_changed=f.status_changed, last_used=f.last_used,
            used_bytes=(usage or {}).get("used_bytes"), file_count=(usage or {}).get("file_count"))

    async def _name_taken(self, s: AsyncSession, qsid: str, name: str, user_id: uuid.UUID | None) -> bool:
        if (await s.execute(select(Folder.id).where(Folder.quota_scope_id == qsid,
                                                     Folder.name == name))).first():
            return True
        if user_id is None:
            return False
        shared = await s.execute(select(Folder.id).join(FolderShare, FolderShare.folder_id == Folder.id)
                                 .where(FolderShare.user_id == user_id, Folder.name == name))
        return shared.first() is not None

    async def _project(self, s: AsyncSession, actor: Actor, ref: str) -> Project:
        project: Project | None
        try:
            pid = uuid.UUID(ref)
            project = await s.get(Project, pid)
        except ValueError:
            project = (await s.execute(select(Project).where(
                Project.domain_name == actor.domain_name, Project.name == ref))).scalars().first()
        if project is None or (not actor.is_superadmin and project.domain_name != actor.domain_name):
            raise field_problem(ObjectNotFound, f"No such project: {ref}", "project")
        return project

    # -- folders -----------------------------------------------------------------------------------
    async def create(self, actor: Actor, new: NewFolder, status: str = "ready") -> CreatedFolder:
        name = rules.check_folder_name(new.name)
        if new.usage_mode not in rules.USAGE_MODES:
            raise field_problem(InvalidAPIParameters, f"usage_mode must be one of {', '.join(rules.USAGE_MODES)}.",
                                "usage_mode")
        if new.permission not in rules.PERMISSIONS:
            raise field_problem(InvalidAPIParameters, f"permission must be one of {', '.join(rules.PERMISSIONS)}.",
                                "permission")
        host = new.host or self.ctx.config.storage.default_volume_host
        hosts = await self.known_hosts()
        if host not in hosts:
            raise field_problem(InvalidAPIParameters, f"No such storage host: {host}", "host", {"host": "unknown"})
        policy: UserResourcePolicy | ProjectResourcePolicy | None
        async with self.ctx.db() as s:
            project = None
            if new.project:
                if not actor.is_admin:
                    raise field_problem(InsufficientPrivilege, "Only administrators can create project folders.",
                                        "project")
                project = await self._project(s, actor, new.project)
                qsid = rules.quota_scope_id("project", project.id)
                await self.check_host(s, actor, host, "create-vfolder", project.id)
                policy = await s.get(ProjectResourcePolicy, project.resource_policy)
                count_stmt = select(func.count()).select_from(Folder).where(Folder.project_id == project.id)
            else:
                qsid = rules.quota_scope_id("user", actor.user_id)
                await self.check_host(s, actor, host, "create-vfolder")
                user = await s.get(User, actor.user_id)
                policy = await s.get(UserResourcePolicy, user.resource_policy) if user else None
                count_stmt = select(func.count()).select_from(Folder).where(Folder.user_id == actor.user_id)
            if await self._name_taken(s, qsid, name, None if project else actor.user_id):
                raise field_problem(AlreadyExists, f"A folder named {name} already exists.", "name",
                                    {"name": "already exists"})
            limit = policy.max_folder_count if policy else 0
            if limit > 0 and (await s.execute(count_stmt)).scalar_one() >= limit:
                raise GenericBadRequest(f"You cannot create more than {limit} folders.",
                                        data={"max_folder_count": limit})
            owner = container_owner(await s.get(User, actor.user_id))
        folder_id = uuid.uuid4()
        await self.storage.create_folder(host, folder_id.hex, qsid, owner)
        try:
            async with self.ctx.db.begin() as s:
                f = Folder(id=folder_id, name=name, host=host, quota_scope_id=qsid,
                            ownership_type="project" if project else "user",
                            user_id=None if project else actor.user_id,
                            project_id=project.id if project else None,
                            domain_name=project.domain_name if project else actor.domain_name,
                            creator=actor.email, usage_mode=new.usage_mode,
                            permission=new.permission if project else "wd", cloneable=new.cloneable,
                            status=status)
                s.add(f)
        except Exception:
            await self.storage.delete_folder(host, folder_id.hex)  # no orphan directory behind
            raise
        await self.sync_quota(host, qsid)
        return CreatedFolder(id=folder_id, name=name, quota_scope_id=qsid, host=host, usage_mode=new.usage_mode,
                             permission=f.permission, creator=actor.email, ownership_type=f.ownership_type,
                             owner_user_id=None if project else actor.user_id,
                             project_id=project.id if project else None, cloneable=new.cloneable, status=status)

    async def list(self, actor: Actor, *, all_folders: bool = False, project_id: str | None = None,
                   owner_email: str | None = None) -> list[FolderView]:
        """``project_id`` (hex or dashed): as Backend.AI, only project folders are narrowed to it."""
        hosts = _HostPermissions()
        async with self.ctx.db() as s:
            viewer = await viewer_for(s, actor)
            visible = await visible_folders(s, actor, viewer, all_folders=all_folders)
            if project_id:
                wanted = project_id.replace("-", "")
                visible = [v for v in visible if v.folder.project_id is None or v.folder.project_id.hex == wanted]
            users, projects = await self._names(s, [v.folder for v in visible])
            if owner_email:
                visible = [v for v in visible if v.folder.user_id and users.get(v.folder.user_id) == owner_email]
            actions = [await self._actions(s, actor, v, hosts) for v in visible]
        usages = await self._usages([v.folder for v in visible])
        return [self._view(v, actor, users, projects, a, u)
                for v, a, u in zip(visible, actions, usages, strict=True)]

    async def info(self, actor: Actor, ref: str) -> FolderView:
        async with self.ctx.db() as s:
            v = await resolve(s, actor, ref, trash=True)
            users, projects = await self._names(s, [v.folder])
            actions = await self._actions(s, actor, v, _HostPermissions())
        return self._view(v, actor, users, projects, actions, await self._usage(v.folder))

    async def rename(self, actor: Actor, ref: str, new_name: str) -> None:
        new_name = rules.check_folder_name(new_name)
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, ref)
            require(rules.can_delete(v.permission) and v.share is None, "rename this folder")
            if v.folder.name == new_name:
                return
            owner = v.folder.user_id if v.folder.ownership_type == "user" else None
            if await self._name_taken(s, v.folder.quota_scope_id, new_name, owner):
                raise field_problem(AlreadyExists, f"A folder named {new_name} already exists.", "name",
                                    {"name": "already exists"})
            v.folder.name = new_name

    async def update_options(self, actor: Actor, ref: str, cloneable: bool | None,
                             permission: str | None) -> None:
        if permission is not None and permission not in rules.PERMISSIONS:
            raise field_problem(InvalidAPIParameters, f"permission must be one of {', '.join(rules.PERMISSIONS)}.",
                                "permission")
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, ref)
            require(rules.can_delete(v.permission) and v.share is None, "change this folder's options")
            if cloneable is not None:
                v.folder.cloneable = cloneable
            if permission is not None and v.folder.ownership_type == "project":
                v.folder.permission = permission

    async def trash(self, actor: Actor, ref: str) -> None:
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, ref)
            require(rules.can_delete(v.permission) and v.share is None, "delete this folder")
            await self.check_host(s, actor, v.folder.host, "delete-vfolder",
                                  v.folder.project_id)
            users = await live_mount_users(s, v.folder.id)
            if users:
                raise Conflict(f"The folder is mounted by running sessions: {', '.join(users)}.",
                               data={"sessions": users})
            v.folder.status = rules.IN_TRASH
            v.folder.status_changed = utcnow()

    async def restore(self, actor: Actor, ref: str) -> None:
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, ref, trash=True)
            require(rules.can_delete(v.permission) and v.share is None, "restore this folder")
            if v.folder.status != rules.IN_TRASH:
                raise GenericBadRequest("The folder is not in the trash.")
            v.folder.status = rules.READY
            v.folder.status_changed = utcnow()

    async def purge(self, actor: Actor, ref: str) -> None:
        async with self.ctx.db() as s:
            v = await resolve(s, actor, ref, trash=True)
            require(rules.can_delete(v.permission) and v.share is None, "delete this folder")
            if v.folder.status != rules.IN_TRASH:
                raise GenericBadRequest("Move the folder to the trash before deleting it forever.")
            host, fid = v.folder.host, v.folder.id
        try:
            await self.storage.delete_folder(host, fid.hex)
        except StorageProxyError as e:
            if e.status != 404:  # already gone on disk: forget the row too
                raise
        async with self.ctx.db.begin() as s:
            f = await s.get(Folder, fid)
            if f is not None:
                await s.delete(f)

    async def clone(self, actor: Actor, ref: str, req: CloneFolder) -> CreatedFolder:
        async with self.ctx.db() as s:
            v = await resolve(s, actor, ref)
            require(rules.can_read(v.permission) and (v.folder.cloneable or rules.can_delete(v.permission)),
                    "clone this folder (it is not cloneable)")
            src_host, src_id = v.folder.host, v.folder.id
        return await self.clone_source(actor, src_host, src_id, req)

    async def clone_source(self, actor: Actor, src_host: str, src_id: uuid.UUID, req: CloneFolder) -> CreatedFolder:
        """A copy of a folder the caller was allowed to clone (``clone``; the Model Store's folders)
        as a new folder of theirs."""
        owner = await self._owner(actor)
        created = await self.create(actor, NewFolder(name=req.target_name, host=req.target_host or src_host,
                                                     usage_mode=req.usage_mode, permission=req.permission,
                                                     cloneable=req.cloneable), status=rules.CLONING)

        async def copy(progress: Progress | None = None) -> str:
            # The new, empty directory is replaced by a copy of the source.
            try:
                await self.storage.delete_folder(created.host, created.id.hex)
                await self.storage.clone_folder(src_host, src_id.hex, created.host, created.id.hex,
                                                created.quota_scope_id, owner)
            except Exception:
                async with self.ctx.db.begin() as s:
                    gone = await s.get(Folder, created.id)
                    if gone is not None:
                        await s.delete(gone)
                raise
            async with self.ctx.db.begin() as s:
                f = await s.get(Folder, created.id)
                if f is None:
                    raise ObjectNotFound(f"The clone {created.name} was deleted while it was copied.",
                                         object_name="virtual folder")
                f.status, f.status_changed = rules.READY, utcnow()
            return f"Cloned into {created.name}."
        if self.bgtasks is None:
            await copy()
            return replace(created, status=rules.READY)
        return replace(created, bgtask_id=self.bgtasks.start(actor, "clone-folder", copy))

    # -- files ---------------------------------------------------------------------------------------
    async def _folder_for(self, actor: Actor, ref: str, check: Callable[[str | None], bool], what: str,
                          host_perm: str | None = None) -> Folder:
        async with self.ctx.db() as s:
            v = await resolve(s, actor, ref)
            require(check(v.permission), what)
            if host_perm:
                await self.check_host(s, actor, v.folder.host, host_perm, v.folder.project_id)
            return v.folder

    async def list_files(self, actor: Actor, ref: str, path: str) -> FileListing:
        f = await self._folder_for(actor, ref, rules.can_read, "read this folder")
        out = await self.storage.files_call("GET", "/files", f.host, f.id.hex, path=path or "")
        return FileListing(items=list(out["items"]))

    async def mkdir(self, actor: Actor, ref: str, path: str | Sequence[str], parents: bool, exist_ok: bool) -> None:
        f = await self._folder_for(actor, ref, rules.can_write, "write into this folder")
        owner = await self._owner(actor)
        for p in ([path] if isinstance(path, str) else path):
            await self.storage.files_call("POST", "/files/mkdir", f.host, f.id.hex, owner=owner, path=p,
                                          parents=parents, exist_ok=exist_ok)

    async def rename_file(self, actor: Actor, ref: str, target_path: str, new_name: str) -> None:
        f = await self._folder_for(actor, ref, rules.can_write, "write into this folder")
        await self.storage.files_call("POST", "/files/rename", f.host, f.id.hex, target_path=target_path,
                                      new_name=new_name)

    async def move_file(self, actor: Actor, ref: str, src: str, dst: str) -> None:
        f = await self._folder_for(actor, ref, rules.can_write, "write into this folder")
        await self.storage.files_call("POST", "/files/move", f.host, f.id.hex, src=src, dst=dst)

    async def delete_files(self, actor: Actor, ref: str, files: Sequence[str], recursive: bool) -> None:
        f = await self._folder_for(actor, ref, rules.can_write, "delete files in this folder")
        await self.storage.files_call("POST", "/files/delete", f.host, f.id.hex, files=list(files), recursive=recursive)

    async def request_upload(self, actor: Actor, ref: str, path: str, size: int,
                             session: str | None) -> TransferTicket:
        if size < 0:
            raise InvalidAPIParameters("size must be ≥ 0.")
        if not path or not path.strip("/"):
            raise InvalidAPIParameters("Give the path of the file to upload.", data={"path": "required"})
        if session is not None and not UPLOAD_SESSION_RE.match(session):
            raise InvalidAPIParameters("session must be 1–64 letters, digits, '_' or '-'.")
        f = await self._folder_for(actor, ref, rules.can_write, "upload into this folder", "upload-file")
        owner = await self._owner(actor)
        await self.sync_quota(f.host, f.quota_scope_id)
        resumed = session is not None
        session = session or secrets.token_hex(16)
        # path and quota checked (a resumed upload's own reservation does not count)
        await self.storage.prepare_upload(f.host, f.id.hex, path, size, session if resumed else None, owner)
        extra: dict[str, Any] = {"owner": owner} if owner else {}
        token = self.storage.token("upload", f.host, f.id.hex, path, size=size, session=session, **extra)
        return TransferTicket(token=token, url=f"{self.storage.client_url}/upload", session=session)

    async def request_download(self, actor: Actor, ref: str, path: str | None, files: Sequence[str] | None,
                               archive: bool) -> TransferTicket:
        if not path and not files and not archive:
            raise InvalidAPIParameters("Give the path of a file or directory to download "
                                       "(the whole folder downloads as an archive).")
        f = await self._folder_for(actor, ref, rules.can_read, "download from this folder", "download-file")
        extra: dict[str, Any] = {"relpaths": list(files)} if files else {}
        token = self.storage.token("download", f.host, f.id.hex, path or "", archive=archive, **extra)
        return TransferTicket(token=token, url=f"{self.storage.client_url}/download")
