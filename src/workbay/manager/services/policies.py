"""Keypair, user and project resource policies (AD-1)."""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select

from workbay.common.errors import AlreadyExists, InvalidAPIParameters, ObjectNotFound
from workbay.manager.models import (
    Keypair,
    KeypairResourcePolicy,
    Project,
    ProjectResourcePolicy,
    User,
    UserResourcePolicy,
)

from . import access
from .access import Actor
from .context import ServiceContext
from .serialize import PolicyInfo
from .slots import check_slots

PolicyKind = Literal["keypair", "user", "project"]
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
PolicyRow = KeypairResourcePolicy | UserResourcePolicy | ProjectResourcePolicy
PolicyModel = type[KeypairResourcePolicy] | type[UserResourcePolicy] | type[ProjectResourcePolicy]
MODELS: dict[str, PolicyModel] = {"keypair": KeypairResourcePolicy, "user": UserResourcePolicy,
                                  "project": ProjectResourcePolicy}
# Who may hold a policy of each kind (a policy in use cannot be deleted).
USED_BY: dict[str, tuple[type[Keypair] | type[User] | type[Project], str]] = {
    "keypair": (Keypair, "keypairs"), "user": (User, "users"), "project": (Project, "projects")}
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
HOST_PERMISSIONS = {"create-vfolder", "modify-vfolder", "delete-vfolder", "mount-in-session",
                    "upload-file", "download-file", "invite-others", "set-user-specific-permission"}


def _name(v: str) -> str:
    if not NAME_RE.match(v) or len(v) > 256:
        raise ValueError("letters, digits, '.', '_' and '-' only (at most 256)")
    return v


class KeypairPolicyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total_resource_slots: dict[str, Any] = {}
    max_containers_per_session: int = Field(1, ge=1, le=INT32_MAX)
    max_session_lifetime: int = Field(0, ge=0, le=INT32_MAX)
    max_concurrent_sessions: int = Field(30, ge=0, le=INT32_MAX)
    max_concurrent_sftp_sessions: int = Field(1, ge=0, le=INT32_MAX)
    max_pending_session_count: int | None = Field(None, ge=0, le=INT32_MAX)
    idle_timeout: int = Field(3600, ge=0, le=INT32_MAX)
    allowed_folder_hosts: dict[str, list[str]] = {}

    @field_validator("total_resource_slots")
    @classmethod
    def _v_slots(cls, v: dict[str, Any]) -> dict[str, str]:
        return check_slots(v)

    @field_validator("allowed_folder_hosts")
    @classmethod
    def _v_hosts(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for host, perms in v.items():
            bad = set(perms) - HOST_PERMISSIONS
            if bad:
                raise ValueError(f"{host}: unknown permissions {sorted(bad)}")
        return v


class UserPolicyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_folder_count: int = Field(0, ge=0, le=INT32_MAX)
    max_quota_scope_size: int = Field(-1, ge=-1, le=INT64_MAX)
    max_session_count_per_model_session: int = Field(10, ge=0, le=INT32_MAX)
    max_customized_image_count: int = Field(3, ge=0, le=INT32_MAX)


class ProjectPolicyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_folder_count: int = Field(0, ge=0, le=INT32_MAX)
    max_quota_scope_size: int = Field(-1, ge=-1, le=INT64_MAX)
    max_network_count: int = Field(3, ge=0, le=INT32_MAX)


FIELDS: dict[str, type[BaseModel]] = {
    "keypair": KeypairPolicyFields, "user": UserPolicyFields, "project": ProjectPolicyFields,
}


def parse_policy(kind: str, data: dict[str, Any], partial: bool,
                 current_name: str | None = None) -> tuple[str | None, dict[str, Any]]:
    """Validate a policy body; returns (name, fields).  PATCH (partial) never changes the name
    (repeating the current name is accepted)."""
    from pydantic import ValidationError

    from workbay.common.http import validation_error

    data = dict(data)
    name = data.pop("name", None)
    if partial and name is not None and name != current_name:
        raise InvalidAPIParameters("A policy's name cannot be changed.", data={"name": "read-only"})
    if not partial:
        try:
            name = _name(str(name or ""))
        except ValueError as e:
            raise InvalidAPIParameters(f"name: {e}", data={"name": str(e)}) from e
    model = FIELDS[kind]
    try:
        if partial:
            merged = model.model_construct()
            checked = model.model_validate({**{k: getattr(merged, k) for k in model.model_fields}, **data})
            return name, {k: getattr(checked, k) for k in data}
        return name, model.model_validate(data).model_dump()
    except ValidationError as e:
        raise validation_error(list(e.errors())) from e


class PolicyService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def list(self, actor: Actor, kind: PolicyKind) -> builtins.list[PolicyInfo]:
        access.require_reader(actor)
        model = MODELS[kind]
        async with self.ctx.db() as s:
            # a union of mapped classes reads back as their base class: the rows are this kind's
            items = cast(Sequence[PolicyRow], (await s.execute(select(model).order_by(model.name))).scalars().all())
        return [PolicyInfo.of(p) for p in items]

    async def get(self, actor: Actor, kind: PolicyKind, name: str) -> PolicyInfo:
        access.require_reader(actor)
        async with self.ctx.db() as s:
            policy = cast(PolicyRow | None, await s.get(MODELS[kind], name))
        if policy is None:
            raise ObjectNotFound(object_name=f"{kind} resource policy")
        return PolicyInfo.of(policy)

    async def create(self, actor: Actor, kind: PolicyKind, body: dict[str, Any]) -> PolicyInfo:
        access.require_superadmin(actor)
        name, fields = parse_policy(kind, body, partial=False)
        model = MODELS[kind]
        async with self.ctx.db.begin() as s:
            if await s.get(model, name) is not None:
                raise AlreadyExists("A policy with this name already exists.", data={"name": "already exists"})
            policy = model(name=name, **fields)
            s.add(policy)
            await s.flush()
            return PolicyInfo.of(policy)

    async def update(self, actor: Actor, kind: PolicyKind, name: str, body: dict[str, Any]) -> PolicyInfo:
        access.require_superadmin(actor)
        _, fields = parse_policy(kind, body, partial=True, current_name=name)
        async with self.ctx.db.begin() as s:
            policy = cast(PolicyRow | None, await s.get(MODELS[kind], name))
            if policy is None:
                raise ObjectNotFound(object_name=f"{kind} resource policy")
            for key, value in fields.items():
                setattr(policy, key, value)
            await s.flush()
            return PolicyInfo.of(policy)

    async def delete(self, actor: Actor, kind: PolicyKind, name: str) -> None:
        access.require_superadmin(actor)
        owner_model, label = USED_BY[kind]
        async with self.ctx.db.begin() as s:
            policy = cast(PolicyRow | None, await s.get(MODELS[kind], name))
            if policy is None:
                raise ObjectNotFound(object_name=f"{kind} resource policy")
            in_use = (await s.execute(select(func.count()).select_from(owner_model)
                                      .where(owner_model.resource_policy == name))).scalar_one()
            if in_use:
                raise InvalidAPIParameters(f"The policy is used by {in_use} {label}; it cannot be deleted.",
                                           title="Resource policy in use.")
            await s.delete(policy)
