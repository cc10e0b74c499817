"""GET /events/session: session lifecycle events as SSE (docs/backendai-api.md §2.6)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from sse_starlette.sse import EventSourceResponse

from workbay.manager.services.access import Actor
from workbay.manager.state import ManagerState

from .deps import actor, state

router = APIRouter(tags=["sessions"])
# Backend.AI's SSE data keys (in this order) for the event bus's keys (services/session_status.session_event).
WIRE_KEYS = {"reason": "reason", "sessionName": "session_name", "ownerAccessKey": "access_key",
             "sessionId": "session_id", "exitCode": "exit_code", "kernelId": "kernel_id", "clusterRole": "cluster_role",
             "clusterIdx": "cluster_idx"}


def wire_event(ev: dict[str, Any]) -> dict[str, Any]:
    """The SSE data of one session or kernel event."""
    return {wire: ev.get(key) for wire, key in WIRE_KEYS.items() if key in ev}


def _matches(ev: dict[str, Any], who: Actor, session_id: str | None, name: str, owner: str | None,
             scope: str) -> bool:
    kind = str(ev.get("name", ""))
    if not (kind.startswith("session_") or kind.startswith("kernel_")):
        return False
    if scope != "*" and not kind.startswith(scope + "_"):
        return False
    if session_id and ev.get("session_id") != session_id:
        return False
    if name != "*" and ev.get("session_name") != name:
        return False
    if owner and ev.get("access_key") != owner:
        return False
    if ev.get("user_id") == str(who.user_id) or ev.get("access_key") == who.access_key:
        return True
    return who.is_superadmin or (who.role in ("admin", "monitor") and bool(owner))


SSE_ANSWER: dict[int | str, dict[str, Any]] = {200: {
    "description": "Server-sent events: `event` is the event's name (session_enqueued, session_started, "
                   "kernel_terminated, …), `data` a JSON object of reason, sessionName, ownerAccessKey, sessionId, "
                   "exitCode and, for kernel events, kernelId, clusterRole, clusterIdx.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


@router.get("/events/session", response_class=EventSourceResponse, responses=SSE_ANSWER)
async def session_events(request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> EventSourceResponse:
    q = request.query_params
    session_id = q.get("sessionId") or q.get("session_id")
    name = q.get("name") or q.get("sessionName") or "*"
    owner = q.get("ownerAccessKey") or q.get("owner_access_key")
    scope = q.get("scope") or "*"

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with st.ctx.events.subscribe() as events:
            while not await request.is_disconnected():
                try:
                    ev = await asyncio.wait_for(events.get(), 15)
                except TimeoutError:
                    continue
                if _matches(ev, who, session_id, name, owner, scope):
                    yield {"event": ev["name"], "data": json.dumps(wire_event(ev))}

    return EventSourceResponse(stream(), ping=15)
