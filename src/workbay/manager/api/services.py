"""/services: model services (docs/serving.md "API").

Backend.AI's wire (../shared/docs/backendai-api.md §2.7: ``endpoint_id``, ``desired_session_count``,
``service_endpoint``, ``is_public``, ``active_routes``) with Workbay's keys beside them in the same
objects (Backend.AI's clients ignore them), and Workbay's own routes (tokens, autoscaling rules,
logs, runtimes, edit).  Each route reads its request (pydantic), calls ``ServingService`` and writes
the typed answer; the ``response_model`` of each documents it in /openapi.json."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from workbay.common.errors import BackendError
from workbay.common.http import loads_object, validation_error
from workbay.manager.services.access import Actor
from workbay.manager.services.serving_info import ACTIVE_ROUTE_STATUSES, ErrorInfo, ServiceInfo
from workbay.manager.services.serving_request import (
    CreateService,
    NewRule,
    RuleFields,
    ScaleRequest,
    TokenRequest,
    TrafficRequest,
    UpdateService,
)
from workbay.manager.services.session_request import FIELD_ERRORS
from workbay.manager.serving.runtimes import variant_defaults
from workbay.manager.state import ManagerState

from .deps import actor, state
from .session_wire import inline_body_schema, spell_error, wire_path
from .wire import Number, WireModel, body_schema

router = APIRouter(tags=["services"])
M = TypeVar("M", bound=BaseModel)
JSON = dict[str, Any]


# -- response models ---------------------------------------------------------------------------------
class ServiceItemOut(WireModel):
    """Backend.AI's service object; Workbay's keys (``status``, ``owner_email``, ``model_folder``, …) beside."""

    id: str
    name: str
    desired_session_count: int
    active_route_count: int
    service_endpoint: str | None
    is_public: bool
    status: str
    status_info: str | None
    owner_email: str | None
    project: dict[str, Any]
    model_folder: dict[str, Any]
    image: str
    runtime_variant: str
    healthy_route_count: int
    created_at: str | None
    allowed_actions: list[str]


class ActiveRouteOut(WireModel):
    route_id: str
    session_id: str | None
    traffic_ratio: Number


class RouteOut(ActiveRouteOut):
    session_name: str | None
    status: str
    status_info: str | None
    generation: int
    requests: int
    errors: int
    p50_ms: Number


class StatsOut(WireModel):
    rps: Number
    in_flight: int
    requests: int
    errors: int
    p50_ms: Number
    p95_ms: Number


class ServiceDetailOut(ServiceItemOut):
    endpoint_id: str
    active_routes: list[ActiveRouteOut]
    routes: list[RouteOut]
    stats: StatsOut
    config: dict[str, Any]
    error_count: int
    retries: int
    generation: int


class CreatedServiceOut(WireModel):
    endpoint_id: str


class SuccessOut(WireModel):
    success: bool


class ScaleOut(WireModel):
    current_route_count: int
    target_count: int


class TokenOut(WireModel):
    token: str
    token_id: str
    expires_at: str | None


class TokenItemOut(WireModel):
    id: str
    token: str
    created_at: str | None
    expires_at: str | None
    status: str


class TokenListOut(WireModel):
    items: list[TokenItemOut]


class ErrorItemOut(WireModel):
    session_id: str | None
    error: str
    route_id: str | None
    log_tail: str
    created_at: str | None


class ErrorsOut(WireModel):
    errors: list[ErrorItemOut]
    retries: int


class RuleOut(WireModel):
    id: str
    metric_source: str
    metric_name: str
    comparator: str
    threshold: str
    step_size: int
    cooldown_seconds: int
    min_replicas: int | None
    max_replicas: int | None
    last_triggered_at: str | None
    created_at: str | None


class RuleListOut(WireModel):
    items: list[RuleOut]


class ServiceLogsOut(WireModel):
    logs: str
    kernel_id: str | None


class RuntimesOut(WireModel):
    runtimes: list[dict[str, Any]]


# -- converters --------------------------------------------------------------------------------------
def item_wire(i: ServiceInfo) -> JSON:
    r = i.row
    return {"id": str(r.id), "name": r.name, "desired_session_count": r.desired_replicas,
            "active_route_count": i.active_route_count, "service_endpoint": r.url or None,
            "is_public": r.open_to_public} | i.as_json()


def detail_wire(i: ServiceInfo) -> JSON:
    active = [{"route_id": str(x.id), "session_id": str(x.session_id) if x.session_id else None,
               "traffic_ratio": x.traffic_ratio} for x in i.routes if x.status in ACTIVE_ROUTE_STATUSES]
    return {"endpoint_id": str(i.id), **item_wire(i), "active_routes": active} | i.detail_json()


def error_wire(e: ErrorInfo) -> JSON:
    return {"session_id": str(e.session_id) if e.session_id else None, "error": e.message,
            "route_id": str(e.route_id) if e.route_id else None, "log_tail": e.log_tail,
            "created_at": e.created_at.isoformat() if e.created_at else None}


# -- reading requests ----------------------------------------------------------------------------------
async def _raw(request: Request) -> JSON:
    raw: JSON = dict(request.query_params)
    body = await request.body()
    if body:
        raw.update(loads_object(body))
    return raw


def _read(model: type[M], raw: JSON) -> M:
    """``raw`` read into ``model``; a 400 whose ``field_errors`` use the request's spelling."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = validation_error(list(e.errors()))
        data = err.data if isinstance(err.data, dict) else {}
        err.extra[FIELD_ERRORS] = {wire_path(model, k, raw): v for k, v in data.items() if k != "_"}
        raise err from e


async def _params(request: Request, model: type[M]) -> M:
    return _read(model, await _raw(request))


# -- routes ----------------------------------------------------------------------------------------------
@router.get("/services", response_model=list[ServiceItemOut])
async def list_services(name: str | None = None, status: str | None = None, project: str | None = None,
                        all: bool = False, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    """The caller's services (``all``: every owner's, for admins), newest first."""
    found = await st.serving.list(who, name=name, status=status, project=project, all_users=all)
    return JSONResponse([item_wire(i) for i in found])


@router.post("/services", response_model=CreatedServiceOut, openapi_extra=inline_body_schema(CreateService, True))
async def create_service(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    raw = await _raw(request)
    req = _read(CreateService, raw)
    try:
        sid = await st.serving.create(who, req)
    except BackendError as err:
        raise spell_error(err, CreateService, raw) from None
    return JSONResponse({"endpoint_id": str(sid)})


@router.get("/services/_/runtimes", response_model=RuntimesOut)
async def runtimes(who: Actor = Depends(actor)) -> Response:
    """Workbay: the runtime variants and their defaults (start command, port, health path)."""
    return JSONResponse({"runtimes": variant_defaults()})


@router.get("/services/{service_id}", response_model=ServiceDetailOut)
async def service_info(service_id: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    return JSONResponse(detail_wire(await st.serving.info(who, service_id)))


@router.patch("/services/{service_id}", response_model=ServiceDetailOut,
              openapi_extra=inline_body_schema(UpdateService, True))
async def update_service(service_id: str, request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> Response:
    """Workbay: any create field; a change of what replicas run with rolls them over."""
    raw = await _raw(request)
    patch = _read(UpdateService, raw)
    try:
        info = await st.serving.update(who, service_id, patch)
    except BackendError as err:
        raise spell_error(err, CreateService, raw) from None
    return JSONResponse(detail_wire(info))


@router.delete("/services/{service_id}", response_model=SuccessOut)
async def delete_service(service_id: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.serving.delete(who, service_id)
    return JSONResponse({"success": True})


@router.post("/services/{service_id}/sync", response_model=SuccessOut)
async def sync_service(service_id: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.serving.sync(who, service_id)
    return JSONResponse({"success": True})


@router.post("/services/{service_id}/scale", response_model=ScaleOut, openapi_extra=body_schema(ScaleRequest, True))
async def scale_service(service_id: str, request: Request, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> Response:
    req = await _params(request, ScaleRequest)
    result = await st.serving.scale(who, service_id, req.to)
    return JSONResponse({"current_route_count": result.current_route_count, "target_count": result.target_count})


@router.post("/services/{service_id}/token", response_model=TokenOut, openapi_extra=body_schema(TokenRequest))
async def issue_token(service_id: str, request: Request, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> Response:
    """A token for the endpoint (``Authorization: BackendAI <token>``); 24 h unless told."""
    t = await st.serving.issue_token(who, service_id, await _params(request, TokenRequest))
    return JSONResponse({"token": t.token, "token_id": str(t.id), "expires_at": t.expires_at.isoformat()})


@router.get("/services/{service_id}/tokens", response_model=TokenListOut)
async def list_tokens(service_id: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    return JSONResponse({"items": [t.as_json() for t in await st.serving.tokens(who, service_id)]})


@router.delete("/services/{service_id}/tokens/{token_id}", status_code=204, response_class=Response)
async def revoke_token(service_id: str, token_id: str, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> Response:
    await st.serving.revoke_token(who, service_id, token_id)
    return Response(status_code=204)


@router.put("/services/{service_id}/routings/{route_id}", response_model=SuccessOut,
            openapi_extra=body_schema(TrafficRequest, True))
async def set_traffic_ratio(service_id: str, route_id: str, request: Request, who: Actor = Depends(actor),
                            st: ManagerState = Depends(state)) -> Response:
    req = await _params(request, TrafficRequest)
    await st.serving.set_traffic_ratio(who, service_id, route_id, req.traffic_ratio)
    return JSONResponse({"success": True})


@router.delete("/services/{service_id}/routings/{route_id}", response_model=SuccessOut)
async def remove_route(service_id: str, route_id: str, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> Response:
    await st.serving.remove_route(who, service_id, route_id)
    return JSONResponse({"success": True})


@router.get("/services/{service_id}/errors", response_model=ErrorsOut)
async def list_errors(service_id: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    found = await st.serving.errors(who, service_id)
    return JSONResponse({"errors": [error_wire(e) for e in found.errors], "retries": found.retries})


@router.post("/services/{service_id}/errors/clear", status_code=204, response_class=Response)
async def clear_errors(service_id: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    """Forget the failures and the backoff: a new replica starts at the next pass."""
    await st.serving.clear_errors(who, service_id)
    return Response(status_code=204)


@router.get("/services/{service_id}/auto-scaling-rules", response_model=RuleListOut)
async def list_rules(service_id: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    return JSONResponse({"items": [r.as_json() for r in await st.serving.rules(who, service_id)]})


@router.post("/services/{service_id}/auto-scaling-rules", status_code=201, response_model=RuleOut,
             openapi_extra=body_schema(NewRule, True))
async def create_rule(service_id: str, request: Request, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> Response:
    rule = await st.serving.create_rule(who, service_id, await _params(request, NewRule))
    return JSONResponse(rule.as_json(), status_code=201)


@router.patch("/services/{service_id}/auto-scaling-rules/{rule_id}", response_model=RuleOut,
              openapi_extra=body_schema(RuleFields, True))
async def update_rule(service_id: str, rule_id: str, request: Request, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> Response:
    rule = await st.serving.update_rule(who, service_id, rule_id, await _params(request, RuleFields))
    return JSONResponse(rule.as_json())


@router.delete("/services/{service_id}/auto-scaling-rules/{rule_id}", status_code=204, response_class=Response)
async def delete_rule(service_id: str, rule_id: str, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> Response:
    await st.serving.delete_rule(who, service_id, rule_id)
    return Response(status_code=204)


@router.get("/services/{service_id}/logs", response_model=ServiceLogsOut)
async def service_logs(service_id: str, route: str | None = None, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> Response:
    """Workbay: the container log of replica ``route``, else of the newest one."""
    logs = await st.serving.logs(who, service_id, route)
    return JSONResponse({"logs": logs.logs, "kernel_id": str(logs.kernel_id) if logs.kernel_id else None})
