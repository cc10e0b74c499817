"""Model services (MS-2, MS-4, MS-5, MS-12; docs/serving.md): create, list, read, edit, scale and
delete them; their tokens, autoscaling rules, replica errors and routes.

This service only writes what is wanted (desired replicas, the replica configuration and its
``generation``, TERMINATING); the serving reconciler (``manager/compute/serving.py``) starts and
stops the replicas and is woken (``ServingWake``) after every change.  A service is seen and
changed by its owner, by admins of its domain and by superadmins; anyone else gets 404."""

from __future__ import annotations

import base64
import binascii
import builtins
import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.appproxy.tokens import issue_service_token
from workbay.common.config import http_url
from workbay.common.domain import FolderUsageMode, RouteStatus, ServiceStatus
from workbay.common.errors import Conflict, InsufficientPrivilege, InvalidAPIParameters, ObjectNotFound
from workbay.common.http import validation_error
from workbay.manager.models import Folder, Keypair, KeypairResourcePolicy, Project, ResourceGroup, User
from workbay.manager.models.compute import ComputeSession, Image
from workbay.manager.models.identity import UserResourcePolicy
from workbay.manager.models.serving import AutoScalingRule, ModelService, Route, ServiceError, ServiceToken

from . import access
from .access import Actor
from .compute_ports import ServingWake
from .context import ServiceContext
from .folder_lookup import resolve as resolve_folder
from .folder_rules import mount_target
from .serving_info import (
    ACTIVE_ROUTE_STATUSES,
    ENDED_SERVICE_STATUSES,
    ErrorInfo,
    RouteInfo,
    RuleInfo,
    ScaleResult,
    ServiceErrors,
    ServiceInfo,
    TokenInfo,
    service_actions,
)
from .serving_request import (
    CreateService,
    NewRule,
    RuleFields,
    TokenRequest,
    UpdateService,
    rule_bounds_problem,
)
from .session_info import KernelLogs
from .session_request import FIELD_ERRORS, CreateSession, about, field_problem
from .sessions import SessionService

EXTRA_MOUNT_MODES = (FolderUsageMode.GENERAL, FolderUsageMode.DATA)
# What replicas run with: a change rolls them over (``generation`` + 1); the rest (name, desired
# count, public access, tag, callback) does not touch running replicas.
REPLICA_FIELDS = ("image", "architecture", "resource_group", "resource_slots", "resource_opts", "cluster_mode",
                  "cluster_size", "environ", "startup_command", "bootstrap_script", "model_folder_id",
                  "model_mount_destination", "model_definition_path", "extra_mounts", "runtime_variant")
MAX_ERRORS_LISTED = 100
_Child = TypeVar("_Child", ServiceToken, Route, AutoScalingRule)


class ReplicaSpecs(Protocol):
    """The model definition reader (``services/model_definitions.py``): raises a ``BackendError``
    naming what is wrong when the service's replicas could not be described (no definition file,
    a bad key, …).  The service row is not yet stored when creation asks."""

    async def replica_spec(self, service: ModelService) -> object: ...


class IdleWake:
    """A ``ServingWake`` for a process without a serving reconciler: nothing to wake."""

    def wake(self) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class _Resolved:
    """What the checks of a create or edit resolved."""

    owner: User
    keypair: Keypair
    project: Project
    resource_group: ResourceGroup
    image: Image
    model_folder: Folder
    extra_mounts: list[dict[str, Any]]
    slots: dict[str, Any]


def _owner_actor(owner: User, kp: Keypair) -> Actor:
    return Actor(user_id=owner.uuid, email=owner.email, role=owner.role, domain_name=owner.domain_name,
                 access_key=kp.access_key)


def may_manage(actor: Actor, svc: ModelService) -> bool:
    """The owner, admins of the service's domain, superadmins."""
    if svc.owner_user_id == actor.user_id or actor.is_superadmin:
        return True
    return actor.role == "admin" and svc.domain_name == actor.domain_name


@contextmanager
def _field_errors(path_prefix: str = "") -> Iterator[None]:
    """A pydantic error of a sub-request as a 400 naming its fields."""
    try:
        yield
    except ValidationError as e:
        err = validation_error(list(e.errors()))
        data = err.data if isinstance(err.data, dict) else {}
        err.extra[FIELD_ERRORS] = {f"{path_prefix}{k}": v for k, v in data.items() if k != "_"}
        raise err from e


class ServingService:
    def __init__(self, ctx: ServiceContext, sessions: SessionService, wake: ServingWake,
                 definitions: ReplicaSpecs | None = None) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.wake = wake
        self.definitions = definitions  # None: definitions are not checked at creation

    # -- helpers ---------------------------------------------------------------------------------
    def endpoint_url(self, name: str) -> str:
        cfg = self.ctx.config.appproxy
        return f"{http_url(cfg.public_host, cfg.inference_port)}/{name}/"

    async def _get(self, s: AsyncSession, actor: Actor, service_id: uuid.UUID | str) -> ModelService:
        try:
            sid = service_id if isinstance(service_id, uuid.UUID) else uuid.UUID(str(service_id))
        except ValueError:
            raise ObjectNotFound(object_name="model service") from None
        svc = await s.get(ModelService, sid)
        if svc is None or not may_manage(actor, svc):
            raise ObjectNotFound(object_name="model service")
        return svc

    async def _get_live(self, s: AsyncSession, actor: Actor, service_id: uuid.UUID | str) -> ModelService:
        svc = await self._get(s, actor, service_id)
        if svc.status in ENDED_SERVICE_STATUSES:
            raise Conflict(f"The service {svc.name} is {svc.status}.")
        return svc

    @staticmethod
    async def replica_limit(s: AsyncSession, owner_id: uuid.UUID) -> int:
        """The owner's ``max_session_count_per_model_session`` (MS-12)."""
        stmt = (select(UserResourcePolicy.max_session_count_per_model_session)
                .join(User, User.resource_policy == UserResourcePolicy.name).where(User.uuid == owner_id))
        limit = (await s.execute(stmt)).scalar_one_or_none()
        return int(limit) if limit is not None else 10

    @staticmethod
    def _check_replicas(count: int, limit: int, path: str) -> None:
        if count > limit:
            msg = (f"{count} replicas exceed the owner's max_session_count_per_model_session ({limit}).")
            raise field_problem(InvalidAPIParameters(msg, data={"max_session_count_per_model_session": limit}), path)

    async def _name_taken(self, s: AsyncSession, name: str, except_id: uuid.UUID | None = None) -> None:
        stmt = select(ModelService.id).where(ModelService.name == name,
                                             ModelService.status != ServiceStatus.DESTROYED)
        if except_id is not None:
            stmt = stmt.where(ModelService.id != except_id)
        if (await s.execute(stmt)).first() is not None:
            raise field_problem(Conflict(f"A model service named {name} exists.", data={"name": name}), "name")

    # -- the checks of create and edit -------------------------------------------------------------
    async def _resolve(self, s: AsyncSession, actor: Actor, req: CreateService) -> _Resolved:
        """Every check against the database, each refusal naming its request field."""
        sessions = self.sessions
        with about("owner_access_key"):
            kp, owner = await sessions.resolve_owner(s, actor, req.owner_access_key)
        who = _owner_actor(owner, kp)
        with about("project"):
            project = await sessions._project(s, owner, req.project)
        with about("config.resource_group"):
            rg = await sessions._resource_group(s, owner.domain_name, project, req.config.resource_group)
        with about("image"):
            image = await sessions.resolve_image(s, req.image, req.architecture)
        with about("config.model"):
            model = await self._folder(s, who, project, req.config.model, (FolderUsageMode.MODEL,))
            dest = mount_target(model.name, req.config.model_mount_destination)
        targets = {dest: "config.model_mount_destination"}
        extras: list[dict[str, Any]] = []
        for ref, wanted in (req.config.extra_mounts or {}).items():
            path = f"config.extra_mounts.{ref}"
            with about(path):
                folder = await self._folder(s, who, project, ref, EXTRA_MOUNT_MODES)
                target = mount_target(folder.name, wanted or None)
                if target in targets:
                    raise InvalidAPIParameters(f"Two folders would mount at {target}.", data={"mount": target})
            targets[target] = path
            extras.append({"folder_id": str(folder.id), "mount_destination": target})
        policy = await s.get(KeypairResourcePolicy, kp.resource_policy)
        if policy and req.cluster_size > policy.max_containers_per_session:
            raise field_problem(InvalidAPIParameters(
                f"Cluster size {req.cluster_size} exceeds the policy's {policy.max_containers_per_session} "
                "containers per session.", data={"cluster_size": "too large"}), "cluster_size")
        self._check_replicas(req.desired_replicas, await self.replica_limit(s, owner.uuid), "desired_replicas")
        as_session = CreateSession.model_validate({"image": image.name, "type": "inference", "config": {
            "resources": req.config.resources, "resource_opts": req.config.resource_opts}})
        slots = sessions._requested_slots(as_session, image, await sessions.known_slots(s))
        if req.bootstrap_script:
            try:
                base64.b64decode(req.bootstrap_script, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as e:
                raise field_problem(InvalidAPIParameters("bootstrap_script must be base64-encoded text."),
                                    "bootstrap_script") from e
        return _Resolved(owner=owner, keypair=kp, project=project, resource_group=rg, image=image,
                         model_folder=model, extra_mounts=extras, slots=slots.to_json())

    async def _folder(self, s: AsyncSession, owner: Actor, project: Project, ref: str,
                      modes: tuple[str, ...]) -> Folder:
        """A folder the owner can read, of one of ``modes``; 400 otherwise (the form names it)."""
        try:
            folder = (await resolve_folder(s, owner, ref)).folder
        except ObjectNotFound as e:
            raise InvalidAPIParameters(f"No folder {ref} is visible to the service's owner.",
                                       data={"folder": ref}) from e
        if folder.usage_mode not in modes:
            raise InvalidAPIParameters(
                f"Folder {folder.name} has usage mode {folder.usage_mode}; this needs {' or '.join(modes)}.",
                data={"folder": folder.name, "usage_mode": folder.usage_mode})
        if self.sessions.mounts is not None:
            await self.sessions.mounts.folders.check_host(s, owner, folder.host, "mount-in-session", project.id)
        return folder

    def _apply(self, svc: ModelService, req: CreateService, r: _Resolved) -> None:
        """Write the checked request into the row."""
        svc.name = req.name
        svc.owner_user_id, svc.owner_access_key = r.owner.uuid, r.keypair.access_key
        svc.project_id, svc.domain_name = r.project.id, r.owner.domain_name
        svc.resource_group = r.resource_group.name
        svc.model_folder_id = r.model_folder.id
        svc.model_mount_destination = req.config.model_mount_destination
        svc.model_definition_path = req.config.model_definition_path
        svc.extra_mounts = r.extra_mounts
        svc.runtime_variant = str(req.runtime_variant)
        svc.image, svc.architecture = r.image.name, r.image.architecture
        svc.resource_slots, svc.resource_opts = r.slots, dict(req.config.resource_opts)
        svc.cluster_mode, svc.cluster_size = str(req.cluster_mode), req.cluster_size
        svc.environ = dict(req.config.environ)
        svc.startup_command, svc.bootstrap_script = req.startup_command, req.bootstrap_script
        svc.tag, svc.callback_url = req.tag, req.callback_url
        svc.desired_replicas, svc.open_to_public = req.desired_replicas, req.open_to_public
        svc.url = self.endpoint_url(req.name)

    async def _check_definition(self, svc: ModelService) -> None:
        """Replicas can be described: the definition file (``custom``), the variant's needs (a
        .gguf file for llama.cpp, the image's command for ``command``)."""
        if self.definitions is None:
            return
        with about("config.model_definition_path"):
            await self.definitions.replica_spec(svc)

    # -- create / read ---------------------------------------------------------------------------
    async def create(self, actor: Actor, req: CreateService) -> uuid.UUID:
        async with self.ctx.db.begin() as s:
            r = await self._resolve(s, actor, req)
            await self._name_taken(s, req.name)
            svc = ModelService(id=uuid.uuid4(), created_by=actor.user_id, status=ServiceStatus.PROVISIONING,
                               generation=1, retries=0, live_stat={})
            self._apply(svc, req, r)
            await self._check_definition(svc)
            s.add(svc)
        self.wake.wake()
        return svc.id

    async def draft(self, actor: Actor, req: CreateService) -> ModelService:
        """Every check of :meth:`create` but the name's uniqueness, storing nothing: the row a
        create would store (the validate dry run starts one replica of it)."""
        async with self.ctx.db() as s:
            r = await self._resolve(s, actor, req)
        svc = ModelService(id=uuid.uuid4(), created_by=actor.user_id, status=ServiceStatus.PROVISIONING,
                           generation=1, retries=0, live_stat={})
        self._apply(svc, req, r)
        await self._check_definition(svc)
        return svc

    async def _infos(self, s: AsyncSession, rows: list[ModelService]) -> list[ServiceInfo]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        counts: dict[uuid.UUID, tuple[int, int]] = {i: (0, 0) for i in ids}
        for eid, status, n in (await s.execute(select(Route.endpoint_id, Route.status, func.count())
                                               .where(Route.endpoint_id.in_(ids))
                                               .group_by(Route.endpoint_id, Route.status))).all():
            active, healthy = counts[eid]
            counts[eid] = (active + (n if status in ACTIVE_ROUTE_STATUSES else 0),
                           healthy + (n if status == RouteStatus.HEALTHY else 0))
        emails = dict((await s.execute(select(User.uuid, User.email).where(
            User.uuid.in_({r.owner_user_id for r in rows})))).all())
        projects = dict((await s.execute(select(Project.id, Project.name).where(
            Project.id.in_({r.project_id for r in rows})))).all())
        folders = dict((await s.execute(select(Folder.id, Folder.name).where(
            Folder.id.in_({r.model_folder_id for r in rows})))).all())
        return [ServiceInfo(row=r, owner_email=emails.get(r.owner_user_id), project_name=projects.get(r.project_id),
                            model_folder_name=folders.get(r.model_folder_id), active_route_count=counts[r.id][0],
                            healthy_route_count=counts[r.id][1], allowed_actions=service_actions(r.status))
                for r in rows]

    async def list(self, actor: Actor, *, name: str | None = None, status: str | None = None,
                   project: str | None = None, all_users: bool = False) -> list[ServiceInfo]:
        """The caller's services (``all_users``: every owner's, for admins; domain admins: their
        domain's), newest first; DESTROYED ones only when ``status`` asks for them."""
        stmt = select(ModelService)
        if all_users:
            access.require_admin(actor)
            scope = access.domain_scope(actor)
            if scope is not None:
                stmt = stmt.where(ModelService.domain_name == scope)
        else:
            stmt = stmt.where(ModelService.owner_user_id == actor.user_id)
        if name:
            stmt = stmt.where(ModelService.name == name)
        if status:
            wanted = [x.strip().upper() for x in status.split(",") if x.strip()]
            bad = [w for w in wanted if w not in ServiceStatus.__members__]
            if bad:
                raise field_problem(InvalidAPIParameters(
                    f"status must be among {', '.join(ServiceStatus)}.", data={"status": bad[0]}), "status")
            stmt = stmt.where(ModelService.status.in_(wanted))
        else:
            stmt = stmt.where(ModelService.status != ServiceStatus.DESTROYED)
        if project:
            try:
                stmt = stmt.where(ModelService.project_id == uuid.UUID(project))
            except ValueError:
                stmt = stmt.where(ModelService.project_id.in_(select(Project.id).where(Project.name == project)))
        async with self.ctx.db() as s:
            rows = list((await s.execute(stmt.order_by(ModelService.created_at.desc(), ModelService.id)
                                         .limit(1000))).scalars())
            return await self._infos(s, rows)

    async def info(self, actor: Actor, service_id: uuid.UUID | str) -> ServiceInfo:
        async with self.ctx.db() as s:
            svc = await self._get(s, actor, service_id)
            (base,) = await self._infos(s, [svc])
            routes = list((await s.execute(select(Route).where(Route.endpoint_id == svc.id)
                                           .order_by(Route.created_at, Route.id))).scalars())
            sids = [r.session_id for r in routes if r.session_id]
            names: dict[uuid.UUID, str] = {sid: name for sid, name in (await s.execute(select(
                ComputeSession.id, ComputeSession.name).where(ComputeSession.id.in_(sids)))).all()} if sids else {}
            errors = (await s.execute(select(func.count()).select_from(ServiceError)
                                      .where(ServiceError.endpoint_id == svc.id))).scalar_one()
        return dataclasses.replace(
            base, error_count=int(errors),
            routes=[RouteInfo.of(r, names.get(r.session_id) if r.session_id else None, svc.live_stat)
                    for r in routes])

    # -- changes ---------------------------------------------------------------------------------
    async def update(self, actor: Actor, service_id: uuid.UUID | str, patch: UpdateService) -> ServiceInfo:
        """Any create field; a change of what replicas run with bumps ``generation`` (the reconciler
        rolls the replicas over), a change of the desired count or the name does not."""
        async with self.ctx.db.begin() as s:
            svc = await self._get_live(s, actor, service_id)
            current: dict[str, Any] = {
                "name": svc.name, "desired_replicas": svc.desired_replicas, "image": svc.image,
                "architecture": svc.architecture, "project": str(svc.project_id),
                "cluster_size": svc.cluster_size, "cluster_mode": svc.cluster_mode, "tag": svc.tag,
                "startup_command": svc.startup_command, "bootstrap_script": svc.bootstrap_script,
                "callback_url": svc.callback_url, "owner_access_key": svc.owner_access_key,
                "open_to_public": svc.open_to_public, "runtime_variant": svc.runtime_variant,
                "config": {"model": str(svc.model_folder_id), "model_mount_destination": svc.model_mount_destination,
                           "model_definition_path": svc.model_definition_path, "environ": svc.environ,
                           "resource_group": svc.resource_group, "resources": svc.resource_slots,
                           "resource_opts": svc.resource_opts,
                           "extra_mounts": {m["folder_id"]: m.get("mount_destination") or ""
                                            for m in svc.extra_mounts or []}},
            }
            changes = patch.model_dump(exclude_unset=True, exclude_none=True, exclude={"config"})
            current.update(changes)
            current["config"].update(patch.config.model_dump(exclude_unset=True, exclude_none=True))
            with _field_errors():
                req = CreateService.model_validate(current)
            r = await self._resolve(s, actor, req)
            if req.name != svc.name:
                await self._name_taken(s, req.name, except_id=svc.id)
            before = {f: getattr(svc, f) for f in REPLICA_FIELDS}
            self._apply(svc, req, r)
            if any(getattr(svc, f) != before[f] for f in REPLICA_FIELDS):
                svc.generation += 1
                await self._check_definition(svc)
            s.add(svc)
        self.wake.wake()
        return await self.info(actor, svc.id)

    async def scale(self, actor: Actor, service_id: uuid.UUID | str, to: int) -> ScaleResult:
        async with self.ctx.db.begin() as s:
            svc = await self._get_live(s, actor, service_id)
            self._check_replicas(to, await self.replica_limit(s, svc.owner_user_id), "to")
            svc.desired_replicas = to
            active = (await s.execute(select(func.count()).select_from(Route).where(
                Route.endpoint_id == svc.id, Route.status.in_(ACTIVE_ROUTE_STATUSES)))).scalar_one()
        self.wake.wake()
        return ScaleResult(current_route_count=int(active), target_count=to)

    async def delete(self, actor: Actor, service_id: uuid.UUID | str) -> None:
        """TERMINATING: the reconciler ends the replicas and marks the service DESTROYED."""
        async with self.ctx.db.begin() as s:
            svc = await self._get(s, actor, service_id)
            if svc.status not in ENDED_SERVICE_STATUSES:
                svc.status, svc.status_info = ServiceStatus.TERMINATING, "user-requested"
        self.wake.wake()

    async def sync(self, actor: Actor, service_id: uuid.UUID | str) -> None:
        async with self.ctx.db() as s:
            await self._get(s, actor, service_id)
        self.wake.wake()

    # -- tokens ----------------------------------------------------------------------------------
    async def issue_token(self, actor: Actor, service_id: uuid.UUID | str, req: TokenRequest) -> TokenInfo:
        now = datetime.now(UTC)
        try:
            expires = req.expires_at(now)
        except ValueError as e:
            field = str(e).split(":", 1)[0]
            raise field_problem(InvalidAPIParameters(str(e), data={field: str(e)}), field) from e
        async with self.ctx.db.begin() as s:
            svc = await self._get_live(s, actor, service_id)
            token_id = uuid.uuid4()
            token = issue_service_token(self.ctx.config.secrets.appproxy, str(svc.id), str(token_id),
                                        expires.timestamp())
            row = ServiceToken(id=token_id, endpoint_id=svc.id, token=token, created_by=actor.user_id,
                               created_at=now, expires_at=expires)
            s.add(row)
        return TokenInfo.of(row, now)

    async def tokens(self, actor: Actor, service_id: uuid.UUID | str) -> builtins.list[TokenInfo]:
        now = datetime.now(UTC)
        async with self.ctx.db() as s:
            svc = await self._get(s, actor, service_id)
            rows = (await s.execute(select(ServiceToken).where(ServiceToken.endpoint_id == svc.id)
                                    .order_by(ServiceToken.created_at.desc(), ServiceToken.id))).scalars()
            return [TokenInfo.of(t, now) for t in rows]

    async def revoke_token(self, actor: Actor, service_id: uuid.UUID | str, token_id: uuid.UUID | str) -> None:
        async with self.ctx.db.begin() as s:
            svc = await self._get(s, actor, service_id)
            token = await self._child(s, ServiceToken, svc, token_id, "token")
            if token.revoked_at is None:
                token.revoked_at = datetime.now(UTC)
        self.wake.wake()  # the proxy learns the revoked ids with the routing table

    @staticmethod
    async def _child(s: AsyncSession, model: type[_Child], svc: ModelService, ref: uuid.UUID | str,
                     what: str) -> _Child:
        try:
            rid = ref if isinstance(ref, uuid.UUID) else uuid.UUID(str(ref))
        except ValueError:
            raise ObjectNotFound(object_name=what) from None
        row = await s.get(model, rid)
        if row is None or row.endpoint_id != svc.id:
            raise ObjectNotFound(object_name=what)
        return row

    # -- routes ----------------------------------------------------------------------------------
    async def set_traffic_ratio(self, actor: Actor, service_id: uuid.UUID | str, route_id: uuid.UUID | str,
                                ratio: float) -> None:
        if not 0 <= ratio <= 100:
            raise field_problem(InvalidAPIParameters("traffic_ratio is between 0 and 100."), "traffic_ratio")
        async with self.ctx.db.begin() as s:
            svc = await self._get_live(s, actor, service_id)
            route = await self._child(s, Route, svc, route_id, "route")
            route.traffic_ratio = ratio
        self.wake.wake()

    async def remove_route(self, actor: Actor, service_id: uuid.UUID | str, route_id: uuid.UUID | str) -> None:
        """The replica goes (TERMINATING); below the desired count the reconciler starts another."""
        async with self.ctx.db.begin() as s:
            svc = await self._get_live(s, actor, service_id)
            route = await self._child(s, Route, svc, route_id, "route")
            if route.status not in (RouteStatus.TERMINATING, RouteStatus.FAILED):
                route.status, route.status_info = RouteStatus.TERMINATING, "user-requested"
        self.wake.wake()

    # -- errors ----------------------------------------------------------------------------------
    async def errors(self, actor: Actor, service_id: uuid.UUID | str) -> ServiceErrors:
        async with self.ctx.db() as s:
            svc = await self._get(s, actor, service_id)
            rows = (await s.execute(select(ServiceError).where(ServiceError.endpoint_id == svc.id)
                                    .order_by(ServiceError.created_at.desc(), ServiceError.id)
                                    .limit(MAX_ERRORS_LISTED))).scalars()
            return ServiceErrors(errors=[ErrorInfo.of(e) for e in rows], retries=svc.retries)

    async def clear_errors(self, actor: Actor, service_id: uuid.UUID | str) -> None:
        """Forget the failures and the backoff: a new replica starts at the reconciler's next pass."""
        async with self.ctx.db.begin() as s:
            svc = await self._get(s, actor, service_id)
            await s.execute(delete(ServiceError).where(ServiceError.endpoint_id == svc.id))
            svc.retries, svc.next_retry_at = 0, None
        self.wake.wake()

    # -- autoscaling rules -----------------------------------------------------------------------
    async def rules(self, actor: Actor, service_id: uuid.UUID | str) -> builtins.list[RuleInfo]:
        async with self.ctx.db() as s:
            svc = await self._get(s, actor, service_id)
            rows = (await s.execute(select(AutoScalingRule).where(AutoScalingRule.endpoint_id == svc.id)
                                    .order_by(AutoScalingRule.created_at, AutoScalingRule.id))).scalars()
            return [RuleInfo.of(r) for r in rows]

    async def _check_bounds(self, s: AsyncSession, svc: ModelService, rule: AutoScalingRule) -> None:
        problem = rule_bounds_problem(rule.min_replicas, rule.max_replicas,
                                      await self.replica_limit(s, svc.owner_user_id))
        if problem:
            field, msg = problem
            raise field_problem(InvalidAPIParameters(msg, data={field: msg}), field)

    async def create_rule(self, actor: Actor, service_id: uuid.UUID | str, new: NewRule) -> RuleInfo:
        async with self.ctx.db.begin() as s:
            svc = await self._get_live(s, actor, service_id)
            rule = AutoScalingRule(id=uuid.uuid4(), endpoint_id=svc.id, created_at=datetime.now(UTC),
                                   **new.model_dump(exclude_none=True))
            await self._check_bounds(s, svc, rule)
            s.add(rule)
        self.wake.wake()
        return RuleInfo.of(rule)

    async def update_rule(self, actor: Actor, service_id: uuid.UUID | str, rule_id: uuid.UUID | str,
                          patch: RuleFields) -> RuleInfo:
        async with self.ctx.db.begin() as s:
            svc = await self._get_live(s, actor, service_id)
            rule = await self._child(s, AutoScalingRule, svc, rule_id, "auto-scaling rule")
            for key, value in patch.model_dump(exclude_unset=True).items():
                if value is None and key not in ("min_replicas", "max_replicas"):
                    continue  # null = unchanged; the bounds may be cleared
                setattr(rule, key, value)
            await self._check_bounds(s, svc, rule)
        self.wake.wake()
        return RuleInfo.of(rule)

    async def delete_rule(self, actor: Actor, service_id: uuid.UUID | str, rule_id: uuid.UUID | str) -> None:
        async with self.ctx.db.begin() as s:
            svc = await self._get(s, actor, service_id)
            rule = await self._child(s, AutoScalingRule, svc, rule_id, "auto-scaling rule")
            await s.delete(rule)
        self.wake.wake()

    # -- logs ------------------------------------------------------------------------------------
    async def logs(self, actor: Actor, service_id: uuid.UUID | str, route_id: uuid.UUID | str | None = None
                   ) -> KernelLogs:
        """The container log of one replica (``route_id``), else of the newest one with a session."""
        async with self.ctx.db() as s:
            svc = await self._get(s, actor, service_id)
            if route_id is not None:
                route: Route | None = await self._child(s, Route, svc, route_id, "route")
            else:
                route = (await s.execute(select(Route).where(Route.endpoint_id == svc.id,
                                                             Route.session_id.is_not(None))
                                         .order_by(Route.created_at.desc()).limit(1))).scalars().first()
        if route is None or route.session_id is None:
            return KernelLogs(logs="", kernel_id=None)
        try:
            return await self.sessions.logs(actor, str(route.session_id))
        except (ObjectNotFound, InsufficientPrivilege):
            return KernelLogs(logs="", kernel_id=None)  # the replica's session is gone

