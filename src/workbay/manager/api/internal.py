"""/internal/agents/*: heartbeats and kernel events from agents (cluster secret, not user keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel

from workbay.manager.services.agent_registry import Heartbeat, check_cluster_secret
from workbay.manager.state import ManagerState

from .deps import state

router = APIRouter(prefix="/internal/agents", tags=["internal"], include_in_schema=False)


class EventBatch(BaseModel):
    agent_id: str
    events: list[dict[str, Any]]


@router.post("/heartbeat")
async def heartbeat(body: Heartbeat, x_workbay_secret: str | None = Header(None),
                    st: ManagerState = Depends(state)) -> dict:
    check_cluster_secret(st.ctx.config.secrets.cluster, x_workbay_secret)
    result = await st.agents.heartbeat(body)
    await st.reconciler.on_heartbeat(body)
    st.dispatcher.wake()
    return result


@router.post("/events")
async def events(body: EventBatch, x_workbay_secret: str | None = Header(None),
                 st: ManagerState = Depends(state)) -> dict:
    check_cluster_secret(st.ctx.config.secrets.cluster, x_workbay_secret)
    await st.lifecycle.apply(body.agent_id, body.events)
    st.dispatcher.wake()
    return {"ok": True}
