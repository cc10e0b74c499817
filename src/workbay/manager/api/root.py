from __future__ import annotations

from fastapi import APIRouter, Depends

from workbay import API_VERSION, __version__
from workbay.manager.state import ManagerState

from .deps import state

router = APIRouter(tags=["root"])


@router.get("/")
async def root() -> dict:
    return {"version": API_VERSION, "manager": __version__}


@router.get("/manager/announcement")
async def announcement(st: ManagerState = Depends(state)) -> dict:
    message = st.ctx.config.manager.announcement
    return {"enabled": bool(message), "message": message}


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok", "component": "manager"}
