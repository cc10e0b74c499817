"""Compute sessions: creation, lookup, listing, termination, execution, logs (CS-*)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import platform
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from workbay.common.errors import (
    BackendError,
    GenericBadRequest,
    InsufficientPrivilege,
    InvalidAPIParameters,
    ObjectNotFound,
)
from workbay.common.slots import ResourceSlot, SlotParseError, format_amount
from workbay.manager.models import Keypair, KeypairResourcePolicy, Project, ProjectMember, ResourceGroup, User
from workbay.manager.models.compute import (
    Agent,
    ComputeSession,
    Image,
    Kernel,
    ResourceGroupForDomain,
    ResourceGroupForProject,
    SessionDependency,
)

from . import access
from .access import Actor
from .compute_ports import KernelOps, SchedulerWake
from .context import ServiceContext
from .serialize import iso
from .session_request import CreateSession, default_session_name, parse_starts_at, valid_session_name
from .session_status import DEAD, LIVE, STATUS_GROUPS, set_status

if TYPE_CHECKING:
    from .folder_mounts import FolderMounts

log = logging.getLogger(__name__)
DEFAULT_REQUEST = {"cpu": "1", "mem": "1g"}
KNOWN_BASE_SLOTS = {"cpu", "mem"}


class SessionAlreadyExists(BackendError):
    status, kind, title = 400, "session-already-exists", "The session already exists."


class TooManySessionsMatched(BackendError):
    status, kind, title = 404, "too-many-sessions-matched", "Too many sessions matched."


def session_out(s: ComputeSession, kernels: list[Kernel] | None = None) -> dict[str, Any]:
    """The Workbay session object (list and detail); Backend.AI's info shape is ``session_info``."""
    out = {
        "id": str(s.id), "name": s.name, "type": s.session_type, "status": s.status,
        "status_info": s.status_info, "status_data": s.status_data, "status_history": s.status_history or [],
        "image": s.image,
        "architecture": s.architecture, "access_key": s.access_key, "user_id": str(s.user_id),
        "project_id": str(s.project_id), "domain_name": s.domain_name, "resource_group": s.resource_group,
        "cluster_mode": s.cluster_mode, "cluster_size": s.cluster_size,
        "requested_slots": s.requested_slots, "occupying_slots": s.occupying_slots,
        "resource_opts": s.resource_opts, "environ": s.environ, "preopen_ports": s.preopen_ports,
        "startup_command": s.startup_command, "starts_at": iso(s.starts_at), "batch_timeout": s.batch_timeout,
        "tag": s.tag, "result": s.result, "exit_code": s.exit_code, "scheduling_attempts": s.scheduling_attempts,
        "created_at": iso(s.created_at), "scheduled_at": iso(s.scheduled_at), "started_at": iso(s.started_at),
        "terminated_at": iso(s.terminated_at),
        "mounts": [{"vfolder_id": m.get("vfolder_id"), "name": m.get("name"), "target": m.get("target"),
                    "read_only": bool(m.get("read_only"))} for m in s.mounts or [] if isinstance(m, dict)],
    }
    if kernels is not None:
        out["kernels"] = [kernel_out(k) for k in sorted(kernels, key=lambda k: (k.cluster_role != "main", k.cluster_idx))]
        main = next((k for k in kernels if k.cluster_role == "main"), None)
        out["service_ports"] = main.service_ports if main else []
        out["last_stat"] = main.last_stat if main else {}
        out["agents"] = sorted({k.agent_id for k in kernels if k.agent_id})
    return out


SORT_KEYS = {"created_at": ComputeSession.created_at, "name": ComputeSession.name,
             "status": ComputeSession.status, "type": ComputeSession.session_type,
             "started_at": ComputeSession.started_at, "terminated_at": ComputeSession.terminated_at,
             "owner": User.email, "resource_group": ComputeSession.resource_group}


def sort_order(sort: str | None) -> list:
    """``name`` or ``-name`` (descending); newest first by default, then by id for a stable order."""
    key = (sort or "-created_at").strip()
    desc = key.startswith("-")
    column = SORT_KEYS.get(key.lstrip("-"))
    if column is None:
        raise InvalidAPIParameters(f"sort must be one of {', '.join(sorted(SORT_KEYS))} (prefix - to reverse).",
                                   data={"sort": key})
    return [column.desc() if desc else column.asc(), ComputeSession.id]


def kernel_out(k: Kernel) -> dict[str, Any]:
    return {"id": str(k.id), "cluster_role": k.cluster_role, "cluster_idx": k.cluster_idx,
            "cluster_hostname": k.cluster_hostname, "agent_id": k.agent_id, "container_id": k.container_id,
            "status": k.status, "status_info": k.status_info, "occupied_slots": k.occupied_slots,
            "service_ports": k.service_ports, "exit_code": k.exit_code, "last_stat": k.last_stat,
            "created_at": iso(k.created_at), "started_at": iso(k.started_at),
            "terminated_at": iso(k.terminated_at)}


def service_ports_wire(ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Backend.AI's servicePorts: container ports under ``ports``."""
    return [{"name": p.get("name"), "protocol": p.get("protocol"),
             "ports": p.get("container_ports") or p.get("ports") or []} for p in ports or []]


class SessionService:
    def __init__(self, ctx: ServiceContext, scheduler: SchedulerWake, kernels: KernelOps,
                 mounts: FolderMounts | None = None) -> None:
        self.ctx = ctx
        self.mounts = mounts  # None = no storage (folders cannot be mounted)
        self.scheduler = scheduler
        self.kernels = kernels  # the agent RPC (manager/compute/agent_rpc.py)

    # -- resolution ------------------------------------------------------------------------------
    async def resolve_owner(self, s, actor: Actor, owner_access_key: str | None) -> tuple[Keypair, User]:
        """The keypair and user a request acts for: the caller's own, or (CS-4) one an admin may manage."""
        ak = owner_access_key or actor.access_key
        row = (await s.execute(select(Keypair, User).join(User, User.uuid == Keypair.user_id)
                               .where(Keypair.access_key == ak))).first()
        if row is None:
            raise ObjectNotFound(object_name="keypair") if owner_access_key else InvalidAPIParameters("Unknown keypair.")
        kp, user = row
        if ak != actor.access_key:
            access.check_may_modify_user(actor, user.role, user.domain_name)
        if not kp.is_active or user.status != "active":
            raise InvalidAPIParameters("The owner's keypair or account is not active.")
        return kp, user

    async def _mounts(self, s, kp: Keypair, owner: User, req: CreateSession) -> list[dict[str, Any]]:
        """The folders the session mounts, resolved with the owner's permissions."""
        if self.mounts is None:
            return []
        names = list(req.config.mounts or [])
        aliases = {str(k): str(v) for k, v in (req.config.mount_map or {}).items() if v}
        names += [n for n in (req.config.mount_map or {}) if n not in names]
        who = Actor(user_id=owner.uuid, email=owner.email, role=owner.role, domain_name=owner.domain_name,
                    access_key=kp.access_key)
        return await self.mounts.resolve(s, who, names, aliases)

    async def _project(self, s, user: User, group: str | None) -> Project:
        ref = group or "default"
        stmt = select(Project).where(Project.domain_name == user.domain_name)
        try:
            stmt = stmt.where(Project.id == uuid.UUID(ref))
        except ValueError:
            stmt = stmt.where(Project.name == ref)
        project = (await s.execute(stmt)).scalar_one_or_none()
        if project is None or not project.is_active:
            raise ObjectNotFound(f"No such project: {ref}", object_name="project")
        if await s.get(ProjectMember, (project.id, user.uuid)) is None:
            raise InsufficientPrivilege(f"You are not a member of project {project.name}.")
        return project

    async def allowed_resource_groups(self, s, domain: str, project_id: uuid.UUID) -> list[ResourceGroup]:
        by_domain = select(ResourceGroupForDomain.resource_group).where(ResourceGroupForDomain.domain_name == domain)
        by_project = select(ResourceGroupForProject.resource_group).where(
            ResourceGroupForProject.project_id == project_id)
        rows = await s.execute(select(ResourceGroup).where(
            ResourceGroup.is_active.is_(True),
            or_(ResourceGroup.is_public.is_(True), ResourceGroup.name.in_(by_domain),
                ResourceGroup.name.in_(by_project))).order_by(ResourceGroup.name))
        return list(rows.scalars())

    async def _resource_group(self, s, domain: str, project: Project, name: str | None) -> ResourceGroup:
        allowed = await self.allowed_resource_groups(s, domain, project.id)
        if name:
            for rg in allowed:
                if rg.name == name:
                    return rg
            raise InvalidAPIParameters(f"Resource group {name} is not available to project {project.name}.",
                                       data={"scaling_group": "not allowed"})
        if not allowed:
            raise InvalidAPIParameters("No resource group is available to this project.")
        return next((rg for rg in allowed if rg.name == "default"), allowed[0])

    async def resolve_image(self, s, ref: str, architecture: str | None) -> Image:
        from workbay.images.recipes import resolve_image_name

        candidates = [ref]
        try:
            candidates.append(resolve_image_name(ref))
        except ValueError:
            pass
        rows = (await s.execute(select(Image).where(Image.name.in_(candidates)))).scalars().all()
        if not rows:
            raise ObjectNotFound(f"No such environment image: {ref}", object_name="environment image")
        arch = architecture or platform.machine()
        return next((r for r in rows if r.architecture == arch), rows[0])

    async def resolve(self, s, actor: Actor, ref: str, owner_access_key: str | None = None) -> ComputeSession:
        """A session by id, or by name among the owner's sessions (live ones first)."""
        try:
            sid = uuid.UUID(ref)
        except ValueError:
            sid = None
        if sid is not None:
            sess = await s.get(ComputeSession, sid)
            if sess is None:
                raise ObjectNotFound(object_name="session")
            await self._check_visible(s, actor, sess)
            return sess
        ak = owner_access_key or actor.access_key
        if ak != actor.access_key:
            await self.resolve_owner(s, actor, ak)
        rows = (await s.execute(select(ComputeSession).where(
            ComputeSession.access_key == ak, ComputeSession.name == ref)
            .order_by(ComputeSession.created_at.desc()))).scalars().all()
        live = [r for r in rows if r.status in LIVE]
        if len(live) > 1:
            raise TooManySessionsMatched(data={"matches": [
                {"id": str(r.id), "name": r.name, "status": r.status, "created_at": iso(r.created_at)} for r in live]})
        if live:
            return live[0]
        if rows:
            return rows[0]
        raise ObjectNotFound(object_name="session")

    async def _check_visible(self, s, actor: Actor, sess: ComputeSession) -> None:
        if sess.access_key == actor.access_key or sess.user_id == actor.user_id:
            return
        if actor.is_superadmin:
            return
        if actor.role in ("admin", "monitor") and sess.domain_name == actor.domain_name:
            return
        raise ObjectNotFound(object_name="session")

    async def _check_modifiable(self, s, actor: Actor, sess: ComputeSession) -> None:
        await self._check_visible(s, actor, sess)
        if actor.role == "monitor" and sess.user_id != actor.user_id:
            raise InsufficientPrivilege("Monitors cannot change other users' sessions.")

    # -- creation ----------------------------------------------------------------------------------
    async def create(self, actor: Actor, req: CreateSession, system: bool = False) -> dict[str, Any]:
        if req.type == "system" and not system:
            raise InvalidAPIParameters("System sessions are created by Workbay itself "
                                       "(a folder's SFTP server or File Browser).", data={"type": "system"})
        created = await self._enqueue(actor, req)
        if created.get("created") is False or req.enqueue_only:
            return created
        final = await self.wait_for_start(uuid.UUID(created["sessionId"]), req.max_wait_seconds)
        created.update(final)
        return created

    @staticmethod
    async def known_slots(s) -> set[str]:
        """Slot names a request may use: cpu, mem, and every slot an agent has reported."""
        names = set(KNOWN_BASE_SLOTS)
        for (available,) in (await s.execute(select(Agent.available_slots))).all():
            if isinstance(available, dict):
                names.update(str(k) for k in available)
        return names

    def _requested_slots(self, req: CreateSession, image: Image, known: set[str] | None = None) -> ResourceSlot:
        """The per-kernel request: finite and bounded (``ResourceSlot.from_user``), known slots
        only, cpu and mem above zero; raised to the image's minimum (never lowered)."""
        raw = dict(req.config.resources or DEFAULT_REQUEST)
        try:
            slots = ResourceSlot.from_user({k: v for k, v in raw.items() if v is not None})
        except (SlotParseError, ValueError) as e:
            raise InvalidAPIParameters(f"resources: {e}", data={"resources": str(e)}) from e
        if known is not None:
            unknown = sorted(k for k in slots if k not in known)
            if unknown:
                msg = (f"resources: unknown resource slot {unknown[0]!r} (this cluster has: "
                       f"{', '.join(sorted(known))})")
                raise InvalidAPIParameters(msg, data={"resources": msg})
        minimum = ResourceSlot.from_json(image.min_slots or {})
        for slot in ("cpu", "mem"):
            if slot in slots and slots[slot] <= 0:
                least = format_amount(slot, minimum.amount(slot)) if minimum.amount(slot) > 0 else None
                msg = f"resources: {slot} must be more than 0" + (
                    f" (this image needs at least {least})" if least else "")
                raise InvalidAPIParameters(msg, data={"resources": msg})
        if "cpu" not in slots:
            slots = slots + {"cpu": 1}
        if "mem" not in slots:
            slots = slots + ResourceSlot.from_user({"mem": "1g"})
        return slots.maximum(minimum) if minimum else slots

    async def _enqueue(self, actor: Actor, req: CreateSession) -> dict[str, Any]:
        if req.config.agent_list and not actor.is_superadmin:
            raise InsufficientPrivilege("Only a superadmin may choose agents (agentList).")
        bootstrap = None
        if req.bootstrap_script:
            try:
                bootstrap = base64.b64decode(req.bootstrap_script, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as e:
                raise InvalidAPIParameters("bootstrap_script must be base64-encoded text.") from e
        async with self.ctx.db.begin() as s:
            kp, owner = await self.resolve_owner(s, actor, req.owner_access_key)
            project = await self._project(s, owner, req.group)
            rg = await self._resource_group(s, owner.domain_name, project, req.config.scaling_group)
            image = await self.resolve_image(s, req.image, req.architecture)
            mounts = await self._mounts(s, kp, owner, req)
            policy = await s.get(KeypairResourcePolicy, kp.resource_policy)
            if policy and req.cluster_size > policy.max_containers_per_session:
                raise InvalidAPIParameters(
                    f"Cluster size {req.cluster_size} exceeds the policy's "
                    f"{policy.max_containers_per_session} containers per session.",
                    data={"cluster_size": "too large"})
            slots = self._requested_slots(req, image, await self.known_slots(s))
            opts = dict(req.config.resource_opts or {})
            if "shmem" in opts and opts["shmem"] is not None:
                try:
                    shmem = ResourceSlot.from_user({"mem": opts["shmem"]})["mem"]
                except (SlotParseError, ValueError) as e:
                    raise InvalidAPIParameters(f"shmem: {e}") from e
                if shmem > slots["mem"]:
                    raise InvalidAPIParameters("Shared memory cannot exceed the memory size.",
                                               data={"shmem": "larger than mem"})
                opts["shmem"] = str(int(shmem))
            names = req.session_names(default_session_name())
            existing = (await s.execute(select(ComputeSession).where(
                ComputeSession.access_key == kp.access_key, ComputeSession.name.in_(names),
                ComputeSession.status.in_(LIVE)))).scalars().first()
            if existing is not None:
                if req.reuse_if_exists and req.count == 1 and existing.image == image.name:
                    kernels = (await s.execute(select(Kernel).where(Kernel.session_id == existing.id))).scalars().all()
                    main = next((k for k in kernels if k.cluster_role == "main"), None)
                    return {"sessionId": str(existing.id), "sessionName": existing.name,
                            "status": existing.status, "created": False,
                            "servicePorts": service_ports_wire(main.service_ports if main else [])}
                raise SessionAlreadyExists(f"A live session named {existing.name} exists.",
                                           data={"existingSessionId": str(existing.id)})
            deps = await self._dependencies(s, kp.access_key, req.dependencies or [])
            starts_at = parse_starts_at(req.starts_at) if req.starts_at else None
            environ = {str(k): str(v) for k, v in (req.config.environ or {}).items()}
            created_ids = []
            for name in names:
                sess = ComputeSession(
                    name=name, session_type=req.type, status="PENDING", status_info="enqueued",
                    status_data={}, status_history=[], access_key=kp.access_key, user_id=owner.uuid,
                    project_id=project.id, domain_name=owner.domain_name, resource_group=rg.name,
                    image=image.name, architecture=image.architecture, cluster_mode=req.cluster_mode,
                    cluster_size=req.cluster_size, requested_slots=slots.to_json(),
                    occupying_slots={}, resource_opts=opts, environ=environ, mounts=mounts,
                    preopen_ports=list(req.config.preopen_ports or []),
                    designated_agents=list(req.config.agent_list or []),
                    startup_command=req.startup_command, bootstrap_script=bootstrap, starts_at=starts_at,
                    batch_timeout=req.batch_timeout, tag=req.tag, callback_url=req.callback_url)
                sess.status = "NEW"
                set_status(sess, "PENDING", "enqueued")
                s.add(sess)
                await s.flush()
                for idx in range(req.cluster_size):
                    role, n = ("main", 1) if idx == 0 else ("sub", idx)
                    s.add(Kernel(session_id=sess.id, cluster_role=role, cluster_idx=n,
                                 cluster_hostname=f"{role}{n}", status="PENDING", occupied_slots={},
                                 service_ports=[], last_stat={}, allocation={}))
                for dep in deps:
                    s.add(SessionDependency(session_id=sess.id, depends_on=dep))
                kp.has_ever_run_session = True
                created_ids.append((sess.id, sess.name))
        for sid, name in created_ids:
            await self.publish(sid, name, kp.access_key, owner.uuid, "session_enqueued", "enqueued")
        self.scheduler.wake()
        first_id, first_name = created_ids[0]
        out = {"sessionId": str(first_id), "sessionName": first_name, "status": "PENDING",
               "servicePorts": [], "created": True}
        if len(created_ids) > 1:
            out["sessions"] = [{"sessionId": str(i), "sessionName": n} for i, n in created_ids]
        return out

    async def _dependencies(self, s, access_key: str, refs: list[str]) -> list[uuid.UUID]:
        out = []
        for ref in refs:
            try:
                sess = await s.get(ComputeSession, uuid.UUID(ref))
            except ValueError:
                sess = (await s.execute(select(ComputeSession).where(
                    ComputeSession.access_key == access_key, ComputeSession.name == ref)
                    .order_by(ComputeSession.created_at.desc()))).scalars().first()
            if sess is None or sess.access_key != access_key:
                raise ObjectNotFound(f"No such session to depend on: {ref}", object_name="session")
            out.append(sess.id)
        return out

    async def wait_for_start(self, session_id: uuid.UUID, max_wait: int) -> dict[str, Any]:
        """Wait until the session runs or ends (max_wait 0 = no limit); TIMEOUT otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait if max_wait else None
        async with self.ctx.events.subscribe() as events:
            while True:
                async with self.ctx.db() as s:
                    sess = await s.get(ComputeSession, session_id)
                    if sess.status in ("RUNNING", *DEAD):
                        kernels = (await s.execute(select(Kernel).where(Kernel.session_id == session_id))).scalars().all()
                        main = next((k for k in kernels if k.cluster_role == "main"), None)
                        return {"status": sess.status, "statusInfo": sess.status_info,
                                "servicePorts": service_ports_wire(main.service_ports if main else [])}
                timeout = 1.0 if deadline is None else min(1.0, deadline - loop.time())
                if timeout <= 0:
                    return {"status": "TIMEOUT"}
                try:
                    await asyncio.wait_for(events.get(), timeout)
                except TimeoutError:
                    pass

    # -- reading -----------------------------------------------------------------------------------
    async def info(self, actor: Actor, ref: str, owner_access_key: str | None = None) -> dict[str, Any]:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
            kernels = (await s.execute(select(Kernel).where(Kernel.session_id == sess.id))).scalars().all()
            owner_email = (await s.execute(select(User.email).where(User.uuid == sess.user_id))).scalar_one_or_none()
        main = next((k for k in kernels if k.cluster_role == "main"), None)
        age = ((sess.terminated_at or datetime.now(sess.created_at.tzinfo)) - sess.created_at).total_seconds()
        legacy = {
            "domainName": sess.domain_name, "groupId": str(sess.project_id), "userId": str(sess.user_id),
            "lang": sess.image, "image": sess.image, "architecture": sess.architecture,
            "registry": sess.image.split("/")[0] if "/" in sess.image else "",
            "tag": sess.tag, "containerId": main.container_id if main else None,
            "occupiedSlots": sess.occupying_slots, "occupyingSlots": sess.occupying_slots,
            "requestedSlots": sess.requested_slots, "occupiedShares": {}, "environ": sess.environ,
            "resourceOpts": sess.resource_opts, "status": sess.status, "statusInfo": sess.status_info,
            "statusData": sess.status_data, "age": int(age * 1000), "creationTime": iso(sess.created_at),
            "terminationTime": iso(sess.terminated_at), "numQueriesExecuted": sess.num_queries,
            "lastStat": main.last_stat if main else {}, "idleChecks": {},
        }
        return {**session_out(sess, list(kernels)), "owner_email": owner_email, **legacy}

    def _scoped(self, stmt, actor: Actor, *, all_users: bool, access_key: str | None,
                project_id: uuid.UUID | None, owner_email: str | None, search: str | None):
        """The filters every session listing shares (who, whose, which project, name search)."""
        if all_users:
            access.require_reader(actor)
            scope = access.domain_scope(actor)
            if scope is not None:
                stmt = stmt.where(ComputeSession.domain_name == scope)
        else:
            stmt = stmt.where(ComputeSession.user_id == actor.user_id)
        if access_key:
            stmt = stmt.where(ComputeSession.access_key == access_key)
        if project_id:
            stmt = stmt.where(ComputeSession.project_id == project_id)
        if owner_email:
            stmt = stmt.where(User.email == owner_email.lower())
        if search:
            stmt = stmt.where(func.lower(ComputeSession.name).contains(search.lower(), autoescape=True))
        return stmt

    async def counts(self, actor: Actor, *, access_key: str | None, project_id: uuid.UUID | None,
                     owner_email: str | None, search: str | None, all_users: bool) -> dict[str, Any]:
        """Counts per status group and, among live sessions, per type (the Sessions page's tabs)."""
        stmt = select(ComputeSession.status, ComputeSession.session_type, func.count()).join(
            User, User.uuid == ComputeSession.user_id)
        stmt = self._scoped(stmt, actor, all_users=all_users, access_key=access_key, project_id=project_id,
                            owner_email=owner_email, search=search)
        async with self.ctx.db() as s:
            rows = (await s.execute(stmt.group_by(ComputeSession.status, ComputeSession.session_type))).all()
        groups = {name: 0 for name in STATUS_GROUPS}
        live_types = {t: 0 for t in ("interactive", "batch", "inference", "system")}
        total = 0
        for status, stype, n in rows:
            total += n
            for name, members in STATUS_GROUPS.items():
                if status in members:
                    groups[name] += n
            if status in LIVE:
                live_types[stype] = live_types.get(stype, 0) + n
        return {"total": total, "status_groups": groups, "live_by_type": live_types}

    async def list(self, actor: Actor, *, status: str | None, session_type: str | None,
                   access_key: str | None, project_id: uuid.UUID | None, owner_email: str | None,
                   search: str | None, all_users: bool, limit: int, offset: int,
                   sort: str | None = None) -> dict[str, Any]:
        stmt = select(ComputeSession, User.email).join(User, User.uuid == ComputeSession.user_id)
        stmt = self._scoped(stmt, actor, all_users=all_users, access_key=access_key, project_id=project_id,
                            owner_email=owner_email, search=search)
        if status:
            wanted = STATUS_GROUPS.get(status.lower()) or tuple(x.strip().upper() for x in status.split(","))
            stmt = stmt.where(ComputeSession.status.in_(wanted))
        if session_type:
            stmt = stmt.where(ComputeSession.session_type == session_type)
        order = sort_order(sort)
        async with self.ctx.db() as s:
            total = (await s.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
            rows = (await s.execute(stmt.order_by(*order).limit(limit).offset(offset))).all()
            ids = [r[0].id for r in rows]
            kernels: dict[uuid.UUID, list[Kernel]] = {i: [] for i in ids}
            if ids:
                for k in (await s.execute(select(Kernel).where(Kernel.session_id.in_(ids)))).scalars():
                    kernels[k.session_id].append(k)
        items = []
        for sess, email in rows:
            out = session_out(sess, kernels[sess.id])
            out["owner_email"] = email
            items.append(out)
        return {"items": items, "total_count": total}

    async def status_history(self, actor: Actor, ref: str, owner_access_key: str | None = None) -> dict[str, Any]:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
        return {"session_id": str(sess.id), "result": sess.status_history,
                "scheduling": sess.status_data.get("scheduler", {})}

    # -- changes -----------------------------------------------------------------------------------
    async def rename(self, actor: Actor, ref: str, new_name: str) -> None:
        if not valid_session_name(new_name):
            raise InvalidAPIParameters("Session names are 4–64 characters of letters, digits, '_', '-' and "
                                       "'.', starting and ending with a letter or digit.", data={"name": "invalid"})
        async with self.ctx.db.begin() as s:
            sess = await self.resolve(s, actor, ref)
            await self._check_modifiable(s, actor, sess)
            if sess.status != "RUNNING":
                raise GenericBadRequest("Only a running session can be renamed.")
            dup = (await s.execute(select(ComputeSession.id).where(
                ComputeSession.access_key == sess.access_key, ComputeSession.name == new_name,
                ComputeSession.status.in_(LIVE), ComputeSession.id != sess.id))).first()
            if dup:
                raise SessionAlreadyExists(f"A live session named {new_name} exists.")
            sess.name = new_name

    async def destroy(self, actor: Actor, ref: str, forced: bool = False,
                      owner_access_key: str | None = None) -> dict[str, Any]:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
            await self._check_modifiable(s, actor, sess)
        await self.kernels.terminate_session(sess.id, "user-requested", forced=forced)
        async with self.ctx.db() as s:
            sess = await s.get(ComputeSession, sess.id)
        return {"stats": {"status": "terminated" if sess.status in DEAD else sess.status.lower(),
                          "session_status": sess.status}}

    async def restart(self, actor: Actor, ref: str, owner_access_key: str | None = None) -> None:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
            await self._check_modifiable(s, actor, sess)
        if sess.status != "RUNNING":
            raise GenericBadRequest("Only a running session can be restarted.")
        await self.kernels.restart_session(sess.id)

    async def _main_kernel(self, actor: Actor, ref: str, owner_access_key: str | None = None,
                           modify: bool = True) -> tuple[ComputeSession, Kernel]:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
            if modify:
                await self._check_modifiable(s, actor, sess)
            kernel = (await s.execute(select(Kernel).where(Kernel.session_id == sess.id,
                                                           Kernel.cluster_role == "main"))).scalars().first()
        return sess, kernel

    async def execute(self, actor: Actor, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        sess, kernel = await self._main_kernel(actor, ref)
        if sess.status in DEAD or kernel is None or kernel.agent_addr is None:
            return {"result": {"status": "finished", "runId": body.get("runId") or "", "exitCode": 130,
                               "options": {}, "files": [], "console": []}}
        if sess.status != "RUNNING":
            raise GenericBadRequest(f"The session is {sess.status}; code runs once it is RUNNING.")
        result = await self.kernels.execute(kernel, body)
        async with self.ctx.db.begin() as s:
            row = await s.get(ComputeSession, sess.id)
            row.num_queries = (row.num_queries or 0) + 1
        return result

    async def interrupt(self, actor: Actor, ref: str) -> None:
        sess, kernel = await self._main_kernel(actor, ref)
        if sess.status == "RUNNING" and kernel is not None:
            await self.kernels.interrupt(kernel)

    async def logs(self, actor: Actor, ref: str, owner_access_key: str | None = None,
                   kernel_id: str | None = None) -> dict[str, Any]:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
            stmt = select(Kernel).where(Kernel.session_id == sess.id)
            kernels = (await s.execute(stmt)).scalars().all()
        if kernel_id:
            kernel = next((k for k in kernels if str(k.id) == kernel_id or k.cluster_hostname == kernel_id), None)
            if kernel is None:
                raise ObjectNotFound(object_name="kernel")
        else:
            kernel = next((k for k in kernels if k.cluster_role == "main"), None)
        logs = await self.kernels.logs(kernel) if kernel and kernel.agent_addr else ""
        return {"result": {"logs": logs, "kernel_id": str(kernel.id) if kernel else None}}

    # -- events ------------------------------------------------------------------------------------
    async def publish(self, session_id: uuid.UUID, name: str, access_key: str, user_id: uuid.UUID,
                      event: str, reason: str | None, exit_code: int | None = None, **extra: Any) -> None:
        await self.ctx.events.publish({
            "name": event, "sessionId": str(session_id), "sessionName": name, "ownerAccessKey": access_key,
            "user_id": str(user_id), "reason": reason or "", "exitCode": exit_code, **extra})
