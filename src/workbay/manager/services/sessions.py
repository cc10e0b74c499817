"""Compute sessions: creation, lookup, listing, termination, execution, logs (CS-*)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import logging
import platform
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from workbay.common.domain import (
    DEAD_STATUSES,
    LIVE_STATUSES,
    STATUS_GROUPS,
    SessionStatus,
    SessionType,
    session_name_problem,
)
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
from workbay.manager.models.serving import ModelService, Route

from . import access
from .access import Actor
from .compute_ports import KernelOps, SchedulerWake
from .context import ServiceContext
from .serialize import iso
from .session_callbacks import SessionCallbacks
from .session_info import (
    CreatedSession,
    KernelLogs,
    ServiceRef,
    SessionCounts,
    SessionInfo,
    SessionPage,
    StatusHistory,
    Termination,
)
from .session_request import (
    CreateSession,
    ReplicaLaunch,
    about,
    default_session_name,
    field_problem,
    parse_starts_at,
)
from .session_status import session_event, set_status

if TYPE_CHECKING:
    from .folder_mounts import FolderMounts

log = logging.getLogger(__name__)
Ts = TypeVarTuple("Ts")
DEFAULT_REQUEST = {"cpu": "1", "mem": "1g"}
KNOWN_BASE_SLOTS = {"cpu", "mem"}


class SessionAlreadyExists(BackendError):
    status, kind, title = 400, "session-already-exists", "The session already exists."


class TooManySessionsMatched(BackendError):
    status, kind, title = 404, "too-many-sessions-matched", "Too many sessions matched."


class ImageArchitectureMismatch(InvalidAPIParameters):
    """The image exists, but not for the architecture asked (never another one in its place)."""


@dataclasses.dataclass(frozen=True)
class SessionPlan:
    """What the checks of a creation request resolved (``SessionService._plan``)."""
    kp: Keypair
    owner: User
    project: Project
    resource_group: ResourceGroup
    image: Image
    mounts: list[dict[str, Any]]
    slots: ResourceSlot
    resource_opts: dict[str, Any]
    names: list[str]
    reuse: ComputeSession | None
    dependencies: list[uuid.UUID]
    starts_at: datetime | None


def check_replica(req: CreateSession, replica: ReplicaLaunch) -> None:
    """A replica is one inference session serving at a port the agent can publish (a programming
    error otherwise: only the manager makes replicas)."""
    if req.type != SessionType.INFERENCE:
        raise ValueError(f"a model service's replica is an inference session, not {req.type}")
    port = replica.model_service.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1024 <= port <= 65535:
        raise ValueError(f"a replica's model_service.port must be within 1024-65535, not {port!r}")


def session_ports(req: CreateSession, replica: ReplicaLaunch | None) -> list[int]:
    """The ports published behind the app gate: the requested preopen ports, and a replica's
    model port."""
    ports = list(req.config.preopen_ports or [])
    if replica is not None and replica.model_service["port"] not in ports:
        ports.append(replica.model_service["port"])
    return ports


SORT_KEYS = {"created_at": ComputeSession.created_at, "name": ComputeSession.name,
             "status": ComputeSession.status, "type": ComputeSession.session_type,
             "started_at": ComputeSession.started_at, "terminated_at": ComputeSession.terminated_at,
             "owner": User.email, "resource_group": ComputeSession.resource_group}


def sort_order(sort: str | None) -> list[ColumnElement[Any] | InstrumentedAttribute[Any]]:
    """``name`` or ``-name`` (descending); newest first by default, then by id for a stable order."""
    key = (sort or "-created_at").strip()
    desc = key.startswith("-")
    column = SORT_KEYS.get(key.lstrip("-"))
    if column is None:
        raise InvalidAPIParameters(f"sort must be one of {', '.join(sorted(SORT_KEYS))} (prefix - to reverse).",
                                   data={"sort": key})
    return [column.desc() if desc else column.asc(), ComputeSession.id]


async def replica_services(s: AsyncSession, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, ServiceRef]:
    """The model service of each replica session among ``session_ids``."""
    if not session_ids:
        return {}
    rows = await s.execute(select(Route.session_id, ModelService.id, ModelService.name)
                           .join(ModelService, ModelService.id == Route.endpoint_id)
                           .where(Route.session_id.in_(session_ids)))
    return {sid: ServiceRef(id=svc_id, name=name) for sid, svc_id, name in rows.all() if sid is not None}


class SessionService:
    def __init__(self, ctx: ServiceContext, scheduler: SchedulerWake, kernels: KernelOps,
                 mounts: FolderMounts | None = None, callbacks: SessionCallbacks | None = None) -> None:
        self.ctx = ctx
        self.mounts = mounts  # None = no storage (folders cannot be mounted)
        self.scheduler = scheduler
        self.kernels = kernels  # the agent RPC (manager/compute/agent_rpc.py)
        self.callbacks = callbacks  # sessions' callback_url; the lifecycle sends the later events

    # -- resolution ------------------------------------------------------------------------------
    async def resolve_owner(self, s: AsyncSession, actor: Actor, owner_access_key: str | None) -> tuple[Keypair, User]:
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

    async def _mounts(self, s: AsyncSession, kp: Keypair, owner: User, req: CreateSession,
                      read_only: frozenset[uuid.UUID] = frozenset()) -> list[dict[str, Any]]:
        """The folders the session mounts, resolved with the owner's permissions; those in
        ``read_only`` read-only whatever the permission (a replica's model folder)."""
        if self.mounts is None:
            return []
        names = list(req.config.mounts or [])
        aliases = {str(k): str(v) for k, v in (req.config.mount_map or {}).items() if v}
        names += [n for n in (req.config.mount_map or {}) if n not in names]
        who = Actor(user_id=owner.uuid, email=owner.email, role=owner.role, domain_name=owner.domain_name,
                    access_key=kp.access_key)
        return await self.mounts.resolve(s, who, names, aliases, read_only=read_only)

    async def _project(self, s: AsyncSession, user: User, ref: str | None) -> Project:
        ref = ref or "default"
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

    async def allowed_resource_groups(self, s: AsyncSession, domain: str, project_id: uuid.UUID) -> list[ResourceGroup]:
        by_domain = select(ResourceGroupForDomain.resource_group).where(ResourceGroupForDomain.domain_name == domain)
        by_project = select(ResourceGroupForProject.resource_group).where(
            ResourceGroupForProject.project_id == project_id)
        rows = await s.execute(select(ResourceGroup).where(
            ResourceGroup.is_active.is_(True),
            or_(ResourceGroup.is_public.is_(True), ResourceGroup.name.in_(by_domain),
                ResourceGroup.name.in_(by_project))).order_by(ResourceGroup.name))
        return list(rows.scalars())

    async def _resource_group(self, s: AsyncSession, domain: str, project: Project, name: str | None) -> ResourceGroup:
        allowed = await self.allowed_resource_groups(s, domain, project.id)
        if name:
            for rg in allowed:
                if rg.name == name:
                    return rg
            raise InvalidAPIParameters(f"Resource group {name} is not available to project {project.name}.",
                                       data={"resource_group": "not allowed"})
        if not allowed:
            raise InvalidAPIParameters("No resource group is available to this project.")
        return next((rg for rg in allowed if rg.name == "default"), allowed[0])

    async def resolve_image(self, s: AsyncSession, ref: str, architecture: str | None) -> Image:
        """The catalog row of image ``ref`` (a name, or a recipe's short name) built for
        ``architecture``; without one asked, the manager's own machine's, or the image's only one.
        An image with no build for the architecture is refused, naming the ones it has."""
        from workbay.images.recipes import resolve_image_name

        candidates = [ref]
        with contextlib.suppress(ValueError):  # not a recipe's short name: the name as given
            candidates.append(resolve_image_name(ref))
        rows = (await s.execute(select(Image).where(Image.name.in_(candidates)))).scalars().all()
        if not rows:
            raise ObjectNotFound(f"No such environment image: {ref}", object_name="environment image")
        have = sorted({r.architecture for r in rows})
        arch = architecture or platform.machine()
        match = next((r for r in rows if r.architecture == arch), None)
        if match is None and architecture is None and len(have) == 1:
            return rows[0]  # nothing asked: the image's only architecture
        if match is None:
            asked = architecture or f"{arch} (this manager's; the image has several, ask for one)"
            raise ImageArchitectureMismatch(
                f"Image {rows[0].name} has no build for architecture {asked}; it has: {', '.join(have)}.",
                data={"image": rows[0].name, "architecture": arch, "architectures": have})
        return match

    async def resolve(self, s: AsyncSession, actor: Actor, ref: str,
                      owner_access_key: str | None = None) -> ComputeSession:
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
        live = [r for r in rows if r.status in LIVE_STATUSES]
        if len(live) > 1:
            raise TooManySessionsMatched(data={"matches": [
                {"id": str(r.id), "name": r.name, "status": r.status, "created_at": iso(r.created_at)} for r in live]})
        if live:
            return live[0]
        if rows:
            return rows[0]
        raise ObjectNotFound(object_name="session")

    async def _check_visible(self, s: AsyncSession, actor: Actor, sess: ComputeSession) -> None:
        if not access.may_see_session(actor, sess.user_id, sess.access_key, sess.domain_name):
            raise ObjectNotFound(object_name="session")

    async def _check_modifiable(self, s: AsyncSession, actor: Actor, sess: ComputeSession) -> None:
        await self._check_visible(s, actor, sess)
        if not access.may_change_session(actor, sess.user_id, sess.access_key, sess.domain_name):
            raise InsufficientPrivilege("Monitors cannot change other users' sessions.")

    # -- creation ----------------------------------------------------------------------------------
    async def create(self, actor: Actor, req: CreateSession, system: bool = False,
                     replica: ReplicaLaunch | None = None) -> CreatedSession:
        """Create (or reuse) a session; ``replica`` makes an inference session a model service's
        replica (set by the manager only: docs/serving.md, "The replica")."""
        created = await self._enqueue(actor, req, system=system, replica=replica)
        if not created.created or req.enqueue_only:
            return created
        return await self.wait_for_start(created, req.max_wait_seconds)

    async def validate(self, actor: Actor, req: CreateSession, replica: ReplicaLaunch | None = None) -> None:
        """Every check creation runs, without creating anything (POST /session/_/validate)."""
        self._check_request(actor, req, system=False, replica=replica)
        async with self.ctx.db() as s:
            await self._plan(s, actor, req, replica)

    @staticmethod
    async def known_slots(s: AsyncSession) -> set[str]:
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
            raise field_problem(InvalidAPIParameters(f"resources: {e}", data={"resources": str(e)}),
                                "config.resources") from e
        if known is not None:
            unknown = sorted(k for k in slots if k not in known)
            if unknown:
                msg = (f"resources: unknown resource slot {unknown[0]!r} (this cluster has: "
                       f"{', '.join(sorted(known))})")
                raise field_problem(InvalidAPIParameters(msg, data={"resources": msg}),
                                    f"config.resources.{unknown[0]}")
        minimum = ResourceSlot.from_json(image.min_slots or {})
        for slot in ("cpu", "mem"):
            if slot in slots and slots[slot] <= 0:
                least = format_amount(slot, minimum.amount(slot)) if minimum.amount(slot) > 0 else None
                msg = f"resources: {slot} must be more than 0" + (
                    f" (this image needs at least {least})" if least else "")
                raise field_problem(InvalidAPIParameters(msg, data={"resources": msg}), f"config.resources.{slot}")
        if "cpu" not in slots:
            slots = slots + {"cpu": 1}
        if "mem" not in slots:
            slots = slots + ResourceSlot.from_user({"mem": "1g"})
        return slots.maximum(minimum) if minimum else slots

    @staticmethod
    def _check_request(actor: Actor, req: CreateSession, system: bool,
                       replica: ReplicaLaunch | None = None) -> str | None:
        """The checks that need no database; the decoded bootstrap script."""
        if replica is not None:
            check_replica(req, replica)
        if req.type == SessionType.SYSTEM and not system:
            raise field_problem(InvalidAPIParameters(
                "System sessions are created by Workbay itself (a folder's SFTP server or File Browser).",
                data={"type": "system"}), "type")
        if req.config.agent_list and not actor.is_superadmin:
            raise field_problem(InsufficientPrivilege("Only a superadmin may choose agents (agentList)."),
                                "config.agent_list")
        if not req.bootstrap_script:
            return None
        try:
            return base64.b64decode(req.bootstrap_script, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise field_problem(InvalidAPIParameters("bootstrap_script must be base64-encoded text."),
                                "bootstrap_script") from e

    async def _plan(self, s: AsyncSession, actor: Actor, req: CreateSession,
                    replica: ReplicaLaunch | None = None) -> SessionPlan:
        """Everything creation checks against the database, in creation's order; each refusal
        names the request field it concerns.  Changes nothing but the mounted folders' last use."""
        with about("owner_access_key"):
            kp, owner = await self.resolve_owner(s, actor, req.owner_access_key)
        with about("project"):
            project = await self._project(s, owner, req.project)
        with about("config.resource_group"):
            rg = await self._resource_group(s, owner.domain_name, project, req.config.resource_group)
        with about("image"):
            image = await self.resolve_image(s, req.image, req.architecture)
        with about("config.mounts"):
            mounts = await self._mounts(s, kp, owner, req,
                                        replica.read_only_folders if replica else frozenset())
        policy = await s.get(KeypairResourcePolicy, kp.resource_policy)
        if policy and req.cluster_size > policy.max_containers_per_session:
            raise field_problem(InvalidAPIParameters(
                f"Cluster size {req.cluster_size} exceeds the policy's "
                f"{policy.max_containers_per_session} containers per session.",
                data={"cluster_size": "too large"}), "cluster_size")
        slots = self._requested_slots(req, image, await self.known_slots(s))
        opts = dict(req.config.resource_opts or {})
        if "shmem" in opts and opts["shmem"] is not None:
            with about("config.resource_opts.shmem"):
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
            ComputeSession.status.in_(LIVE_STATUSES)))).scalars().first()
        reuse = None
        if existing is not None:
            if not (req.reuse_if_exists and req.count == 1 and existing.image == image.name):
                raise field_problem(SessionAlreadyExists(f"A live session named {existing.name} exists.",
                                                         data={"existing_session_id": str(existing.id)}), "name")
            reuse = existing
        if reuse is not None:  # nothing more to check: the live session is the answer
            return SessionPlan(kp=kp, owner=owner, project=project, resource_group=rg, image=image, mounts=mounts,
                               slots=slots, resource_opts=opts, names=names, reuse=reuse, dependencies=[],
                               starts_at=None)
        with about("dependencies"):
            deps = await self._dependencies(s, kp.access_key, req.dependencies or [])
        with about("starts_at"):
            try:
                starts_at = parse_starts_at(req.starts_at) if req.starts_at else None
            except ValueError as e:  # the request model checked it; time may have moved on since
                raise InvalidAPIParameters(f"starts_at: {e}") from e
        return SessionPlan(kp=kp, owner=owner, project=project, resource_group=rg, image=image, mounts=mounts,
                           slots=slots, resource_opts=opts, names=names, reuse=reuse, dependencies=deps,
                           starts_at=starts_at)

    async def _enqueue(self, actor: Actor, req: CreateSession, system: bool = False,
                       replica: ReplicaLaunch | None = None) -> CreatedSession:
        bootstrap = self._check_request(actor, req, system, replica)
        async with self.ctx.db.begin() as s:
            plan = await self._plan(s, actor, req, replica)
            kp, owner = plan.kp, plan.owner
            if plan.reuse is not None:
                existing = plan.reuse
                main = (await s.execute(select(Kernel).where(Kernel.session_id == existing.id,
                                                             Kernel.cluster_role == "main"))).scalars().first()
                return CreatedSession(id=existing.id, name=existing.name, status=existing.status,
                                      service_ports=list(main.service_ports or []) if main else [], created=False)
            environ = {str(k): str(v) for k, v in (req.config.environ or {}).items()}
            created_ids: list[tuple[uuid.UUID, str]] = []
            for name in plan.names:
                sess = ComputeSession(
                    name=name, session_type=req.type, status=SessionStatus.PENDING, status_info="enqueued",
                    status_data={}, status_history=[], access_key=kp.access_key, user_id=owner.uuid,
                    project_id=plan.project.id, domain_name=owner.domain_name, resource_group=plan.resource_group.name,
                    image=plan.image.name, architecture=plan.image.architecture, cluster_mode=req.cluster_mode,
                    cluster_size=req.cluster_size, requested_slots=plan.slots.to_json(),
                    occupying_slots={}, resource_opts=plan.resource_opts, environ=environ, mounts=plan.mounts,
                    preopen_ports=session_ports(req, replica),
                    model_service=dict(replica.model_service) if replica else None,
                    designated_agents=list(req.config.agent_list or []),
                    startup_command=req.startup_command, bootstrap_script=bootstrap, starts_at=plan.starts_at,
                    batch_timeout=req.batch_timeout, tag=req.tag, callback_url=req.callback_url)
                sess.status = "NEW"
                set_status(sess, SessionStatus.PENDING, "enqueued")
                s.add(sess)
                await s.flush()
                for idx in range(req.cluster_size):
                    role, n = ("main", 1) if idx == 0 else ("sub", idx)
                    s.add(Kernel(session_id=sess.id, cluster_role=role, cluster_idx=n,
                                 cluster_hostname=f"{role}{n}", status=SessionStatus.PENDING, occupied_slots={},
                                 service_ports=[], last_stat={}, allocation={}))
                for dep in plan.dependencies:
                    s.add(SessionDependency(session_id=sess.id, depends_on=dep))
                kp.has_ever_run_session = True
                created_ids.append((sess.id, sess.name))
        for sid, name in created_ids:
            await self.publish(sid, name, kp.access_key, owner.uuid, "session_enqueued", "enqueued",
                               callback_url=req.callback_url)
        self.scheduler.wake()
        first_id, first_name = created_ids[0]
        return CreatedSession(id=first_id, name=first_name, status=SessionStatus.PENDING, service_ports=[],
                              created=True, siblings=created_ids if len(created_ids) > 1 else [])

    async def _dependencies(self, s: AsyncSession, access_key: str, refs: list[str]) -> list[uuid.UUID]:
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

    async def wait_for_start(self, created: CreatedSession, max_wait: int) -> CreatedSession:
        """Wait until the session runs or ends (max_wait 0 = no limit); TIMEOUT otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait if max_wait else None
        async with self.ctx.events.subscribe() as events:
            while True:
                async with self.ctx.db() as s:
                    sess = await s.get(ComputeSession, created.id)
                    if sess is not None and (sess.status == SessionStatus.RUNNING or sess.status in DEAD_STATUSES):
                        main = (await s.execute(select(Kernel).where(
                            Kernel.session_id == created.id, Kernel.cluster_role == "main"))).scalars().first()
                        return dataclasses.replace(
                            created, status=sess.status, status_info=sess.status_info, waited=True,
                            service_ports=list(main.service_ports or []) if main else [])
                timeout = 1.0 if deadline is None else min(1.0, deadline - loop.time())
                if timeout <= 0:
                    return dataclasses.replace(created, status="TIMEOUT")
                try:
                    await asyncio.wait_for(events.get(), timeout)
                except TimeoutError:
                    pass

    # -- reading -----------------------------------------------------------------------------------
    async def info(self, actor: Actor, ref: str, owner_access_key: str | None = None) -> SessionInfo:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
            kernels = (await s.execute(select(Kernel).where(Kernel.session_id == sess.id))).scalars().all()
            owner_email = (await s.execute(select(User.email).where(User.uuid == sess.user_id))).scalar_one_or_none()
            services = await replica_services(s, [sess.id])
        return SessionInfo.of(sess, list(kernels), owner_email=owner_email,
                              allowed_actions=self._actions(actor, sess), model_service=services.get(sess.id))

    @staticmethod
    def _actions(actor: Actor, sess: ComputeSession) -> tuple[str, ...]:
        return access.session_actions(actor, sess.user_id, sess.access_key, sess.domain_name, sess.status)

    def _scoped(self, stmt: Select[*Ts], actor: Actor, *, all_users: bool, access_key: str | None,
                project_id: uuid.UUID | None, owner_email: str | None, search: str | None) -> Select[*Ts]:
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
                     owner_email: str | None, search: str | None, all_users: bool) -> SessionCounts:
        """Counts per status group and, among live sessions, per type (the Sessions page's tabs)."""
        stmt = select(ComputeSession.status, ComputeSession.session_type, func.count()).join(
            User, User.uuid == ComputeSession.user_id)
        stmt = self._scoped(stmt, actor, all_users=all_users, access_key=access_key, project_id=project_id,
                            owner_email=owner_email, search=search)
        async with self.ctx.db() as s:
            rows = (await s.execute(stmt.group_by(ComputeSession.status, ComputeSession.session_type))).all()
        groups = {name: 0 for name in STATUS_GROUPS}
        live_types = {str(t): 0 for t in SessionType}
        total = 0
        for status, stype, n in rows:
            total += n
            for name, members in STATUS_GROUPS.items():
                if status in members:
                    groups[name] += n
            if status in LIVE_STATUSES:
                live_types[stype] = live_types.get(stype, 0) + n
        return SessionCounts(total=total, status_groups=groups, live_by_type=live_types)

    async def list(self, actor: Actor, *, status: str | None, session_type: str | None,
                   access_key: str | None, project_id: uuid.UUID | None, owner_email: str | None,
                   search: str | None, all_users: bool, limit: int, offset: int,
                   sort: str | None = None) -> SessionPage:
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
            services = await replica_services(s, [sess.id for sess, _ in rows if sess.session_type == "inference"])
        items = [SessionInfo.of(sess, kernels[sess.id], owner_email=email, allowed_actions=self._actions(actor, sess),
                                model_service=services.get(sess.id))
                 for sess, email in rows]
        return SessionPage(items=items, total_count=total)

    async def status_history(self, actor: Actor, ref: str, owner_access_key: str | None = None) -> StatusHistory:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
        return StatusHistory(session_id=sess.id, history=sess.status_history,
                             scheduling=sess.status_data.get("scheduler", {}))

    # -- changes -----------------------------------------------------------------------------------
    async def rename(self, actor: Actor, ref: str, new_name: str) -> None:
        problem = session_name_problem(new_name)
        if problem:
            raise field_problem(InvalidAPIParameters(problem, data={"name": "invalid"}), "name")
        async with self.ctx.db.begin() as s:
            sess = await self.resolve(s, actor, ref)
            await self._check_modifiable(s, actor, sess)
            if sess.status != SessionStatus.RUNNING:
                raise GenericBadRequest("Only a running session can be renamed.")
            dup = (await s.execute(select(ComputeSession.id).where(
                ComputeSession.access_key == sess.access_key, ComputeSession.name == new_name,
                ComputeSession.status.in_(LIVE_STATUSES), ComputeSession.id != sess.id))).first()
            if dup:
                raise field_problem(SessionAlreadyExists(f"A live session named {new_name} exists."), "name")
            sess.name = new_name

    async def destroy(self, actor: Actor, ref: str, forced: bool = False,
                      owner_access_key: str | None = None) -> Termination:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
            await self._check_modifiable(s, actor, sess)
        await self.kernels.terminate_session(sess.id, "user-requested", forced=forced)
        async with self.ctx.db() as s:
            now = await s.get(ComputeSession, sess.id)
        status = now.status if now is not None else SessionStatus.TERMINATED
        return Termination(status=status, ended=status in DEAD_STATUSES)

    async def restart(self, actor: Actor, ref: str, owner_access_key: str | None = None) -> None:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
            await self._check_modifiable(s, actor, sess)
        if sess.status != SessionStatus.RUNNING:
            raise GenericBadRequest("Only a running session can be restarted.")
        await self.kernels.restart_session(sess.id)

    async def _main_kernel(self, actor: Actor, ref: str, owner_access_key: str | None = None,
                           modify: bool = True) -> tuple[ComputeSession, Kernel | None]:
        async with self.ctx.db() as s:
            sess = await self.resolve(s, actor, ref, owner_access_key)
            if modify:
                await self._check_modifiable(s, actor, sess)
            kernel = (await s.execute(select(Kernel).where(Kernel.session_id == sess.id,
                                                           Kernel.cluster_role == "main"))).scalars().first()
        return sess, kernel

    async def execute(self, actor: Actor, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        """One call of the code-runner protocol (Backend.AI's execute: ``runId``, ``exitCode``, … are
        that protocol's own fields, carried unchanged to and from the runner)."""
        sess, kernel = await self._main_kernel(actor, ref)
        if sess.status in DEAD_STATUSES or kernel is None or kernel.agent_addr is None:
            return {"result": {"status": "finished", "runId": body.get("runId") or "", "exitCode": 130,
                               "options": {}, "files": [], "console": []}}
        if sess.status != SessionStatus.RUNNING:
            raise GenericBadRequest(f"The session is {sess.status}; code runs once it is RUNNING.")
        result = await self.kernels.execute(kernel, body)
        async with self.ctx.db.begin() as s:
            row = await s.get(ComputeSession, sess.id)
            if row is not None:
                row.num_queries = (row.num_queries or 0) + 1
        return result

    async def interrupt(self, actor: Actor, ref: str) -> None:
        sess, kernel = await self._main_kernel(actor, ref)
        if sess.status == SessionStatus.RUNNING and kernel is not None:
            await self.kernels.interrupt(kernel)

    async def logs(self, actor: Actor, ref: str, owner_access_key: str | None = None,
                   kernel_id: str | None = None) -> KernelLogs:
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
        return KernelLogs(logs=logs, kernel_id=kernel.id if kernel else None)

    # -- events ------------------------------------------------------------------------------------
    async def publish(self, session_id: uuid.UUID, name: str, access_key: str, user_id: uuid.UUID,
                      event: str, reason: str | None, exit_code: int | None = None,
                      callback_url: str | None = None) -> None:
        ev = session_event(event, session_id=session_id, session_name=name, access_key=access_key,
                           user_id=user_id, reason=reason, exit_code=exit_code)
        await self.ctx.events.publish(ev)
        if self.callbacks is not None:
            self.callbacks.notify(callback_url, ev)
