"""What clients send about model services (docs/serving.md "API"): Backend.AI's ``POST /services``
body (its aliases, nulls meaning "default") read into Workbay's names, and the small requests of
the other routes.  Pure: no I/O; each rule's ValueError says what is wrong."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from workbay.common.domain import ClusterMode, RuntimeVariant
from workbay.common.text import check_multiline, check_name, check_text

from .session_request import MAX_LIST, ShortText, check_callback_url, check_environ

SERVICE_NAME_MIN = 4
SERVICE_NAME_MAX = 24
_SERVICE_NAME_RE = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
SERVICE_NAME_RULE = f"{SERVICE_NAME_MIN} to {SERVICE_NAME_MAX} characters: ASCII letters, digits, '-' and '_'"
MAX_REPLICAS = 1000  # a sanity bound above any policy (the owner's policy is checked too)

DEFAULT_TOKEN_LIFETIME = timedelta(hours=24)
MAX_TOKEN_LIFETIME = timedelta(days=366)
_DURATION_RE = re.compile(r"^\s*(\d{1,9})\s*([smhdw]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

METRIC_SOURCES = ("kernel", "inference-framework", "endpoint")
COMPARATORS = ("lt", "le", "gt", "ge")
# Backend.AI's spellings and the symbols, as the WebUI and the official client send them.
_COMPARATOR_SPELLINGS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "less_than": "lt",
                         "less_than_or_equal": "le", "greater_than": "gt", "greater_than_or_equal": "ge"}
MAX_METRIC_NAME = 256
MAX_COOLDOWN = 7 * 86400


def service_name_problem(name: str) -> str | None:
    """None when ``name`` is a valid service name (it is the endpoint URL's path), else why not."""
    if not SERVICE_NAME_MIN <= len(name) <= SERVICE_NAME_MAX or not _SERVICE_NAME_RE.fullmatch(name):
        return f"A service name has {SERVICE_NAME_RULE}."
    return None


def _service_name(v: str) -> str:
    problem = service_name_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _mount_destination(v: str) -> str:
    check_name(v)
    if not v.startswith("/") or "\x00" in v or ".." in v.split("/"):
        raise ValueError("an absolute path in the container, without '..'")
    return v


def _extra_mounts(v: dict[str, str] | None) -> dict[str, str] | None:
    if v is None:
        return v
    if len(v) > MAX_LIST:
        raise ValueError(f"at most {MAX_LIST} folders")
    for folder, dest in v.items():
        check_name(folder)
        if dest:
            check_name(dest)
    return v


def _drop_nulls(v: Any) -> Any:
    """Backend.AI's clients send null for "the default": a null field is a field not sent."""
    return {k: val for k, val in v.items() if val is not None} if isinstance(v, dict) else v


ServiceName = Annotated[str, AfterValidator(_service_name)]
Environ = Annotated[dict[str, str], AfterValidator(check_environ)]
MountDestination = Annotated[str, Field(max_length=256), AfterValidator(_mount_destination)]
ExtraMounts = Annotated[dict[str, str] | None, AfterValidator(_extra_mounts)]
Tag = Annotated[str, Field(max_length=256), AfterValidator(check_text)]
Command = Annotated[str, Field(max_length=64 * 1024), AfterValidator(check_multiline)]
CallbackURL = Annotated[str, AfterValidator(check_callback_url)]


class ServiceConfig(BaseModel):
    """``config`` of ``POST /services``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    model: ShortText = Field(min_length=1, description="the model folder: id or name (usage mode `model`)")
    model_version: int | str | None = Field(None, description="Backend.AI's; Workbay keeps one version")
    model_mount_destination: MountDestination = Field("/models", validation_alias=AliasChoices(
        "model_mount_destination", "modelMountDestination"))
    model_definition_path: Annotated[str, Field(max_length=512), AfterValidator(check_name)] | None = Field(
        None, validation_alias=AliasChoices("model_definition_path", "modelDefinitionPath"))
    environ: Environ = Field(default_factory=dict)
    resource_group: ShortText | None = Field(None, validation_alias=AliasChoices(
        "scaling_group", "scalingGroup", "resource_group"))
    resources: dict[str, Any] | None = Field(None, max_length=32)
    resource_opts: dict[str, Any] = Field(default_factory=dict, max_length=32, validation_alias=AliasChoices(
        "resource_opts", "resourceOpts"))
    extra_mounts: ExtraMounts = Field(None, validation_alias=AliasChoices("extra_mounts", "extraMounts"),
                                      description="Workbay: {folder id or name: destination ('' = /home/work/NAME)}")

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, v: Any) -> Any:
        return _drop_nulls(v)


class CreateService(BaseModel):
    """``POST /services`` in Workbay's names (aliases: what Backend.AI's clients send)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: ServiceName = Field(validation_alias=AliasChoices("name", "service_name", "clientSessionToken"))
    desired_replicas: int = Field(1, ge=0, le=MAX_REPLICAS, validation_alias=AliasChoices(
        "desired_session_count", "desiredSessionCount", "desired_replicas", "replicas"))
    image: ShortText = Field(min_length=1, validation_alias=AliasChoices("image", "lang"))
    architecture: ShortText | None = Field(None, validation_alias=AliasChoices("arch", "architecture"))
    project: ShortText | None = Field(None, validation_alias=AliasChoices("group", "groupName", "group_name", "project"))
    domain: ShortText | None = Field(None, validation_alias=AliasChoices("domain", "domainName", "domain_name"))
    cluster_size: int = Field(1, ge=1, le=64, validation_alias=AliasChoices("cluster_size", "clusterSize"))
    cluster_mode: ClusterMode = Field(ClusterMode.SINGLE_NODE,
                                      validation_alias=AliasChoices("cluster_mode", "clusterMode"))
    tag: Tag | None = None
    startup_command: Command | None = Field(None, validation_alias=AliasChoices("startup_command", "startupCommand"))
    bootstrap_script: Annotated[str, Field(max_length=1024 * 1024)] | None = Field(
        None, validation_alias=AliasChoices("bootstrap_script", "bootstrapScript"))
    callback_url: CallbackURL | None = Field(None, validation_alias=AliasChoices(
        "callback_url", "callbackUrl", "callbackURL"))
    owner_access_key: ShortText | None = Field(None, validation_alias=AliasChoices(
        "owner_access_key", "ownerAccessKey"))
    open_to_public: bool = Field(False, validation_alias=AliasChoices("open_to_public", "openToPublic"))
    runtime_variant: RuntimeVariant = Field(RuntimeVariant.CUSTOM, validation_alias=AliasChoices(
        "runtime_variant", "runtimeVariant"))
    config: ServiceConfig

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, v: Any) -> Any:
        return _drop_nulls(v)


class ServiceConfigPatch(BaseModel):
    """``config`` of ``PATCH /services/{id}``: the fields sent change, the others stay."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    model: ShortText | None = Field(None, min_length=1)
    model_mount_destination: MountDestination | None = Field(None, validation_alias=AliasChoices(
        "model_mount_destination", "modelMountDestination"))
    model_definition_path: Annotated[str, Field(max_length=512), AfterValidator(check_name)] | None = Field(
        None, validation_alias=AliasChoices("model_definition_path", "modelDefinitionPath"))
    environ: Environ | None = None
    resource_group: ShortText | None = Field(None, validation_alias=AliasChoices(
        "scaling_group", "scalingGroup", "resource_group"))
    resources: dict[str, Any] | None = Field(None, max_length=32)
    resource_opts: dict[str, Any] | None = Field(None, max_length=32, validation_alias=AliasChoices(
        "resource_opts", "resourceOpts"))
    extra_mounts: ExtraMounts = Field(None, validation_alias=AliasChoices("extra_mounts", "extraMounts"))


class UpdateService(BaseModel):
    """``PATCH /services/{id}`` (Workbay): any field of the create body; unsent (or null) = unchanged."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: ServiceName | None = Field(None, validation_alias=AliasChoices("name", "service_name"))
    desired_replicas: int | None = Field(None, ge=0, le=MAX_REPLICAS, validation_alias=AliasChoices(
        "desired_session_count", "desiredSessionCount", "desired_replicas", "replicas"))
    image: ShortText | None = Field(None, min_length=1)
    architecture: ShortText | None = Field(None, validation_alias=AliasChoices("arch", "architecture"))
    cluster_size: int | None = Field(None, ge=1, le=64, validation_alias=AliasChoices("cluster_size", "clusterSize"))
    cluster_mode: ClusterMode | None = Field(None, validation_alias=AliasChoices("cluster_mode", "clusterMode"))
    tag: Tag | None = None
    startup_command: Command | None = Field(None, validation_alias=AliasChoices("startup_command", "startupCommand"))
    bootstrap_script: Annotated[str, Field(max_length=1024 * 1024)] | None = Field(
        None, validation_alias=AliasChoices("bootstrap_script", "bootstrapScript"))
    callback_url: CallbackURL | None = Field(None, validation_alias=AliasChoices(
        "callback_url", "callbackUrl", "callbackURL"))
    open_to_public: bool | None = Field(None, validation_alias=AliasChoices("open_to_public", "openToPublic"))
    runtime_variant: RuntimeVariant | None = Field(None, validation_alias=AliasChoices(
        "runtime_variant", "runtimeVariant"))
    config: ServiceConfigPatch = Field(default_factory=ServiceConfigPatch)

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, v: Any) -> Any:
        return _drop_nulls(v)


class ScaleRequest(BaseModel):
    to: int = Field(ge=0, le=MAX_REPLICAS)


class TrafficRequest(BaseModel):
    traffic_ratio: float = Field(ge=0, le=100, validation_alias=AliasChoices("traffic_ratio", "trafficRatio"))


def parse_duration(text: str) -> timedelta:
    """"90" / "90s", "30m", "1h", "2d", "1w": a positive duration."""
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError("a duration like 30m, 1h or 2d")
    seconds = int(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError("a duration above zero")
    return timedelta(seconds=seconds)


class TokenRequest(BaseModel):
    """``POST /services/{id}/token``: ``duration`` or ``valid_until`` (unix seconds); 24 h by default."""

    duration: Annotated[str, Field(max_length=32)] | None = None
    valid_until: int | float | None = Field(None, validation_alias=AliasChoices("valid_until", "validUntil"))

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    def expires_at(self, now: datetime | None = None) -> datetime:
        """When the token expires; ValueError names the field when that is not in (now, now + a year]."""
        now = now or datetime.now(UTC)
        if self.valid_until is not None:
            try:
                until = datetime.fromtimestamp(float(self.valid_until), UTC)
            except (OverflowError, OSError, ValueError) as e:
                raise ValueError("valid_until: not a unix time") from e
            field = "valid_until"
        else:
            until = now + (parse_duration(self.duration) if self.duration else DEFAULT_TOKEN_LIFETIME)
            field = "duration"
        if until <= now:
            raise ValueError(f"{field}: the token would already be expired")
        if until - now > MAX_TOKEN_LIFETIME:
            raise ValueError(f"{field}: a token is valid for at most {MAX_TOKEN_LIFETIME.days} days")
        return until


def normalize_comparator(v: str) -> str:
    key = v.strip().lower()
    key = _COMPARATOR_SPELLINGS.get(key, key)
    if key not in COMPARATORS:
        raise ValueError(f"one of {', '.join(COMPARATORS)} (or <, <=, >, >=)")
    return key


def _threshold(v: Any) -> str:
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation as e:
        raise ValueError("a decimal number") from e
    if not d.is_finite() or len(str(v)) > 64:
        raise ValueError("a finite decimal number (at most 64 characters)")
    return str(d)


def _metric_name(v: str) -> str:
    check_name(v)
    if not v.strip():
        raise ValueError("must not be empty")
    return v


class RuleFields(BaseModel):
    """An autoscaling rule's fields; every field optional (PATCH), ``NewRule`` requires them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    metric_source: str | None = Field(None, validation_alias=AliasChoices("metric_source", "metricSource"))
    metric_name: Annotated[str, Field(min_length=1, max_length=MAX_METRIC_NAME),
                           AfterValidator(_metric_name)] | None = Field(
        None, validation_alias=AliasChoices("metric_name", "metricName"))
    comparator: Annotated[str, Field(max_length=32), AfterValidator(normalize_comparator)] | None = None
    threshold: Annotated[Any, AfterValidator(_threshold)] | None = None
    step_size: int | None = Field(None, ge=-MAX_REPLICAS, le=MAX_REPLICAS,
                                  validation_alias=AliasChoices("step_size", "stepSize"))
    cooldown_seconds: int | None = Field(None, ge=0, le=MAX_COOLDOWN, validation_alias=AliasChoices(
        "cooldown_seconds", "cooldownSeconds", "cooldown"))
    min_replicas: int | None = Field(None, ge=0, le=MAX_REPLICAS, validation_alias=AliasChoices(
        "min_replicas", "minReplicas"))
    max_replicas: int | None = Field(None, ge=0, le=MAX_REPLICAS, validation_alias=AliasChoices(
        "max_replicas", "maxReplicas"))

    @field_validator("metric_source")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        if v is None:
            return v
        key = v.strip().lower().replace("_", "-")
        if key not in METRIC_SOURCES:
            raise ValueError(f"one of {', '.join(METRIC_SOURCES)}")
        return key

    @field_validator("step_size")
    @classmethod
    def _step(cls, v: int | None) -> int | None:
        if v == 0:
            raise ValueError("must not be 0 (> 0 scales up, < 0 scales down)")
        return v


class NewRule(RuleFields):
    metric_source: str = Field(validation_alias=AliasChoices("metric_source", "metricSource"))
    metric_name: Annotated[str, Field(min_length=1, max_length=MAX_METRIC_NAME), AfterValidator(_metric_name)] = Field(
        validation_alias=AliasChoices("metric_name", "metricName"))
    comparator: Annotated[str, Field(max_length=32), AfterValidator(normalize_comparator)]
    threshold: Annotated[Any, AfterValidator(_threshold)]
    step_size: int = Field(ge=-MAX_REPLICAS, le=MAX_REPLICAS, validation_alias=AliasChoices("step_size", "stepSize"))
    cooldown_seconds: int = Field(300, ge=0, le=MAX_COOLDOWN, validation_alias=AliasChoices(
        "cooldown_seconds", "cooldownSeconds", "cooldown"))


def rule_bounds_problem(min_replicas: int | None, max_replicas: int | None, limit: int) -> tuple[str, str] | None:
    """(field, message) when 0 ≤ min ≤ max ≤ the owner's per-service limit does not hold."""
    if min_replicas is not None and min_replicas > limit:
        return "min_replicas", f"min_replicas is at most max_session_count_per_model_session ({limit})"
    if max_replicas is not None and max_replicas > limit:
        return "max_replicas", f"max_replicas is at most max_session_count_per_model_session ({limit})"
    if min_replicas is not None and max_replicas is not None and min_replicas > max_replicas:
        return "min_replicas", "min_replicas must not exceed max_replicas"
    return None
