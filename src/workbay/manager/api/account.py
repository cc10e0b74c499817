"""The caller's own account: /user/me, preferences, and the notification stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from sse_starlette.sse import EventSourceResponse

from workbay.common.http import json_body
from workbay.manager.services.access import Actor
from workbay.manager.state import ManagerState

from .deps import actor, state

router = APIRouter(tags=["account"])


@router.get("/user/me")
async def me(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.auth.me(who)


@router.get("/user/preferences")
async def get_preferences(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.auth.preferences(who)


@router.patch("/user/preferences")
async def patch_preferences(request: Request, who: Actor = Depends(actor),
                            st: ManagerState = Depends(state)) -> dict:
    return await st.auth.update_preferences(who, await json_body(request))


def _addressed_to(event: dict[str, Any], who: Actor) -> bool:
    target = event.get("user_id")
    return target is None or target == str(who.user_id)


@router.get("/events/notifications")
async def notifications(request: Request, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> EventSourceResponse:
    async def stream():
        async with st.ctx.events.subscribe() as events:
            yield {"event": "hello", "data": json.dumps({"user": who.email})}
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(events.get(), timeout=15)
                except TimeoutError:
                    continue
                if _addressed_to(event, who):
                    yield {"event": event.get("name", "message"), "data": json.dumps(event, default=str)}

    return EventSourceResponse(stream(), ping=15)
