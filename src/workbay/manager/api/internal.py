"""/internal/agents/*: heartbeats and kernel events from agents (cluster secret, not user keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from workbay.common.http import request_params
from workbay.manager.services.agent_registry import Heartbeat, check_cluster_secret
from workbay.manager.state import ManagerState

from .deps import state

router = APIRouter(prefix="/internal/agents", tags=["internal"], include_in_schema=False)


class EventBatch(BaseModel):
    agent_id: str
    events: list[dict[str, Any]]


def _authenticated(request: Request, st: ManagerState) -> None:
    """The secret is checked before the body is even parsed: strangers learn nothing."""
    check_cluster_secret(st.ctx.config.secrets.cluster, request.headers.get("x-workbay-secret"))


@router.post("/heartbeat")
async def heartbeat(request: Request, st: ManagerState = Depends(state)) -> dict[str, Any]:
    _authenticated(request, st)
    body = await request_params(request, Heartbeat)
    result = await st.agents.heartbeat(body)
    await st.reconciler.on_heartbeat(body)
    st.dispatcher.wake()
    return result


@router.post("/events")
async def events(request: Request, st: ManagerState = Depends(state)) -> dict[str, bool]:
    _authenticated(request, st)
    body = await request_params(request, EventBatch)
    await st.lifecycle.apply(body.agent_id, body.events)
    st.dispatcher.wake()
    return {"ok": True}
