"""Admin user management (ID-11, ID-12) and the user-creation path sign-up shares."""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from workbay.common.errors import AlreadyExists, InvalidAPIParameters, ObjectNotFound
from workbay.common.text import MultilineText, NameText, PlainText
from workbay.manager.models import Domain, Keypair, Project, ProjectMember, User, UserResourcePolicy

from . import access, keys, passwords
from .access import Actor
from .context import ServiceContext
from .serialize import KeypairInfo, Page, UserInfo

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\Z")
UserStatus = Literal["active", "inactive", "before-verification", "deleted"]
Role = Literal["superadmin", "admin", "user", "monitor"]
INT32_MAX = 2**31 - 1


def _client_ips(v: list[str] | None) -> list[str] | None:
    """Allowed client addresses: IP addresses or networks (CIDR); normalized."""
    if v is None:
        return None
    out = []
    for item in v:
        try:
            out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError as e:
            raise ValueError(f"{item!r} is not an IP address or network") from e
    return out or None


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=64)
    username: NameText = Field(min_length=1, max_length=64)
    password: str = Field(max_length=1024)
    full_name: PlainText = Field("", max_length=64)
    description: MultilineText = Field("", max_length=4096)
    status: UserStatus = "active"
    role: Role = "user"
    domain_name: NameText = Field("default", max_length=64)
    need_password_change: bool = False
    sudo_session_enabled: bool = False
    resource_policy: NameText = Field("default", max_length=256)
    project_ids: list[uuid.UUID] = Field([], max_length=1024)
    container_uid: int | None = Field(None, ge=0, le=INT32_MAX)
    container_gid: int | None = Field(None, ge=0, le=INT32_MAX)
    allowed_client_ip: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=256)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        if not EMAIL_RE.match(v):
            raise ValueError("not a valid e-mail address")
        return v.lower()

    @field_validator("allowed_client_ip")
    @classmethod
    def _ips(cls, v: list[str] | None) -> list[str] | None:
        return _client_ips(v)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: NameText | None = Field(None, min_length=1, max_length=64)
    password: str | None = Field(None, max_length=1024)
    full_name: PlainText | None = Field(None, max_length=64)
    description: MultilineText | None = Field(None, max_length=4096)
    status: UserStatus | None = None
    role: Role | None = None
    domain_name: NameText | None = Field(None, max_length=64)
    need_password_change: bool | None = None
    sudo_session_enabled: bool | None = None
    resource_policy: NameText | None = Field(None, max_length=256)
    project_ids: list[uuid.UUID] | None = Field(None, max_length=1024)
    container_uid: int | None = Field(None, ge=0, le=INT32_MAX)
    container_gid: int | None = Field(None, ge=0, le=INT32_MAX)
    allowed_client_ip: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=256)

    @field_validator("allowed_client_ip")
    @classmethod
    def _ips(cls, v: list[str] | None) -> list[str] | None:
        return _client_ips(v)


def _check_password(password: str) -> None:
    problems = passwords.password_problems(password)
    if problems:
        msg = passwords.describe_problems(problems)
        raise InvalidAPIParameters(msg, data={"password": msg})


def _duplicate(field: str) -> None:
    label = {"email": "e-mail address", "username": "user name"}[field]
    raise AlreadyExists(f"A user with this {label} already exists.", data={field: "already exists"})


class UserService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _projects_of(self, s: AsyncSession, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Project]]:
        out: dict[uuid.UUID, list[Project]] = {uid: [] for uid in user_ids}
        if user_ids:
            rows = await s.execute(
                select(ProjectMember.user_id, Project)
                .join(Project, Project.id == ProjectMember.project_id)
                .where(ProjectMember.user_id.in_(user_ids)).order_by(Project.name))
            for uid, project in rows.all():
                out[uid].append(project)
        return out

    async def _get(self, s: AsyncSession, email: str) -> User:
        user = (await s.execute(select(User).where(User.email == email.lower()))).scalar_one_or_none()
        if user is None:
            raise ObjectNotFound(object_name="user")
        return user

    async def _check_refs(self, s: AsyncSession, domain_name: str, policy: str,
                          project_ids: list[uuid.UUID] | None) -> None:
        domain = await s.get(Domain, domain_name)
        if domain is None:
            raise InvalidAPIParameters(f"No such domain: {domain_name}", data={"domain_name": "unknown"})
        if await s.get(UserResourcePolicy, policy) is None:
            raise InvalidAPIParameters(f"No such user resource policy: {policy}",
                                       data={"resource_policy": "unknown"})
        for pid in project_ids or []:
            project = await s.get(Project, pid)
            if project is None or project.domain_name != domain_name:
                raise InvalidAPIParameters(f"No such project in domain {domain_name}: {pid}",
                                           data={"project_ids": "unknown project"})

    async def list(self, actor: Actor, status: str | None, q: str | None, domain: str | None,
                   limit: int, offset: int) -> Page[UserInfo]:
        access.require_reader(actor)
        scope = access.domain_scope(actor)
        stmt = select(User)
        if scope is not None:
            stmt = stmt.where(User.domain_name == scope)
        elif domain:
            stmt = stmt.where(User.domain_name == domain)
        if status:
            stmt = stmt.where(User.status == status)
        if q:
            q = q.lower()  # matched literally: % and _ are no wildcards

            def has(col: QueryableAttribute[str]) -> ColumnElement[bool]:
                return func.lower(col).contains(q, autoescape=True)

            ak_owner = select(Keypair.user_id).where(has(Keypair.access_key))
            stmt = stmt.where(or_(has(User.email), has(User.username), has(User.full_name),
                                  User.uuid.in_(ak_owner)))
        async with self.ctx.db() as s:
            total = (await s.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
            users = (await s.execute(stmt.order_by(User.created_at.desc(), User.email)
                                     .limit(limit).offset(offset))).scalars().all()
            projects = await self._projects_of(s, [u.uuid for u in users])
        return Page([UserInfo.of(u, projects[u.uuid]) for u in users], total)

    async def get(self, actor: Actor, email: str) -> UserInfo:
        if actor.email != email.lower():
            access.require_reader(actor)
        async with self.ctx.db() as s:
            user = await self._get(s, email)
            access.check_domain_visible(actor, user.domain_name, "user")
            return UserInfo.of(user, (await self._projects_of(s, [user.uuid]))[user.uuid])

    async def create(self, actor: Actor, new: NewUser) -> UserInfo:
        access.check_may_manage_domain(actor, new.domain_name, "domain")
        access.check_role_grant(actor, new.role)
        return await self.create_user_unchecked(new)

    async def create_user_unchecked(self, new: NewUser, join_default_project: bool = False
                                    ) -> UserInfo:
        """Create a user with a default keypair.  Callers check authorization first."""
        _check_password(new.password)
        hashed = await passwords.hash_password_async(new.password)
        try:
            return await self._insert(new, hashed, join_default_project)
        except IntegrityError:
            # A concurrent create won the race between our duplicate check and our insert.
            async with self.ctx.db() as s:
                await self._refuse_duplicates(s, new.email, new.username)
            raise

    async def _refuse_duplicates(self, s: AsyncSession, email: str, username: str) -> None:
        dup = (await s.execute(select(User).where(
            or_(User.email == email, User.username == username)))).scalars().first()
        if dup is not None:
            _duplicate("email" if dup.email == email else "username")

    async def _insert(self, new: NewUser, hashed: str, join_default_project: bool) -> UserInfo:
        async with self.ctx.db.begin() as s:
            await self._check_refs(s, new.domain_name, new.resource_policy, new.project_ids)
            await self._refuse_duplicates(s, new.email, new.username)
            user = User(email=new.email, username=new.username,
                        password=hashed, full_name=new.full_name,
                        description=new.description, status=new.status, role=new.role,
                        domain_name=new.domain_name, need_password_change=new.need_password_change,
                        sudo_session_enabled=new.sudo_session_enabled,
                        resource_policy=new.resource_policy, container_uid=new.container_uid,
                        container_gid=new.container_gid, allowed_client_ip=new.allowed_client_ip,
                        preferences={})
            s.add(user)
            await s.flush()
            project_ids = list(new.project_ids)
            if join_default_project and not project_ids:
                default = (await s.execute(select(Project.id).where(
                    Project.domain_name == new.domain_name, Project.name == "default"))).scalar()
                if default is not None:
                    project_ids.append(default)
            for pid in dict.fromkeys(project_ids):
                s.add(ProjectMember(project_id=pid, user_id=user.uuid))
            kp = Keypair(access_key=keys.generate_access_key(), secret_key=keys.generate_secret_key(),
                         user_id=user.uuid, is_active=new.status == "active",
                         is_admin=new.role in ("superadmin", "admin"), is_default=True,
                         rate_limit=self.ctx.config.manager.default_rate_limit,
                         resource_policy="default", dotfiles=[])
            s.add(kp)
            await s.flush()
            projects = (await self._projects_of(s, [user.uuid]))[user.uuid]
            return UserInfo.of(user, projects, keypair=KeypairInfo.of(kp, user.email, show_secret=True))

    async def update(self, actor: Actor, email: str, patch: UserPatch) -> UserInfo:
        changes = patch.model_dump(exclude_unset=True)
        new_password = changes.pop("password", None)
        hashed = None
        if new_password:  # an empty password field means "unchanged"
            _check_password(new_password)
            hashed = await passwords.hash_password_async(new_password)
        async with self.ctx.db.begin() as s:
            user = await self._get(s, email)
            access.check_may_modify_user(actor, user.role, user.domain_name)
            if "role" in changes and changes["role"] is not None:
                access.check_role_grant(actor, changes["role"])
            if changes.get("domain_name") not in (None, user.domain_name):
                access.require_superadmin(actor)
            domain = changes.get("domain_name") or user.domain_name
            await self._check_refs(s, domain, changes.get("resource_policy") or user.resource_policy,
                                   changes.get("project_ids"))
            if changes.get("username") and changes["username"] != user.username:
                taken = (await s.execute(select(User.uuid).where(User.username == changes["username"]))).first()
                if taken:
                    _duplicate("username")
            if hashed:
                user.password = hashed
            project_ids = changes.pop("project_ids", None)
            for key, value in changes.items():
                if value is None and key not in ("container_uid", "container_gid", "allowed_client_ip"):
                    continue
                setattr(user, key, value)
            if changes.get("status") and changes["status"] != "active":
                # ID-11: deactivating a user deactivates the keypairs; reactivating does not.
                for kp in (await s.execute(select(Keypair).where(Keypair.user_id == user.uuid))).scalars():
                    kp.is_active = False
                user.status_info = f"set {changes['status']} by {actor.email}"
            elif changes.get("status") == "active":
                user.status_info = f"reactivated by {actor.email}"
            if "role" in changes and changes["role"]:
                for kp in (await s.execute(select(Keypair).where(Keypair.user_id == user.uuid))).scalars():
                    kp.is_admin = changes["role"] in ("superadmin", "admin")
            if project_ids is not None:
                await s.execute(delete(ProjectMember).where(ProjectMember.user_id == user.uuid)
                                .execution_options(synchronize_session=False))
                for pid in dict.fromkeys(project_ids):
                    s.add(ProjectMember(project_id=pid, user_id=user.uuid))
            elif changes.get("domain_name"):
                # A user belongs to projects of their own domain only.
                others = select(Project.id).where(Project.domain_name != user.domain_name)
                await s.execute(delete(ProjectMember).where(
                    ProjectMember.user_id == user.uuid, ProjectMember.project_id.in_(others))
                    .execution_options(synchronize_session=False))
            await s.flush()  # a concurrent rename to the same user name: the app answers 400
            return UserInfo.of(user, (await self._projects_of(s, [user.uuid]))[user.uuid])

    async def disable_totp(self, actor: Actor, email: str) -> UserInfo:
        async with self.ctx.db.begin() as s:
            user = await self._get(s, email)
            access.check_may_modify_user(actor, user.role, user.domain_name)
            user.totp_activated, user.totp_key, user.totp_activated_at = False, None, None
            await s.flush()
            return UserInfo.of(user, (await self._projects_of(s, [user.uuid]))[user.uuid])


@dataclass(frozen=True)
class UserProfile:
    """What a list of keypairs shows of each owner."""

    full_name: str | None
    domain_name: str
    projects: list[str]  # names of the projects they are a member of, sorted


async def user_profiles(ctx: ServiceContext, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, UserProfile]:
    """Full name, domain and project names of these users.  No authorization: callers list what they
    may see (the keypair service gives owners' emails only)."""
    if not user_ids:
        return {}
    ids = list(user_ids)
    async with ctx.db() as s:
        users = (await s.execute(select(User.uuid, User.full_name, User.domain_name)
                                 .where(User.uuid.in_(ids)))).all()
        memberships = (await s.execute(
            select(ProjectMember.user_id, Project.name).join(Project, Project.id == ProjectMember.project_id)
            .where(ProjectMember.user_id.in_(ids)).order_by(Project.name))).all()
    names: dict[uuid.UUID, list[str]] = {uid: [] for uid, _, _ in users}
    for uid, name in memberships:
        names.setdefault(uid, []).append(name)
    return {uid: UserProfile(full_name=full_name, domain_name=domain, projects=names[uid])
            for uid, full_name, domain in users}
