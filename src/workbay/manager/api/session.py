"""/session (Backend.AI) and /sessions (Workbay's list).

Each route reads the request (pydantic), calls a session service and writes its typed answer in
the wire format (``session_wire``).  Answers are sent as built (``JSONResponse``) so that their
bytes stay what Backend.AI's clients and the conformance tests know; the ``response_model`` of
each route documents them in /openapi.json."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from workbay.common.errors import BackendError
from workbay.common.http import json_body, loads_object, request_params, validation_error
from workbay.manager.services.access import Actor
from workbay.manager.services.session_apps import StartService
from workbay.manager.services.session_request import FIELD_ERRORS, CreateSession
from workbay.manager.state import ManagerState

from .deps import actor, state
from .session_wire import (
    AppOut,
    CreatedSessionOut,
    ExecuteOut,
    LogsOut,
    SessionCountsOut,
    SessionDetailOut,
    SessionListOut,
    StartedServiceOut,
    StatusHistoryOut,
    TerminationOut,
    ValidOut,
    counts_wire,
    created_wire,
    history_wire,
    info_wire,
    inline_body_schema,
    logs_wire,
    page_wire,
    spell_error,
    termination_wire,
    wire_path,
)
from .wire import body_schema

router = APIRouter(tags=["sessions"])
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
# A 4xx of POST /session and its dry run: problem details, with ``field_errors`` where a field caused it.
CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Refused; `field_errors` maps the request's fields (as sent) to what is wrong.", **PROBLEM},
    403: {"description": "Not allowed (e.g. choosing agents, a project the user is not in).", **PROBLEM},
    404: {"description": "No such image, project, folder or session to depend on.", **PROBLEM},
}
CREATE_BODY = inline_body_schema(CreateSession, required=True)


async def _create_request(request: Request) -> tuple[CreateSession, dict[str, Any]]:
    """The POST /session body (JSON body, else query) read into ``CreateSession``, and the raw
    request, whose spelling ``field_errors`` keeps."""
    raw: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body:
        raw.update(loads_object(body))
    try:
        return CreateSession.model_validate(raw), raw
    except ValidationError as e:
        err = validation_error(list(e.errors()))
        data = err.data if isinstance(err.data, dict) else {}
        err.extra[FIELD_ERRORS] = {wire_path(CreateSession, k, raw): v for k, v in data.items() if k != "_"}
        raise err from e


@router.post("/session", status_code=201, response_model=CreatedSessionOut, responses=CREATE_ERRORS,
             openapi_extra=CREATE_BODY)
async def create_session(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    """Backend.AI's create: returns once the session runs or ends, unless ``enqueueOnly``."""
    req, raw = await _create_request(request)
    try:
        created = await st.sessions.create(who, req)
    except BackendError as err:
        raise spell_error(err, CreateSession, raw) from None
    return JSONResponse(created_wire(created), status_code=201)


@router.post("/session/_/validate", response_model=ValidOut, responses=CREATE_ERRORS, openapi_extra=CREATE_BODY)
async def validate_session(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    """Every check of POST /session, nothing created: ``{"ok": true}`` or the error creation would give."""
    req, raw = await _create_request(request)
    try:
        await st.sessions.validate(who, req)
    except BackendError as err:
        raise spell_error(err, CreateSession, raw) from None
    return JSONResponse({"ok": True})


@router.get("/sessions", response_model=SessionListOut)
async def list_sessions(status: str | None = None, type: str | None = None, access_key: str | None = None,
                        project_id: uuid.UUID | None = None, owner: str | None = None, q: str | None = None,
                        all: bool = False, limit: int = Query(50, ge=1, le=1000),
                        offset: int = Query(0, ge=0, le=2**31 - 1), sort: str | None = None,
                        who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    page = await st.sessions.list(who, status=status, session_type=type, access_key=access_key,
                                  project_id=project_id, owner_email=owner, search=q, all_users=all,
                                  limit=limit, offset=offset, sort=sort)
    return JSONResponse(page_wire(page))


@router.get("/sessions/counts", response_model=SessionCountsOut)
async def session_counts(access_key: str | None = None, project_id: uuid.UUID | None = None,
                         owner: str | None = None, q: str | None = None, all: bool = False,
                         who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    """How many sessions each tab of the Sessions page holds (one query)."""
    return JSONResponse(counts_wire(await st.sessions.counts(
        who, access_key=access_key, project_id=project_id, owner_email=owner, search=q, all_users=all)))


class OwnerParams(BaseModel):
    owner_access_key: str | None = None
    forced: bool = False
    recursive: bool = False
    kernel_id: str | None = None


@router.get("/session/{name}", response_model=SessionDetailOut)
async def session_info(name: str, request: Request, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> Response:
    params = await request_params(request, OwnerParams)
    return JSONResponse(info_wire(await st.sessions.info(who, name, params.owner_access_key)))


@router.delete("/session/{name}", response_model=TerminationOut)
async def destroy_session(name: str, request: Request, who: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> Response:
    params = await request_params(request, OwnerParams)
    ended = await st.sessions.destroy(who, name, forced=params.forced, owner_access_key=params.owner_access_key)
    return JSONResponse(termination_wire(ended))


@router.patch("/session/{name}", status_code=204, response_class=Response)
async def restart_session(name: str, request: Request, who: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> Response:
    params = await request_params(request, OwnerParams)
    await st.sessions.restart(who, name, params.owner_access_key)
    return Response(status_code=204)


@router.post("/session/{name}", response_model=ExecuteOut)
async def execute(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    return JSONResponse(await st.sessions.execute(who, name, await json_body(request)))


@router.post("/session/{name}/interrupt", status_code=204, response_class=Response)
async def interrupt(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.sessions.interrupt(who, name)
    return Response(status_code=204)


@router.get("/session/{name}/logs", response_model=LogsOut)
async def logs(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    params = await request_params(request, OwnerParams)
    return JSONResponse(logs_wire(await st.sessions.logs(who, name, params.owner_access_key, params.kernel_id)))


class SessionRenameParams(BaseModel):
    name: str


@router.post("/session/{name}/rename", status_code=204, response_class=Response,
             openapi_extra=body_schema(SessionRenameParams))
async def rename(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    params = await request_params(request, SessionRenameParams)
    await st.sessions.rename(who, name, params.name)
    return Response(status_code=204)


@router.get("/session/{name}/status-history", response_model=StatusHistoryOut)
async def status_history(name: str, request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> Response:
    params = await request_params(request, OwnerParams)
    return JSONResponse(history_wire(await st.sessions.status_history(who, name, params.owner_access_key)))


@router.post("/session/{name}/start-service", response_model=StartedServiceOut,
             openapi_extra=inline_body_schema(StartService, required=True))
async def start_service(name: str, request: Request, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> Response:
    """Start an app in the session and open a circuit to it on the app-proxy."""
    return JSONResponse(await st.apps.start(who, name, await request_params(request, StartService)))


@router.get("/stream/session/{name}/apps", response_model=list[AppOut])
async def apps(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    return JSONResponse(await st.apps.apps(who, name))


class SessionDownloadParams(BaseModel):
    files: list[str] = []


class SingleParams(BaseModel):
    file: str


@router.get("/session/{name}/download", response_class=Response,
            responses={200: {"description": "One tar archive per path", "content": {"multipart/mixed": {}}}})
async def download(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    """Backend.AI's download: multipart/mixed, one tar archive per path (≤ 5)."""
    params = await request_params(request, SessionDownloadParams)
    body, ctype = await st.session_files.download(who, name, params.files)
    return Response(body, media_type=ctype)


@router.get("/session/{name}/download_single", response_class=Response,
            responses={200: {"description": "The file's bytes", "content": {"application/octet-stream": {}}}})
async def download_single(name: str, request: Request, who: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> Response:
    """One file's bytes (the SSH dialog's id_container, `workbay session download`)."""
    params = await request_params(request, SingleParams)
    filename, data = await st.session_files.download_single(who, name, params.file)
    quoted = filename.replace('"', "")
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{quoted}"'})
