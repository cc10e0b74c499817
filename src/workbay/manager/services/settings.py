"""System settings stored in the database (they override the config file's defaults)."""

from __future__ import annotations

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


class SettingsService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def _defaults(self) -> dict[str, Any]:
        m = self.ctx.config.manager
        return {"signup_enabled": m.signup_enabled,
                "signup_invitation_token": m.signup_invitation_token}

    async def current(self) -> dict[str, Any]:
        values = self._defaults()
        async with self.ctx.db() as s:
            for row in (await s.execute(SystemSetting.__table__.select())).all():
                if row.key in values:
                    values[row.key] = row.value
        return values

    async def get(self, actor: Actor) -> dict[str, Any]:
        require_superadmin(actor)
        return await self.current()

    async def update(self, actor: Actor, patch: SettingsPatch) -> dict[str, Any]:
        require_superadmin(actor)
        async with self.ctx.db.begin() as s:
            for key, value in patch.model_dump(exclude_unset=True).items():
                row = await s.get(SystemSetting, key)
                if row is None:
                    s.add(SystemSetting(key=key, value=value))
                else:
                    row.value = value
        return await self.current()
