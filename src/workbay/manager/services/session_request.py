"""POST /session: the request as Backend.AI clients send it (aliases, nulls meaning "default")."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

SESSION_NAME_RE = re.compile(r"^\w[\w.-]*\w$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

LIVE_STATUSES = ("PENDING", "SCHEDULED", "PREPARING", "PULLING", "RUNNING", "RESTARTING",
                 "RUNNING_DEGRADED", "TERMINATING")
DEAD_STATUSES = ("TERMINATED", "ERROR", "CANCELLED")


def valid_session_name(name: str) -> bool:
    return 4 <= len(name) <= 64 and bool(SESSION_NAME_RE.match(name))


def parse_starts_at(value: str, now: datetime | None = None) -> datetime:
    """An ISO datetime, or a relative duration ("30", "10m", "1h", "2d") from now."""
    now = now or datetime.now(timezone.utc)
    m = _DURATION_RE.match(value)
    if m:
        return now + timedelta(seconds=int(m.group(1)) * _DURATION_UNITS[m.group(2)])
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class SessionConfig(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    mounts: list[str] | None = None
    mount_map: dict[str, str] | None = Field(None, validation_alias=AliasChoices("mount_map", "mountMap"))
    environ: dict[str, str] | None = None
    resources: dict[str, Any] | None = None
    resource_opts: dict[str, Any] | None = Field(None, validation_alias=AliasChoices("resource_opts", "resourceOpts"))
    scaling_group: str | None = Field(None, validation_alias=AliasChoices("scalingGroup", "scaling_group"))
    preopen_ports: list[int] | None = Field(None, validation_alias=AliasChoices("preopen_ports", "preopenPorts"))
    agent_list: list[str] | None = Field(None, validation_alias=AliasChoices("agentList", "agent_list"))

    @field_validator("preopen_ports")
    @classmethod
    def _ports(cls, v):
        for p in v or []:
            if not 1024 <= p <= 65535:
                raise ValueError("ports must be between 1024 and 65535")
        return v


class CreateSession(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    image: str = Field(validation_alias=AliasChoices("image", "lang"), min_length=1, max_length=512)
    name: str | None = Field(None, validation_alias=AliasChoices("name", "session_name", "clientSessionToken"))
    # "system" (SFTP / file-browser sessions) is created by the manager only, never by clients.
    type: Literal["interactive", "batch", "inference", "system"] = Field(
        "interactive", validation_alias=AliasChoices("type", "sessionType", "session_type"))
    group: str | None = Field(None, validation_alias=AliasChoices("group", "groupName", "group_name"))
    domain: str | None = Field(None, validation_alias=AliasChoices("domain", "domainName", "domain_name"))
    architecture: str | None = Field(None, validation_alias=AliasChoices("architecture", "arch"))
    cluster_size: int = Field(1, ge=1, le=64, validation_alias=AliasChoices("clusterSize", "cluster_size"))
    cluster_mode: Literal["single-node", "multi-node"] = Field(
        "single-node", validation_alias=AliasChoices("clusterMode", "cluster_mode"))
    config: SessionConfig = SessionConfig()
    tag: str | None = Field(None, max_length=256)
    enqueue_only: bool = Field(False, validation_alias=AliasChoices("enqueueOnly", "enqueue_only"))
    max_wait_seconds: int = Field(0, ge=0, le=86400, validation_alias=AliasChoices("maxWaitSeconds", "max_wait_seconds"))
    starts_at: str | None = Field(None, validation_alias=AliasChoices("starts_at", "startsAt"))
    reuse_if_exists: bool = Field(True, validation_alias=AliasChoices("reuseIfExists", "reuse_if_exists"))
    startup_command: str | None = Field(None, validation_alias=AliasChoices("startupCommand", "startup_command"))
    bootstrap_script: str | None = Field(None, validation_alias=AliasChoices("bootstrap_script", "bootstrapScript"))
    dependencies: list[str] | None = None
    callback_url: str | None = Field(None, validation_alias=AliasChoices("callback_url", "callbackUrl", "callbackURL"))
    owner_access_key: str | None = None
    batch_timeout: int | None = Field(None, ge=1, le=2**31 - 1,
                                      validation_alias=AliasChoices("batchTimeout", "batch_timeout"))
    count: int = Field(1, ge=1, le=100, description="Workbay: N identical sessions (names get -1, -2, …)")

    @field_validator("config", mode="before")
    @classmethod
    def _null_config(cls, v):
        return v if v is not None else {}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not valid_session_name(v):
            raise ValueError("4–64 characters of letters, digits, '_', '-' and '.', "
                             "starting and ending with a letter or digit")
        return v

    @model_validator(mode="after")
    def _rules(self) -> "CreateSession":
        if self.type == "batch" and not (self.startup_command or "").strip():
            raise ValueError("startupCommand is required for batch sessions")
        if self.starts_at and self.type != "batch":
            raise ValueError("starts_at is only for batch sessions")
        if self.starts_at:
            try:
                parse_starts_at(self.starts_at)
            except ValueError as e:
                raise ValueError("starts_at must be an ISO datetime or a duration like 10m, 1h") from e
        return self

    def session_names(self, default: str) -> list[str]:
        base = self.name or default
        return [base] if self.count == 1 else [f"{base}-{i}" for i in range(1, self.count + 1)]


def default_session_name() -> str:
    return f"sess-{uuid.uuid4().hex[:8]}"
