"""POST /session: the request as Backend.AI clients send it (aliases, nulls meaning "default"), read
into Workbay's names (``project``, ``config.resource_group``); and how a check names the request
field it refuses (``field_problem``: docs/api.md "For the WebUI")."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from workbay.common.domain import ClusterMode, SessionType, session_name_problem
from workbay.common.errors import BackendError
from workbay.common.text import check_multiline, check_name, check_text

_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# A batch session may be reserved at most this far ahead (docs/api.md "Bounds"): far enough for
# any plan ("2099-01-01" included), near enough that the arithmetic cannot overflow.
MAX_START_DELAY = timedelta(days=36525)
_START_DELAY_TEXT = "100 years"

# Environment variables (docs/api.md "Bounds"): the agent's name rule; the platform's own names
# are refused -- the agent would override them anyway, and a user must not believe otherwise.
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_ENV_VARS = 256
MAX_ENV_NAME = 256
MAX_ENV_VALUE = 32 * 1024
RESERVED_ENV_PREFIXES = ("BACKENDAI_", "WORKBAY_", "NVIDIA_")
RESERVED_ENV_SUFFIXES = ("_VISIBLE_DEVICES",)
RESERVED_ENV_NAMES = frozenset({"LOCAL_USER_ID", "LOCAL_GROUP_ID", "HOME", "USER", "LOGNAME", "SHELL",
                                "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"})
MAX_URL = 2048
MAX_LIST = 64  # mounts, dependencies, agents, preopen ports of one request

FIELD_ERRORS = "field_errors"  # the problem's extension member


def field_problem(err: BackendError, path: str) -> BackendError:
    """Mark ``err`` as caused by the request field ``path`` (Workbay's dotted path in
    ``CreateSession``, e.g. ``config.resources.cpu``; the API spells it as the client did)."""
    err.extra.setdefault(FIELD_ERRORS, {})[path] = err.msg or err.title
    return err


@contextmanager
def about(path: str) -> Iterator[None]:
    """Errors raised inside name the request field ``path`` (unless they already name one)."""
    try:
        yield
    except BackendError as err:
        if FIELD_ERRORS not in err.extra:
            field_problem(err, path)
        raise


def parse_starts_at(value: str, now: datetime | None = None) -> datetime:
    """An ISO datetime, or a relative duration ("30", "10m", "1h", "2d") from now; at most
    ``MAX_START_DELAY`` ahead.  Raises ValueError saying what is wrong."""
    now = now or datetime.now(UTC)
    if len(value) > 64:
        raise ValueError("starts_at must be an ISO datetime or a duration like 10m, 1h")
    m = _DURATION_RE.match(value)
    if m:
        seconds = int(m.group(1)) * _DURATION_UNITS[m.group(2)]
        if seconds > MAX_START_DELAY.total_seconds():
            raise ValueError(f"starts_at is at most {_START_DELAY_TEXT} ahead")
        return now + timedelta(seconds=seconds)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as e:
        raise ValueError("starts_at must be an ISO datetime or a duration like 10m, 1h") from e
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    try:
        if dt - now > MAX_START_DELAY:
            raise ValueError(f"starts_at is at most {_START_DELAY_TEXT} ahead")
    except OverflowError as e:
        raise ValueError(f"starts_at is at most {_START_DELAY_TEXT} ahead") from e
    return dt


def check_environ(env: dict[str, str]) -> dict[str, str]:
    """The user's environment variables: the agent's name rule, no control characters but tab in
    values, none of the platform's own names, bounded sizes."""
    if len(env) > MAX_ENV_VARS:
        raise ValueError(f"at most {MAX_ENV_VARS} variables")
    for name, value in env.items():
        shown = name[:40] + ("…" if len(name) > 40 else "")
        if len(name) > MAX_ENV_NAME or not ENV_NAME_RE.match(name):
            raise ValueError(f"{shown!r}: a variable name is letters, digits and '_', not starting with a digit "
                             f"(at most {MAX_ENV_NAME} characters)")
        upper = name.upper()
        if (upper in RESERVED_ENV_NAMES or upper.startswith(RESERVED_ENV_PREFIXES)
                or upper.endswith(RESERVED_ENV_SUFFIXES)):
            raise ValueError(f"{name}: reserved for the platform (BACKENDAI_*, WORKBAY_*, NVIDIA_*, "
                             f"*_VISIBLE_DEVICES, {', '.join(sorted(RESERVED_ENV_NAMES))})")
        if len(value) > MAX_ENV_VALUE:
            raise ValueError(f"{name}: a value is at most {MAX_ENV_VALUE} characters")
        try:
            check_text(value)
        except ValueError as e:
            raise ValueError(f"{name}: the value {e}") from None
    return env


def check_callback_url(url: str) -> str:
    """An http(s) URL with a host, not a loopback / link-local / unspecified address literal
    (Workbay calls it; it must not be pointed at the platform's own services)."""
    if len(url) > MAX_URL:
        raise ValueError(f"at most {MAX_URL} characters")
    check_text(url, allow="")
    if any(ch.isspace() for ch in url):
        raise ValueError("must not contain spaces")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as e:
        raise ValueError(f"not a URL: {e}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not host:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise ValueError("must not point at this machine (localhost)")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return url
    if addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast or (
            isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None
            and (addr.ipv4_mapped.is_loopback or addr.ipv4_mapped.is_unspecified)):
        raise ValueError(f"must not point at a loopback, link-local, multicast or unspecified address ({host})")
    return url


def _list_of_names(v: list[str] | None) -> list[str] | None:
    if v is None:
        return v
    if len(v) > MAX_LIST:
        raise ValueError(f"at most {MAX_LIST} entries")
    for item in v:
        check_name(item)
    return v


NameList = Annotated[list[Annotated[str, Field(max_length=512)]] | None, AfterValidator(_list_of_names)]
ShortText = Annotated[str, Field(max_length=512), AfterValidator(check_name)]


class SessionConfig(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    mounts: NameList = None
    mount_map: dict[ShortText, ShortText] | None = Field(
        None, max_length=MAX_LIST, validation_alias=AliasChoices("mount_map", "mountMap"))
    environ: Annotated[dict[str, str] | None, AfterValidator(lambda v: v if v is None else check_environ(v))] = None
    resources: dict[str, Any] | None = Field(None, max_length=32)
    resource_opts: dict[str, Any] | None = Field(None, max_length=32,
                                                 validation_alias=AliasChoices("resource_opts", "resourceOpts"))
    resource_group: ShortText | None = Field(None, validation_alias=AliasChoices("scalingGroup", "scaling_group"))
    preopen_ports: list[int] | None = Field(None, max_length=MAX_LIST,
                                            validation_alias=AliasChoices("preopen_ports", "preopenPorts"))
    agent_list: NameList = Field(None, validation_alias=AliasChoices("agentList", "agent_list"))

    @field_validator("preopen_ports")
    @classmethod
    def _ports(cls, v: list[int] | None) -> list[int] | None:
        for p in v or []:
            if not 1024 <= p <= 65535:
                raise ValueError("ports must be between 1024 and 65535")
        return v


class CreateSession(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    image: ShortText = Field(validation_alias=AliasChoices("image", "lang"), min_length=1)
    # No length bound here: the name rule's own message says the bounds (4–64).
    name: str | None = Field(None, validation_alias=AliasChoices("name", "session_name", "clientSessionToken"))
    # "system" (SFTP / file-browser sessions) is created by the manager only, never by clients.
    type: SessionType = Field(SessionType.INTERACTIVE,
                              validation_alias=AliasChoices("type", "sessionType", "session_type"))
    project: ShortText | None = Field(None, validation_alias=AliasChoices("group", "groupName", "group_name"))
    domain: ShortText | None = Field(None, validation_alias=AliasChoices("domain", "domainName", "domain_name"))
    architecture: ShortText | None = Field(None, validation_alias=AliasChoices("architecture", "arch"))
    cluster_size: int = Field(1, ge=1, le=64, validation_alias=AliasChoices("clusterSize", "cluster_size"))
    cluster_mode: ClusterMode = Field(ClusterMode.SINGLE_NODE,
                                      validation_alias=AliasChoices("clusterMode", "cluster_mode"))
    config: SessionConfig = SessionConfig()
    tag: Annotated[str, AfterValidator(check_text)] | None = Field(None, max_length=256)
    enqueue_only: bool = Field(False, validation_alias=AliasChoices("enqueueOnly", "enqueue_only"))
    max_wait_seconds: int = Field(0, ge=0, le=86400, validation_alias=AliasChoices("maxWaitSeconds", "max_wait_seconds"))
    starts_at: str | None = Field(None, max_length=64, validate_default=True,
                                  validation_alias=AliasChoices("starts_at", "startsAt"))
    reuse_if_exists: bool = Field(True, validation_alias=AliasChoices("reuseIfExists", "reuse_if_exists"))
    startup_command: Annotated[str, AfterValidator(check_multiline)] | None = Field(
        None, max_length=64 * 1024, validate_default=True,
        validation_alias=AliasChoices("startupCommand", "startup_command"))
    bootstrap_script: str | None = Field(None, max_length=1024 * 1024,
                                         validation_alias=AliasChoices("bootstrap_script", "bootstrapScript"))
    dependencies: NameList = None
    callback_url: Annotated[str, AfterValidator(check_callback_url)] | None = Field(
        None, validation_alias=AliasChoices("callback_url", "callbackUrl", "callbackURL"))
    owner_access_key: ShortText | None = None
    batch_timeout: int | None = Field(None, ge=1, le=2**31 - 1,
                                      validation_alias=AliasChoices("batchTimeout", "batch_timeout"))
    count: int = Field(1, ge=1, le=100, description="Workbay: N identical sessions (names get -1, -2, …)")

    @field_validator("config", mode="before")
    @classmethod
    def _null_config(cls, v: Any) -> Any:
        return v if v is not None else {}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        problem = session_name_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    # The rules between fields are field validators (not one model validator) so that each
    # error names its field; ``type`` is declared before both, so it is in ``info.data``.
    @field_validator("startup_command")
    @classmethod
    def _batch_command(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") == SessionType.BATCH and not (v or "").strip():
            raise ValueError("startupCommand is required for batch sessions")
        return v

    @field_validator("starts_at")
    @classmethod
    def _starts_at(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v and info.data.get("type") != SessionType.BATCH:
            raise ValueError("starts_at is only for batch sessions")
        if v:
            parse_starts_at(v)  # its ValueError says what is wrong
        return v

    def session_names(self, default: str) -> list[str]:
        base = self.name or default
        return [base] if self.count == 1 else [f"{base}-{i}" for i in range(1, self.count + 1)]


def default_session_name() -> str:
    return f"sess-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ReplicaLaunch:
    """What makes an inference session a model service's replica (docs/serving.md, "The replica"):
    set by the serving reconciler and the validate dry run, never by a client.  ``model_service``
    is stored in ``sessions.model_service`` and reaches the runner through ``kernel.json``; the
    folders in ``read_only_folders`` (the model folder) are mounted read-only whatever the
    owner's permission on them."""

    model_service: dict[str, Any]
    read_only_folders: frozenset[uuid.UUID] = frozenset()
