"""GET /events/session: session lifecycle events as SSE (docs/backendai-api.md §2.6)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from sse_starlette.sse import EventSourceResponse

from workbay.manager.services.access import Actor
from workbay.manager.state import ManagerState

from .deps import actor, state

router = APIRouter(tags=["sessions"])
WIRE_KEYS = ("reason", "sessionName", "ownerAccessKey", "sessionId", "exitCode", "kernelId", "clusterRole",
             "clusterIdx")


def _matches(ev: dict[str, Any], who: Actor, session_id: str | None, name: str, owner: str | None,
             scope: str) -> bool:
    kind = str(ev.get("name", ""))
    if not (kind.startswith("session_") or kind.startswith("kernel_")):
        return False
    if scope != "*" and not kind.startswith(scope + "_"):
        return False
    if session_id and ev.get("sessionId") != session_id:
        return False
    if name != "*" and ev.get("sessionName") != name:
        return False
    if owner and ev.get("ownerAccessKey") != owner:
        return False
    if ev.get("user_id") == str(who.user_id) or ev.get("ownerAccessKey") == who.access_key:
        return True
    return who.is_superadmin or (who.role in ("admin", "monitor") and bool(owner))


@router.get("/events/session")
async def session_events(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)):
    q = request.query_params
    session_id = q.get("sessionId") or q.get("session_id")
    name = q.get("name") or q.get("sessionName") or "*"
    owner = q.get("ownerAccessKey") or q.get("owner_access_key")
    scope = q.get("scope") or "*"

    async def stream():
        async with st.ctx.events.subscribe() as events:
            while not await request.is_disconnected():
                try:
                    ev = await asyncio.wait_for(events.get(), 15)
                except TimeoutError:
                    continue
                if _matches(ev, who, session_id, name, owner, scope):
                    yield {"event": ev["name"], "data": json.dumps({k: ev.get(k) for k in WIRE_KEYS if k in ev})}

    return EventSourceResponse(stream(), ping=15)
