"""The root (API version), the announcement and the health check."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from workbay import API_VERSION, __version__
from workbay.manager.state import ManagerState

from .deps import state
from .wire import WireModel, WireRoute

router = APIRouter(tags=["root"], route_class=WireRoute)


class Versions(WireModel):
    version: str  # Backend.AI's API version
    manager: str


class Announcement(WireModel):
    enabled: bool
    message: str | None


class Health(WireModel):
    status: str
    component: str


@router.get("/", response_model=Versions)
async def root() -> dict:
    return {"version": API_VERSION, "manager": __version__}


@router.get("/manager/announcement", response_model=Announcement)
async def announcement(st: ManagerState = Depends(state)) -> dict:
    message = st.ctx.config.manager.announcement
    return {"enabled": bool(message), "message": message}


@router.get("/healthz", response_model=Health)
async def healthz() -> dict:
    return {"status": "ok", "component": "manager"}
