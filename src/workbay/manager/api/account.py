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

from .admin import UserOut
from .deps import actor, state
from .wire import WireModel, WireRoute, body_schema, event_stream

router = APIRouter(tags=["account"], route_class=WireRoute)


class OwnKeypair(WireModel):
    access_key: str
    secret_key: str
    rate_limit: int
    resource_policy: str


class Preferences(WireModel):
    """The WebUI's preferences of the caller (defaults filled in)."""

    theme: str | None
    language: str | None
    project: str | None
    compact_sidebar: bool | None
    preferred_ssh_port: int | None


class PreferencesPatch(WireModel):
    theme: str | None = None
    language: str | None = None
    project: str | None = None
    compact_sidebar: bool | None = None
    preferred_ssh_port: int | None = None


class Me(UserOut):
    keypair: OwnKeypair
    preferences: Preferences


@router.get("/user/me", response_model=Me)
async def me(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.auth.me(who)


@router.get("/user/preferences", response_model=Preferences)
async def get_preferences(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.auth.preferences(who)


@router.patch("/user/preferences", response_model=Preferences, openapi_extra=body_schema(PreferencesPatch, required=True))
async def patch_preferences(request: Request, who: Actor = Depends(actor),
                            st: ManagerState = Depends(state)) -> dict:
    return await st.auth.update_preferences(who, await json_body(request))


def _addressed_to(event: dict[str, Any], who: Actor) -> bool:
    target = event.get("user_id")
    return target is None or target == str(who.user_id)


@router.get("/events/notifications", response_class=EventSourceResponse,
            responses=event_stream("Notifications addressed to the caller (Server-Sent Events)."))
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
