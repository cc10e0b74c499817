"""``/func/stream/{…}`` as a WebSocket: the stream API (execute, pty, tcpproxy, httpproxy) for
clients logged in to the webserver (Backend.AI's session mode: the official client's
``backend.ai app``, ``stream_execute``, ``stream_pty``).

The handshake is checked here first — a cross-site Origin is refused (403, the rule the CSRF guard
applies to POSTs: browsers always send Origin on a WebSocket, non-browser clients may send none),
then the login cookie (401) — and then opened to the manager under the same path and query,
signed with the session's keypair.  Only once the manager has accepted is the client's handshake
accepted, so whatever the manager refuses (401/403/404/400/503) reaches the client as that HTTP
status with the manager's problem+json body.  Afterwards frames are relayed both ways as they are
(text stays text, binary stays binary), one frame in flight per direction: a side is not read
while the other has not taken the previous frame.  A close on either side is passed on with its
code and reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import websockets
from fastapi import APIRouter, WebSocket
from fastapi.responses import Response
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import EXTERNAL_CLOSE_CODES

from workbay.common.errors import BackendError, GenericForbidden, InvalidAPIParameters, URLNotFound
from workbay.common.http import problem_response

from ..context import current_session, web_state
from ..csrf import is_cross_site
from ..errors import BadGateway, unauthorized
from ..forwarding import from_trusted_proxy
from .proxy import PREFIX, follow_login_epoch, forwarded_headers, manager_path, path_problem

log = logging.getLogger(__name__)
router = APIRouter(tags=["webserver"])
# Only the manager's stream API speaks WebSocket.
STREAM_PREFIX = "/stream/"
FORWARDED_WEBSOCKET_HEADERS = ("x-backendai-version", "x-backendai-domain")
POLICY_VIOLATION = 1008
NORMAL = 1000
GOING_AWAY = 1001
BAD_GATEWAY = 1014
NO_STATUS = 1005
# What a close frame may carry is 123 bytes of reason.
MAX_REASON_BYTES = 123
# Headers of the manager's refusal worth passing on (never its cookies or hop-by-hop headers).
REFUSAL_HEADERS = ("content-type", "retry-after")


def sendable_close(code: int | None, reason: str, *, lost: int) -> tuple[int, str]:
    """A received close (code, reason) as one that can be sent on: "no status" (1005) is a normal
    close; codes that only describe a lost connection (1006, 1015) become ``lost``."""
    if code is None or code == NO_STATUS:
        code = NORMAL
    elif code not in EXTERNAL_CLOSE_CODES and not 3000 <= code <= 4999:
        code = lost
    return code, reason.encode()[:MAX_REASON_BYTES].decode("utf-8", "ignore")


async def refuse(ws: WebSocket, response: Response) -> None:
    """Decline the handshake with an HTTP answer (or, on servers that cannot send one, a close)."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(response)
    else:
        await ws.close(POLICY_VIOLATION)


async def refuse_with(ws: WebSocket, err: BackendError) -> None:
    await refuse(ws, problem_response(err))


def manager_refusal(refused: InvalidStatus) -> Response:
    answer = refused.response
    headers = {name: answer.headers[name] for name in REFUSAL_HEADERS if name in answer.headers}
    return Response(bytes(answer.body or b""), status_code=answer.status_code, headers=headers)


class Relay:
    """Frames between the client's WebSocket and the manager's, both ways, until one side closes."""

    def __init__(self, client: WebSocket, upstream: websockets.ClientConnection) -> None:
        self.client = client
        self.upstream = upstream
        # (code, reason) once the client has closed or gone away
        self.client_closed: tuple[int, str] | None = None

    async def run(self) -> None:
        to_manager = asyncio.create_task(self._client_to_manager())
        to_client = asyncio.create_task(self._manager_to_client())
        try:
            await asyncio.wait({to_manager, to_client}, return_when=asyncio.FIRST_COMPLETED)
            if to_manager.done() and self.client_closed is None:
                # The manager closed while the client was sending: what it sent before its
                # close still goes to the client.
                await to_client
        finally:
            for task in (to_manager, to_client):
                task.cancel()
            await asyncio.gather(to_manager, to_client, return_exceptions=True)
            await self._close_both()

    async def _client_to_manager(self) -> None:
        while True:
            try:
                msg = await self.client.receive()
            except (WebSocketDisconnect, RuntimeError):
                msg = {"type": "websocket.disconnect", "code": GOING_AWAY}
            if msg["type"] == "websocket.disconnect":
                self.client_closed = (msg.get("code") or NORMAL, msg.get("reason") or "")
                return
            try:
                # Waits while the manager's side is not taking frames (its write buffer is full).
                if msg.get("text") is not None:
                    await self.upstream.send(msg["text"])
                else:
                    await self.upstream.send(msg.get("bytes") or b"")
            except ConnectionClosed:
                return

    async def _manager_to_client(self) -> None:
        try:
            async for message in self.upstream:
                if isinstance(message, bytes):
                    await self.client.send_bytes(message)
                else:
                    await self.client.send_text(message)
        except ConnectionClosed:
            pass  # the manager's side ended without a proper close: a lost connection
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.client_closed = self.client_closed or (GOING_AWAY, "")

    async def _close_both(self) -> None:
        if self.client_closed is not None:
            code, reason = sendable_close(*self.client_closed, lost=GOING_AWAY)
            with contextlib.suppress(ConnectionClosed, OSError):
                await self.upstream.close(code, reason)
            return
        await self.upstream.close()  # a no-op once the manager has closed
        code, reason = sendable_close(self.upstream.close_code, self.upstream.close_reason or "",
                                      lost=BAD_GATEWAY)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await self.client.close(code, reason)


async def forward_websocket(ws: WebSocket) -> None:
    problem = path_problem(manager_path(ws).split("?")[0])
    if problem is not None:  # before any decision on what the path names
        await refuse_with(ws, InvalidAPIParameters(problem, title="Non-normalised path."))
        return
    if is_cross_site(dict(ws.headers), from_trusted_proxy(ws.scope)):
        await refuse_with(ws, GenericForbidden("The request's Origin does not match this server.",
                                               title="Cross-site request refused."))
        return
    session = await current_session(ws)
    if session is None:
        await refuse_with(ws, unauthorized())
        return
    target = manager_path(ws)
    if not target.startswith(STREAM_PREFIX):
        await refuse_with(ws, URLNotFound("Only the stream API (/func/stream/…) takes WebSockets."))
        return
    headers = forwarded_headers(ws, FORWARDED_WEBSOCKET_HEADERS)
    try:
        upstream = await web_state(ws).gateway.connect_websocket(
            session, target, headers, ws.scope.get("subprotocols") or ())
    except InvalidStatus as refused:
        await follow_login_epoch(web_state(ws), session, refused.response.headers)
        await refuse(ws, manager_refusal(refused))
        return
    except (TimeoutError, OSError, InvalidHandshake) as e:
        log.warning("stream handshake to the manager failed: %r", e)
        await refuse_with(ws, BadGateway())
        return
    try:
        await ws.accept(subprotocol=upstream.subprotocol)
        await Relay(ws, upstream).run()
    finally:
        await upstream.close()


router.add_api_websocket_route(PREFIX + "/{path:path}", forward_websocket)
