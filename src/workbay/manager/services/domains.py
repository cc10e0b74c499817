"""Domains (superadmin)."""

from __future__ import annotations

import builtins
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.errors import AlreadyExists, Conflict, ObjectNotFound
from workbay.common.text import MultilineText
from workbay.manager.models import Domain, Project, User

from . import access
from .access import Actor
from .context import ServiceContext
from .serialize import DomainInfo
from .slots import check_slots

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")


class NewDomain(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    description: MultilineText = Field("", max_length=4096)
    is_active: bool = True
    total_resource_slots: dict[str, Any] = {}
    allowed_folder_hosts: dict[str, Any] = {}
    allowed_docker_registries: list[str] = []

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("letters, digits, '.', '_' and '-' only")
        return v

    @field_validator("total_resource_slots")
    @classmethod
    def _slots(cls, v: dict[str, Any]) -> dict[str, str]:
        return check_slots(v)


class DomainPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: MultilineText | None = Field(None, max_length=4096)
    is_active: bool | None = None
    total_resource_slots: dict[str, Any] | None = None
    allowed_folder_hosts: dict[str, Any] | None = None
    allowed_docker_registries: list[str] | None = None

    @field_validator("total_resource_slots")
    @classmethod
    def _slots(cls, v: dict[str, Any] | None) -> dict[str, str] | None:
        return None if v is None else check_slots(v)


class DomainService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _get(self, s: AsyncSession, actor: Actor, name: str) -> Domain:
        access.check_domain_visible(actor, name, "domain")
        domain = await s.get(Domain, name)
        if domain is None:
            raise ObjectNotFound(object_name="domain")
        return domain

    async def list(self, actor: Actor) -> builtins.list[DomainInfo]:
        access.require_reader(actor)
        stmt = select(Domain).order_by(Domain.name)
        scope = access.domain_scope(actor)
        if scope is not None:
            stmt = stmt.where(Domain.name == scope)
        async with self.ctx.db() as s:
            items = (await s.execute(stmt)).scalars().all()
        return [DomainInfo.of(d) for d in items]

    async def get(self, actor: Actor, name: str) -> DomainInfo:
        access.require_reader(actor)
        async with self.ctx.db() as s:
            return DomainInfo.of(await self._get(s, actor, name))

    async def create(self, actor: Actor, new: NewDomain) -> DomainInfo:
        access.require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            if await s.get(Domain, new.name) is not None:
                raise AlreadyExists("A domain with this name already exists.", data={"name": "already exists"})
            domain = Domain(**new.model_dump())
            s.add(domain)
            await s.flush()
            return DomainInfo.of(domain)

    async def update(self, actor: Actor, name: str, patch: DomainPatch) -> DomainInfo:
        access.require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            domain = await self._get(s, actor, name)
            for key, value in patch.model_dump(exclude_unset=True, exclude_none=True).items():
                setattr(domain, key, value)
            await s.flush()
            return DomainInfo.of(domain)

    async def delete(self, actor: Actor, name: str) -> None:
        access.require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            domain = await self._get(s, actor, name)
            users = (await s.execute(select(func.count()).select_from(User).where(User.domain_name == name))).scalar_one()
            projects = (await s.execute(select(func.count()).select_from(Project).where(Project.domain_name == name))).scalar_one()
            if users or projects:
                raise Conflict(f"The domain still has {users} users and {projects} projects.")
            await s.delete(domain)
