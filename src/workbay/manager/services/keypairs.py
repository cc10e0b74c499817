"""Admin keypair management (ID-9, ID-10)."""

from __future__ import annotations

import builtins
import uuid

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.errors import AlreadyExists, Conflict, InvalidAPIParameters, ObjectNotFound
from workbay.manager.models import Keypair, KeypairResourcePolicy, User

from . import access, keys
from .access import Actor
from .context import ServiceContext
from .serialize import KeypairInfo, Page

INT32_MAX = 2**31 - 1


class NewKeypair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_email: str = Field(max_length=64)
    resource_policy: str = Field("default", max_length=256)
    rate_limit: int = Field(10000, ge=1, le=INT32_MAX)
    is_active: bool = True
    access_key: str | None = Field(None, max_length=128)
    secret_key: str | None = Field(None, max_length=256)


class KeypairPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource_policy: str | None = Field(None, max_length=256)
    rate_limit: int | None = Field(None, ge=1, le=INT32_MAX)
    is_active: bool | None = None


class KeypairService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _get(self, s: AsyncSession, actor: Actor, access_key: str) -> tuple[Keypair, User]:
        row = (await s.execute(select(Keypair, User).join(User, User.uuid == Keypair.user_id)
                               .where(Keypair.access_key == access_key))).first()
        if row is None:
            raise ObjectNotFound(object_name="keypair")
        access.check_domain_visible(actor, row[1].domain_name, "keypair")
        return row[0], row[1]

    @staticmethod
    def _show_secret(actor: Actor, owner: User) -> bool:
        return access.may_see_secret_key(actor, owner.uuid, owner.role, owner.domain_name)

    async def _check_policy(self, s: AsyncSession, name: str) -> None:
        if await s.get(KeypairResourcePolicy, name) is None:
            raise InvalidAPIParameters(f"No such keypair resource policy: {name}",
                                       data={"resource_policy": "unknown"})

    async def list(self, actor: Actor, is_active: bool | None, user_email: str | None, q: str | None,
                   limit: int, offset: int) -> Page[KeypairInfo]:
        access.require_reader(actor)
        await self.ctx.keypair_usage.flush()  # counters are read: write what accumulated first
        stmt = select(Keypair, User).join(User, User.uuid == Keypair.user_id)
        scope = access.domain_scope(actor)
        if scope is not None:
            stmt = stmt.where(User.domain_name == scope)
        if is_active is not None:
            stmt = stmt.where(Keypair.is_active.is_(is_active))
        if user_email:
            stmt = stmt.where(User.email == user_email.lower())
        if q:
            q = q.lower()  # matched literally: % and _ are no wildcards
            stmt = stmt.where(or_(func.lower(User.email).contains(q, autoescape=True),
                                  func.lower(Keypair.access_key).contains(q, autoescape=True)))
        async with self.ctx.db() as s:
            total = (await s.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
            rows = (await s.execute(stmt.order_by(Keypair.created_at.desc()).limit(limit).offset(offset))).all()
        return Page([KeypairInfo.of(k, u.email, self._show_secret(actor, u)) for k, u in rows], total)

    async def get(self, actor: Actor, access_key: str) -> KeypairInfo:
        access.require_reader(actor)
        await self.ctx.keypair_usage.flush()
        async with self.ctx.db() as s:
            kp, user = await self._get(s, actor, access_key)
        return KeypairInfo.of(kp, user.email, self._show_secret(actor, user))

    async def create(self, actor: Actor, new: NewKeypair) -> KeypairInfo:
        access.require_admin(actor)
        ak = new.access_key or keys.generate_access_key()
        sk = new.secret_key or keys.generate_secret_key()
        if not keys.valid_access_key(ak):
            raise InvalidAPIParameters("The access key must be 20 letters or digits.",
                                       data={"access_key": "20 letters or digits"})
        if not keys.valid_secret_key(sk):
            raise InvalidAPIParameters("The secret key must be 40 characters.",
                                       data={"secret_key": "40 characters"})
        async with self.ctx.db.begin() as s:
            user = (await s.execute(select(User).where(User.email == new.user_email.lower()))).scalar_one_or_none()
            if user is None or access.domain_scope(actor) not in (None, user.domain_name):
                # the same answer for users of other domains: they do not exist for this admin
                raise ObjectNotFound(f"No such user: {new.user_email}", object_name="user")
            access.check_may_modify_user(actor, user.role, user.domain_name)
            await self._check_policy(s, new.resource_policy)
            if await s.get(Keypair, ak) is not None:
                raise AlreadyExists("This access key is already in use.", data={"access_key": "already exists"})
            kp = Keypair(access_key=ak, secret_key=sk, user_id=user.uuid, is_active=new.is_active,
                         is_admin=user.role in ("superadmin", "admin"), is_default=False,
                         rate_limit=new.rate_limit, resource_policy=new.resource_policy, dotfiles=[])
            s.add(kp)
            await s.flush()
            return KeypairInfo.of(kp, user.email, True)

    async def update(self, actor: Actor, access_key: str, patch: KeypairPatch) -> KeypairInfo:
        access.require_admin(actor)
        async with self.ctx.db.begin() as s:
            kp, user = await self._get(s, actor, access_key)
            access.check_may_modify_user(actor, user.role, user.domain_name)
            changes = patch.model_dump(exclude_unset=True, exclude_none=True)
            if "resource_policy" in changes:
                await self._check_policy(s, changes["resource_policy"])
            for key, value in changes.items():
                setattr(kp, key, value)
            await s.flush()
            return KeypairInfo.of(kp, user.email, True)

    async def delete(self, actor: Actor, access_key: str) -> None:
        access.require_admin(actor)
        async with self.ctx.db.begin() as s:
            kp, user = await self._get(s, actor, access_key)
            access.check_may_modify_user(actor, user.role, user.domain_name)
            if kp.has_ever_run_session:
                raise Conflict("This keypair has created sessions; deactivate it instead.")
            others = (await s.execute(select(func.count()).select_from(Keypair).where(
                Keypair.user_id == user.uuid, Keypair.access_key != access_key))).scalar_one()
            if others == 0:
                raise Conflict("This is the user's only keypair; deactivate it instead.")
            await s.delete(kp)

    async def main_access_keys(self, user_ids: builtins.list[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Each user's main (default) keypair.  No authorization: callers list users they may see."""
        if not user_ids:
            return {}
        async with self.ctx.db() as s:
            rows = await s.execute(select(Keypair.user_id, Keypair.access_key).where(
                Keypair.user_id.in_(user_ids), Keypair.is_default.is_(True)))
        return {uid: ak for uid, ak in rows}
