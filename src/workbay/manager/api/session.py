"""/session (Backend.AI) and /sessions (Workbay's list)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from workbay.common.http import json_body, request_params
from workbay.manager.services.access import Actor
from workbay.manager.services.session_apps import StartService
from workbay.manager.services.session_request import CreateSession
from workbay.manager.state import ManagerState

from .deps import actor, state

router = APIRouter(tags=["sessions"])


@router.post("/session", status_code=201)
async def create_session(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    body = await request_params(request, CreateSession)
    return await st.sessions.create(who, body)


@router.get("/sessions")
async def list_sessions(status: str | None = None, type: str | None = None, access_key: str | None = None,
                        project_id: uuid.UUID | None = None, owner: str | None = None, q: str | None = None,
                        all: bool = False, limit: int = Query(50, ge=1, le=1000),
                        offset: int = Query(0, ge=0, le=2**31 - 1), sort: str | None = None,
                        who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.sessions.list(who, status=status, session_type=type, access_key=access_key,
                                  project_id=project_id, owner_email=owner, search=q, all_users=all,
                                  limit=limit, offset=offset, sort=sort)


@router.get("/sessions/counts")
async def session_counts(access_key: str | None = None, project_id: uuid.UUID | None = None,
                         owner: str | None = None, q: str | None = None, all: bool = False,
                         who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    """How many sessions each tab of the Sessions page holds (one query)."""
    return await st.sessions.counts(who, access_key=access_key, project_id=project_id, owner_email=owner,
                                    search=q, all_users=all)


class OwnerParams(BaseModel):
    owner_access_key: str | None = None
    forced: bool = False
    recursive: bool = False
    kernel_id: str | None = None


@router.get("/session/{name}")
async def session_info(name: str, request: Request, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> dict:
    params = await request_params(request, OwnerParams)
    return await st.sessions.info(who, name, params.owner_access_key)


@router.delete("/session/{name}")
async def destroy_session(name: str, request: Request, who: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> dict:
    params = await request_params(request, OwnerParams)
    return await st.sessions.destroy(who, name, forced=params.forced, owner_access_key=params.owner_access_key)


@router.patch("/session/{name}", status_code=204)
async def restart_session(name: str, request: Request, who: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> Response:
    params = await request_params(request, OwnerParams)
    await st.sessions.restart(who, name, params.owner_access_key)
    return Response(status_code=204)


@router.post("/session/{name}")
async def execute(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.sessions.execute(who, name, await json_body(request))


@router.post("/session/{name}/interrupt", status_code=204)
async def interrupt(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.sessions.interrupt(who, name)
    return Response(status_code=204)


@router.get("/session/{name}/logs")
async def logs(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    params = await request_params(request, OwnerParams)
    return await st.sessions.logs(who, name, params.owner_access_key, params.kernel_id)


class RenameParams(BaseModel):
    name: str


@router.post("/session/{name}/rename", status_code=204)
async def rename(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    params = await request_params(request, RenameParams)
    await st.sessions.rename(who, name, params.name)
    return Response(status_code=204)


@router.get("/session/{name}/status-history")
async def status_history(name: str, request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> dict:
    params = await request_params(request, OwnerParams)
    return await st.sessions.status_history(who, name, params.owner_access_key)


@router.post("/session/{name}/start-service")
async def start_service(name: str, request: Request, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    """Start an app in the session and open a circuit to it on the app-proxy."""
    return await st.apps.start(who, name, await request_params(request, StartService))


@router.get("/stream/session/{name}/apps")
async def apps(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> list:
    return await st.apps.apps(who, name)


class DownloadParams(BaseModel):
    files: list[str] = []


class SingleParams(BaseModel):
    file: str


@router.get("/session/{name}/download")
async def download(name: str, request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    """Backend.AI's download: multipart/mixed, one tar archive per path (≤ 5)."""
    params = await request_params(request, DownloadParams)
    body, ctype = await st.session_files.download(who, name, params.files)
    return Response(body, media_type=ctype)


@router.get("/session/{name}/download_single")
async def download_single(name: str, request: Request, who: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> Response:
    """One file's bytes (the SSH dialog's id_container, `workbay session download`)."""
    params = await request_params(request, SingleParams)
    filename, data = await st.session_files.download_single(who, name, params.file)
    quoted = filename.replace('"', "")
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{quoted}"'})
