"""System settings stored in the database (they override the config file's defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from workbay.manager.models import SystemSetting

from .access import Actor, require_superadmin
from .context import ServiceContext


class SettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signup_enabled: bool | None = None  # left out: unchanged; null is refused (it is on or off)
    signup_invitation_token: str | None = None  # null: no token needed

    @field_validator("signup_enabled")
    @classmethod
    def _on_or_off(cls, v: bool | None) -> bool:
        if v is None:
            raise ValueError("signup_enabled is true or false, not null")
        return v


@dataclass(frozen=True)
class SystemSettings:
    signup_enabled: bool
    signup_invitation_token: str | None  # None or "": anyone may sign up (while sign-up is enabled)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class SettingsService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def current(self) -> SystemSettings:
        m = self.ctx.config.manager
        values: dict[str, Any] = {"signup_enabled": m.signup_enabled,
                                  "signup_invitation_token": m.signup_invitation_token}
        async with self.ctx.db() as s:
            for row in (await s.execute(SystemSetting.__table__.select())).all():
                # rows are written by update() only (SettingsPatch names every key); one this version
                # does not know (left by a newer one) does not apply here
                if row.key in values:
                    values[row.key] = row.value
        return SystemSettings(**values)

    async def get(self, actor: Actor) -> SystemSettings:
        require_superadmin(actor)
        return await self.current()

    async def update(self, actor: Actor, patch: SettingsPatch) -> SystemSettings:
        require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            for key, value in patch.model_dump(exclude_unset=True).items():
                row = await s.get(SystemSetting, key)
                if row is None:
                    s.add(SystemSetting(key=key, value=value))
                else:
                    row.value = value
        return await self.current()
