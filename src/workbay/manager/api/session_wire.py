"""The session services' typed answers in Backend.AI's wire format (``sessionId``, ``servicePorts``,
the camelCase block of ``GET /session/{name}``), the pydantic models that document
them in /openapi.json, and the request-field spelling of ``field_errors`` (docs/api.md "For the WebUI").

Converters build plain dicts in the order the API has always answered (clients and the
conformance tests compare them), and the routes declare the models below as their responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, Field

from workbay.common.errors import BackendError
from workbay.manager.services.serialize import iso
from workbay.manager.services.session_info import (
    CreatedSession,
    KernelLogs,
    SessionCounts,
    SessionInfo,
    SessionPage,
    StatusHistory,
    Termination,
)
from workbay.manager.services.session_request import FIELD_ERRORS

from .wire import WireModel

JSON = dict[str, Any]
# Error ``data`` keys the services write in Workbay's names, as Backend.AI's clients read them.
DATA_WIRE = {"resource_group": "scaling_group", "existing_session_id": "existingSessionId"}


# -- converters --------------------------------------------------------------------------------------
def service_ports_wire(ports: list[JSON]) -> list[JSON]:
    """Backend.AI's servicePorts: container ports under ``ports``."""
    return [{"name": p.get("name"), "protocol": p.get("protocol"),
             "ports": p.get("container_ports") or p.get("ports") or []} for p in ports or []]


def created_wire(c: CreatedSession) -> JSON:
    if not c.created:  # a live session of that name reused
        return {"sessionId": str(c.id), "sessionName": c.name, "status": c.status, "created": False,
                "servicePorts": service_ports_wire(c.service_ports)}
    out: JSON = {"sessionId": str(c.id), "sessionName": c.name, "status": c.status,
                 "servicePorts": service_ports_wire(c.service_ports), "created": True}
    if c.siblings:
        out["sessions"] = [{"sessionId": str(i), "sessionName": n} for i, n in c.siblings]
    if c.waited:
        out["statusInfo"] = c.status_info
    return out


def session_wire(info: SessionInfo) -> JSON:
    """Workbay's session object (``GET /sessions`` items), in Workbay's names."""
    return info.as_json()


def info_wire(info: SessionInfo) -> JSON:
    """``GET /session/{name}``: the session object plus Backend.AI's camelCase fields."""
    out = session_wire(info)
    actions = out.pop("allowed_actions")
    main = info.main_kernel
    now = datetime.now(info.created_at.tzinfo)
    age = ((info.terminated_at or now) - info.created_at).total_seconds()
    out.update({
        "domainName": info.domain_name, "groupId": str(info.project_id), "userId": str(info.user_id),
        "lang": info.image, "image": info.image, "architecture": info.architecture,
        "registry": info.image.split("/")[0] if "/" in info.image else "",
        "tag": info.tag, "containerId": main.container_id if main else None,
        "occupiedSlots": info.occupying_slots, "occupyingSlots": info.occupying_slots,
        "requestedSlots": info.requested_slots, "occupiedShares": {}, "environ": info.environ,
        "resourceOpts": info.resource_opts, "status": info.status, "statusInfo": info.status_info,
        "statusData": info.status_data, "age": int(age * 1000), "creationTime": iso(info.created_at),
        "terminationTime": iso(info.terminated_at), "numQueriesExecuted": info.num_queries,
        "lastStat": main.last_stat if main else {}, "idleChecks": {},
    })
    out["allowed_actions"] = actions
    return out


def page_wire(page: SessionPage) -> JSON:
    return {"items": [session_wire(i) for i in page.items], "total_count": page.total_count}


def counts_wire(c: SessionCounts) -> JSON:
    return {"total": c.total, "status_groups": c.status_groups, "live_by_type": c.live_by_type}


def history_wire(h: StatusHistory) -> JSON:
    return {"session_id": str(h.session_id), "result": h.history, "scheduling": h.scheduling}


def termination_wire(t: Termination) -> JSON:
    return {"stats": {"status": "terminated" if t.ended else t.status.lower(), "session_status": t.status}}


def logs_wire(logs: KernelLogs) -> JSON:
    return {"result": {"logs": logs.logs, "kernel_id": str(logs.kernel_id) if logs.kernel_id else None}}


# -- field errors in the client's spelling -------------------------------------------------------------
def _spellings(model: type[BaseModel], name: str) -> list[str]:
    alias = model.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)] or [name]
    return [alias] if isinstance(alias, str) else [name]


def wire_path(model: type[BaseModel], path: str, raw: Any) -> str:
    """``path`` (dotted, Workbay's field names, e.g. ``config.resource_group``) spelled as the
    request ``raw`` spelled it (``config.scalingGroup``), or by the field's first alias when the
    request did not send it.  Segments that are not fields (dict keys, aliases) stay as they are."""
    out: list[str] = []
    node: Any = raw
    current: type[BaseModel] | None = model
    for part in path.split("."):
        spelled = part
        nested: type[BaseModel] | None = None
        if current is not None and part in current.model_fields:
            choices = _spellings(current, part)
            sent = [c for c in choices if isinstance(node, dict) and c in node]
            spelled = sent[0] if sent else choices[0]
            annotation = current.model_fields[part].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                nested = annotation
        out.append(spelled)
        node = node.get(spelled) if isinstance(node, dict) else None
        current = nested
    return ".".join(out)


def spell_error(err: BackendError, model: type[BaseModel], raw: Any) -> BackendError:
    """An error of a session service as the client reads it: ``field_errors`` keyed by the
    request's own spelling, ``data`` keys in Backend.AI's names."""
    fields = err.extra.get(FIELD_ERRORS)
    if isinstance(fields, dict):
        err.extra[FIELD_ERRORS] = {wire_path(model, str(k), raw): v for k, v in fields.items()}
    if isinstance(err.data, dict):
        err.data = {DATA_WIRE.get(k, k): v for k, v in err.data.items()}
    return err


# -- request and response models (documentation in /openapi.json; schemathesis checks answers) ---------
def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def inline_body_schema(model: type[BaseModel], required: bool = False) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON body of a route that reads its body itself;
    nested models are inlined (pydantic's ``#/$defs/…`` references mean nothing in an OpenAPI document)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": required, "content": {
        "application/json": {"schema": _inline(schema, schema.get("$defs", {}))}}}}


class ServicePortOut(WireModel):
    name: str | None
    protocol: str | None
    ports: list[int]


class SessionRef(WireModel):
    sessionId: str  # noqa: N815 - Backend.AI's wire names
    sessionName: str  # noqa: N815


class CreatedSessionOut(SessionRef):
    """``status`` is TIMEOUT when ``maxWaitSeconds`` passed first; ``sessions`` lists a ``count`` request's sessions."""
    status: str
    servicePorts: list[ServicePortOut]  # noqa: N815
    created: bool
    sessions: list[SessionRef] | None = None
    statusInfo: str | None = None  # noqa: N815


class MountOut(WireModel):
    folder_id: str | None
    name: str | None
    target: str | None
    read_only: bool


class KernelOut(WireModel):
    id: str
    cluster_role: str
    cluster_idx: int
    cluster_hostname: str
    agent_id: str | None
    container_id: str | None
    status: str
    status_info: str | None
    occupied_slots: dict[str, Any]
    service_ports: list[dict[str, Any]]
    exit_code: int | None
    last_stat: dict[str, Any] | None
    created_at: str | None
    started_at: str | None
    terminated_at: str | None


class ServiceRefOut(WireModel):
    id: str
    name: str


class SessionOut(WireModel):
    """A session; ``allowed_actions`` is what the caller may do with it (docs/api.md "For the WebUI")."""
    id: str
    name: str
    type: str
    status: str
    status_info: str | None
    status_data: dict[str, Any] | None
    status_history: list[Any]
    image: str
    architecture: str
    access_key: str
    user_id: str
    project_id: str
    domain_name: str
    resource_group: str
    cluster_mode: str
    cluster_size: int
    requested_slots: dict[str, Any] | None
    occupying_slots: dict[str, Any] | None
    resource_opts: dict[str, Any] | None
    environ: dict[str, Any] | None
    preopen_ports: list[int] | None
    startup_command: str | None
    starts_at: str | None
    batch_timeout: int | None
    tag: str | None
    result: str | None
    exit_code: int | None
    scheduling_attempts: int | None
    created_at: str | None
    scheduled_at: str | None
    started_at: str | None
    terminated_at: str | None
    mounts: list[MountOut]
    kernels: list[KernelOut]
    service_ports: list[dict[str, Any]]
    last_stat: dict[str, Any] | None
    agents: list[str]
    owner_email: str | None
    model_service: ServiceRefOut | None = Field(description="the model service a replica session serves")
    allowed_actions: list[str]


class SessionDetailOut(SessionOut):
    """``GET /session/{name}``: the session and Backend.AI's camelCase fields."""
    domainName: str  # noqa: N815
    groupId: str  # noqa: N815
    userId: str  # noqa: N815
    lang: str
    registry: str
    containerId: str | None  # noqa: N815
    occupiedSlots: dict[str, Any] | None  # noqa: N815
    occupyingSlots: dict[str, Any] | None  # noqa: N815
    requestedSlots: dict[str, Any] | None  # noqa: N815
    occupiedShares: dict[str, Any]  # noqa: N815
    resourceOpts: dict[str, Any] | None  # noqa: N815
    statusInfo: str | None  # noqa: N815
    statusData: dict[str, Any] | None  # noqa: N815
    age: int
    creationTime: str | None  # noqa: N815
    terminationTime: str | None  # noqa: N815
    numQueriesExecuted: int | None  # noqa: N815
    lastStat: dict[str, Any] | None  # noqa: N815
    idleChecks: dict[str, Any]  # noqa: N815


class SessionListOut(WireModel):
    items: list[SessionOut]
    total_count: int


class SessionCountsOut(WireModel):
    total: int
    status_groups: dict[str, int]
    live_by_type: dict[str, int]


class StatusEntry(WireModel):
    status: str
    timestamp: str
    reason: str | None


class StatusHistoryOut(WireModel):
    session_id: str
    result: list[StatusEntry]
    scheduling: dict[str, Any]


class TerminationStats(WireModel):
    status: str
    session_status: str


class TerminationOut(WireModel):
    stats: TerminationStats


class LogsResult(WireModel):
    logs: str
    kernel_id: str | None


class LogsOut(WireModel):
    result: LogsResult


class ExecuteOut(WireModel):
    """The code runner's answer (Backend.AI's execute protocol)."""
    result: dict[str, Any]


class AppOut(WireModel):
    name: str | None
    protocol: str | None
    ports: list[int]


class StartedServiceOut(WireModel):
    """Where the opened app is (docs/api.md "Apps in sessions")."""
    token: str | None = None
    wsproxy_addr: str | None = None


class ValidOut(WireModel):
    ok: bool
