"""Projects and their members (admins within their domain)."""

from __future__ import annotations

import builtins
import re
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.errors import AlreadyExists, Conflict, InvalidAPIParameters, ObjectNotFound
from workbay.common.text import MultilineText
from workbay.manager.models import Domain, Project, ProjectMember, ProjectResourcePolicy, User

from . import access
from .access import Actor
from .context import ServiceContext
from .serialize import Page, ProjectInfo, UserInfo
from .slots import check_slots

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def _check_name(v: str | None) -> str | None:
    if v is not None and not NAME_RE.match(v):
        raise ValueError("letters, digits, '.', '_' and '-' only")
    return v


class NewProject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    domain_name: str = "default"
    description: MultilineText = Field("", max_length=4096)
    is_active: bool = True
    total_resource_slots: dict[str, Any] = {}
    allowed_folder_hosts: dict[str, Any] = {}
    resource_policy: str = "default"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        _check_name(v)
        return v

    @field_validator("total_resource_slots")
    @classmethod
    def _slots(cls, v: dict[str, Any]) -> dict[str, str]:
        return check_slots(v)


class ProjectPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=64)
    description: MultilineText | None = Field(None, max_length=4096)
    is_active: bool | None = None
    total_resource_slots: dict[str, Any] | None = None
    allowed_folder_hosts: dict[str, Any] | None = None
    resource_policy: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return _check_name(v)

    @field_validator("total_resource_slots")
    @classmethod
    def _slots(cls, v: dict[str, Any] | None) -> dict[str, str] | None:
        return None if v is None else check_slots(v)


class Members(BaseModel):
    model_config = ConfigDict(extra="forbid")
    emails: builtins.list[str] = Field(min_length=1)


class ProjectService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _get(self, s: AsyncSession, actor: Actor, project_id: uuid.UUID) -> Project:
        project = await s.get(Project, project_id)
        if project is None:
            raise ObjectNotFound(object_name="project")
        access.check_domain_visible(actor, project.domain_name, "project")
        return project

    async def _member_counts(self, s: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        rows = await s.execute(select(ProjectMember.project_id, func.count())
                               .where(ProjectMember.project_id.in_(ids)).group_by(ProjectMember.project_id))
        return dict(rows.all())

    async def list(self, actor: Actor, domain: str | None, q: str | None, limit: int, offset: int
                   ) -> Page[ProjectInfo]:
        access.require_reader(actor)
        stmt = select(Project)
        scope = access.domain_scope(actor)
        if scope is not None:
            stmt = stmt.where(Project.domain_name == scope)
        elif domain:
            stmt = stmt.where(Project.domain_name == domain)
        if q:
            stmt = stmt.where(func.lower(Project.name).contains(q.lower(), autoescape=True))
        async with self.ctx.db() as s:
            total = (await s.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
            items = (await s.execute(stmt.order_by(Project.domain_name, Project.name).limit(limit).offset(offset))).scalars().all()
            counts = await self._member_counts(s, [p.id for p in items])
        return Page([ProjectInfo.of(p, counts.get(p.id, 0)) for p in items], total)

    async def names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Project names by id.  No authorization: callers name projects of rows they may see."""
        if not ids:
            return {}
        async with self.ctx.db() as s:
            rows = await s.execute(select(Project.id, Project.name).where(Project.id.in_(list(ids))))
        return {pid: name for pid, name in rows}

    async def get(self, actor: Actor, project_id: uuid.UUID) -> ProjectInfo:
        access.require_reader(actor)
        async with self.ctx.db() as s:
            project = await self._get(s, actor, project_id)
            counts = await self._member_counts(s, [project.id])
        return ProjectInfo.of(project, counts.get(project.id, 0))

    async def create(self, actor: Actor, new: NewProject) -> ProjectInfo:
        access.check_may_manage_domain(actor, new.domain_name, "domain")
        async with self.ctx.db.begin() as s:
            if await s.get(Domain, new.domain_name) is None:
                raise InvalidAPIParameters(f"No such domain: {new.domain_name}", data={"domain_name": "unknown"})
            if await s.get(ProjectResourcePolicy, new.resource_policy) is None:
                raise InvalidAPIParameters(f"No such project resource policy: {new.resource_policy}",
                                           data={"resource_policy": "unknown"})
            dup = (await s.execute(select(Project.id).where(Project.domain_name == new.domain_name,
                                                            Project.name == new.name))).first()
            if dup:
                raise AlreadyExists("A project with this name already exists in the domain.",
                                    data={"name": "already exists"})
            project = Project(**new.model_dump())
            s.add(project)
            await s.flush()
            return ProjectInfo.of(project, 0)

    async def update(self, actor: Actor, project_id: uuid.UUID, patch: ProjectPatch) -> ProjectInfo:
        access.require_admin(actor)
        async with self.ctx.db.begin() as s:
            project = await self._get(s, actor, project_id)
            changes = patch.model_dump(exclude_unset=True, exclude_none=True)
            if "resource_policy" in changes and await s.get(ProjectResourcePolicy, changes["resource_policy"]) is None:
                raise InvalidAPIParameters("No such project resource policy.", data={"resource_policy": "unknown"})
            if "name" in changes and changes["name"] != project.name:
                dup = (await s.execute(select(Project.id).where(Project.domain_name == project.domain_name,
                                                                Project.name == changes["name"]))).first()
                if dup:
                    raise AlreadyExists("A project with this name already exists in the domain.",
                                        data={"name": "already exists"})
            for key, value in changes.items():
                setattr(project, key, value)
            await s.flush()
            counts = await self._member_counts(s, [project.id])
            return ProjectInfo.of(project, counts.get(project.id, 0))

    async def delete(self, actor: Actor, project_id: uuid.UUID) -> None:
        access.require_admin(actor)
        async with self.ctx.db.begin() as s:
            project = await self._get(s, actor, project_id)
            members = (await self._member_counts(s, [project.id])).get(project.id, 0)
            if members:
                raise Conflict(f"The project still has {members} members; remove them first.")
            await s.delete(project)

    async def members(self, actor: Actor, project_id: uuid.UUID) -> builtins.list[UserInfo]:
        access.require_reader(actor)
        async with self.ctx.db() as s:
            await self._get(s, actor, project_id)
            users = (await s.execute(select(User).join(ProjectMember, ProjectMember.user_id == User.uuid)
                                     .where(ProjectMember.project_id == project_id).order_by(User.email))).scalars().all()
        return [UserInfo.of(u) for u in users]

    async def _users(self, s: AsyncSession, project: Project, emails: builtins.list[str]
                     ) -> builtins.list[User]:
        """The users with these e-mails in the project's domain (members must be); users of
        other domains are reported exactly like unknown ones."""
        users = (await s.execute(select(User).where(
            User.email.in_([e.lower() for e in emails]),
            User.domain_name == project.domain_name))).scalars().all()
        found = {u.email for u in users}
        missing = [e for e in emails if e.lower() not in found]
        if missing:
            raise InvalidAPIParameters(f"No such users in domain {project.domain_name}: {', '.join(missing)}",
                                       data={"emails": missing})
        return list(users)

    async def add_members(self, actor: Actor, project_id: uuid.UUID, emails: builtins.list[str]
                          ) -> builtins.list[str]:
        access.require_admin(actor)
        async with self.ctx.db.begin() as s:
            project = await self._get(s, actor, project_id)
            added: builtins.list[str] = []
            for user in await self._users(s, project, emails):
                if await s.get(ProjectMember, (project.id, user.uuid)) is None:
                    s.add(ProjectMember(project_id=project.id, user_id=user.uuid))
                    added.append(user.email)
        return added

    async def remove_members(self, actor: Actor, project_id: uuid.UUID, emails: builtins.list[str]
                             ) -> builtins.list[str]:
        access.require_admin(actor)
        async with self.ctx.db.begin() as s:
            project = await self._get(s, actor, project_id)
            removed: builtins.list[str] = []
            for user in await self._users(s, project, emails):
                member = await s.get(ProjectMember, (project.id, user.uuid))
                if member is not None:
                    await s.delete(member)
                    removed.append(user.email)
        return removed
