"""/stream/session/{id-or-name}/pty | execute | tcpproxy | httpproxy (Backend.AI's streaming API,
docs/backendai-api.md §2.3) and the older /stream/kernel/… spellings.

WebSocket handshakes never pass through the HTTP middleware: each route admits the caller with the
same check (``middleware.admit``: signature, IP allow-list, rate limit), then asks the service
whether the caller may attach to the session.  Everything that can be refused is refused before
the handshake is accepted, with the HTTP status and problem+json body an HTTP request would get
(or, where the server cannot send a denial response, a close with code 1008)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketDisconnect

from workbay.common.errors import AuthFailed, BackendError
from workbay.common.http import problem_response, validation_error
from workbay.manager.services.access import Actor
from workbay.manager.services.session_stream import AppStreamParams, ChannelClosed, StreamParams

from .middleware import admit

router = APIRouter()
POLICY_VIOLATION = 1008
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class WebSocketChannel:
    """A Starlette WebSocket as the service's ``Channel``."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.gone = False

    async def receive(self) -> str | bytes | None:
        if self.gone:
            return None
        try:
            msg = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            msg = {"type": "websocket.disconnect"}
        if msg["type"] == "websocket.disconnect":
            self.gone = True
            return None
        return msg["bytes"] if msg.get("bytes") is not None else msg.get("text", "")

    async def send_text(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as e:
            self.gone = True
            raise ChannelClosed() from e

    async def send_bytes(self, data: bytes) -> None:
        try:
            await self.ws.send_bytes(data)
        except (WebSocketDisconnect, RuntimeError, OSError) as e:
            self.gone = True
            raise ChannelClosed() from e

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.gone:
            self.gone = True
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.ws.close(code, reason[:120])


async def refuse(ws: WebSocket, err: BackendError) -> None:
    """Decline the handshake with the problem an HTTP request would get."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(problem_response(err))
    else:
        await ws.close(POLICY_VIOLATION, (err.msg or err.title)[:120])


def _params(ws: WebSocket, model: type[M]) -> M:
    try:
        return model.model_validate(dict(ws.query_params))
    except ValidationError as e:
        raise validation_error(list(e.errors())) from e


async def _attach(ws: WebSocket, decide: Callable[[Actor], Awaitable[T]]) -> tuple[Actor, T] | None:
    """The caller and what the service decided for it, or None once the handshake is refused."""
    st = ws.app.state.manager
    try:
        admission = await admit(ws, st)
        if admission.actor is None:
            raise AuthFailed("Unauthorized access", title="Unauthorized access")
        return admission.actor, await decide(admission.actor)
    except BackendError as err:
        await refuse(ws, err)
        return None


async def _serve(ws: WebSocket, decide: Callable[[Actor], Awaitable[T]],
                 run: Callable[[Actor, T, WebSocketChannel], Awaitable[None]]) -> None:
    """Decide before the handshake (refusals as HTTP answers), then accept and run the stream."""
    attached = await _attach(ws, decide)
    if attached is None:
        return
    await ws.accept()
    await run(attached[0], attached[1], WebSocketChannel(ws))


async def pty(ws: WebSocket, name: str) -> None:
    streams = ws.app.state.manager.streams
    await _serve(ws, lambda who: streams.open_terminal(who, name, _params(ws, StreamParams).owner_access_key),
                 lambda who, target, channel: streams.pty(target, channel))


async def execute(ws: WebSocket, name: str) -> None:
    streams = ws.app.state.manager.streams
    await _serve(ws, lambda who: streams.attach_execute(who, name, _params(ws, StreamParams).owner_access_key),
                 streams.execute)


async def tcpproxy(ws: WebSocket, name: str) -> None:
    """Raw TCP to an app (``backend.ai app SESSION APP -b PORT``); /httpproxy is the same pipe."""
    streams = ws.app.state.manager.streams
    await _serve(ws, lambda who: streams.open_app(who, name, _params(ws, AppStreamParams)),
                 lambda who, target, channel: streams.pipe_tcp(target, channel))


for _prefix in ("session", "kernel"):  # "kernel" is what API versions before v5 call a session
    router.add_api_websocket_route(f"/stream/{_prefix}/{{name}}/pty", pty)
    router.add_api_websocket_route(f"/stream/{_prefix}/{{name}}/execute", execute)
    router.add_api_websocket_route(f"/stream/{_prefix}/{{name}}/tcpproxy", tcpproxy)
    router.add_api_websocket_route(f"/stream/{_prefix}/{{name}}/httpproxy", tcpproxy)
