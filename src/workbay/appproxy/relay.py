"""Moving bytes: HTTP requests streamed to an app and back, WebSockets relayed message by
message, raw TCP piped.  Nothing buffers a whole body; each direction waits for the other side
to take what it sent (backpressure)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import websockets
import yarl
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "host"}
WS_SKIP = HOP_BY_HOP | {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                        "sec-websocket-protocol", "origin", "content-length"}
CHUNK = 256 * 1024
SKIP_AUTO = frozenset({"User-Agent", "Accept-Encoding", "Content-Type"})
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def strip_cookie(raw: str, drop_prefix: str) -> str:
    """The Cookie header without the proxy's own cookies (apps never see them)."""
    parts = [p.strip() for p in raw.split(";") if p.strip()]
    return "; ".join(p for p in parts if not p.startswith(drop_prefix))


def forward_headers(scope: dict[str, Any], skip: set[str], cookie_prefix: str) -> list[tuple[str, str]]:
    out = []
    for k, v in scope["headers"]:
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        if name in skip:
            continue
        if name == "cookie":
            value = strip_cookie(value, cookie_prefix)
            if not value:
                continue
        out.append((name, value))
    client = scope.get("client") or ("", 0)
    out.append(("x-forwarded-for", client[0]))
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
    if host:
        out.append(("x-forwarded-host", host))
    out.append(("x-forwarded-proto", scope.get("scheme", "http").replace("ws", "http")))
    return out


def target_path(scope: dict[str, Any]) -> str:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    return path.decode("latin-1") + (("?" + query.decode("latin-1")) if query else "")


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
        body = msg.get("body", b"")
        if body:
            yield body
        if not msg.get("more_body", False):
            return


def upstream_session() -> aiohttp.ClientSession:
    """The proxy's HTTP client to apps: kept-alive connections, bodies passed as they are
    (no decompression, no headers of its own)."""
    return aiohttp.ClientSession(
        auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=15))


async def proxy_http(scope: dict[str, Any], receive: Receive, send: Send, client: aiohttp.ClientSession,
                     host: str, port: int, cookie_prefix: str) -> None:
    url = f"http://{host}:{port}{target_path(scope)}"
    headers = forward_headers(scope, HOP_BY_HOP, cookie_prefix)
    has_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
    try:
        resp = await client.request(scope["method"], yarl.URL(url, encoded=True), headers=headers,
                                    data=_request_body(receive) if has_body else None,
                                    allow_redirects=False, skip_auto_headers=SKIP_AUTO)
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
        log.info("app unreachable at %s:%s: %s", host, port, e)
        await _plain(send, 502, b"The app is not answering yet; try again in a moment.")
        return
    try:
        out_headers = [(k, v) for k, v in resp.raw_headers if k.lower().decode("latin-1") not in HOP_BY_HOP]
        await send({"type": "http.response.start", "status": resp.status, "headers": out_headers})
        async for chunk in resp.content.iter_chunked(CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
        log.info("app stream to %s:%s broke: %s", host, port, e)
    finally:
        resp.release()


async def _plain(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


async def proxy_websocket(scope: dict[str, Any], receive: Receive, send: Send, host: str, port: int,
                          cookie_prefix: str) -> None:
    url = f"ws://{host}:{port}{target_path(scope)}"
    protocols = [p.strip() for k, v in scope["headers"] if k == b"sec-websocket-protocol"
                 for p in v.decode("latin-1").split(",") if p.strip()]
    headers = forward_headers(scope, WS_SKIP, cookie_prefix)
    origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
    first = await receive()  # websocket.connect
    if first["type"] != "websocket.connect":
        return
    try:
        upstream = await websockets.connect(url, additional_headers=headers, subprotocols=protocols or None,
                                            origin=origin, max_size=None, open_timeout=15,
                                            ping_interval=None, compression=None)
    except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError) as e:
        log.info("app websocket unreachable at %s: %s", url, e)
        await send({"type": "websocket.close", "code": 1011})
        return
    await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})

    async def client_to_app() -> None:
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                await upstream.close()
                return
            data = msg.get("bytes") if msg.get("bytes") is not None else msg.get("text")
            if data is not None:
                await upstream.send(data)

    async def app_to_client() -> None:
        try:
            async for data in upstream:
                if isinstance(data, bytes):
                    await send({"type": "websocket.send", "bytes": data})
                else:
                    await send({"type": "websocket.send", "text": data})
        except ConnectionClosed:
            pass
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": upstream.close_code or 1000})

    await _both(client_to_app(), app_to_client())
    await upstream.close()


async def _both(*coros: Awaitable[None]) -> None:
    """Run the two directions; when one ends, the other is cancelled."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def pipe_streams(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       host: str, port: int) -> None:
    """Raw TCP in both directions (TCP circuits in port mode)."""
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError as e:
        log.info("tcp app unreachable at %s:%s: %s", host, port, e)
        writer.close()
        return

    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(CHUNK):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()

    await _both(copy(reader, up_writer), copy(up_reader, writer))
    for w in (writer, up_writer):
        with contextlib.suppress(Exception):
            w.close()


async def tcp_over_websocket(receive: Receive, send: Send, host: str, port: int) -> None:
    """A WebSocket (already accepted) carrying raw TCP bytes as binary frames, both ways."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        log.info("tcp app unreachable at %s:%s: %s", host, port, e)
        await send({"type": "websocket.close", "code": 1011})
        return

    async def ws_to_tcp() -> None:
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                return
            data = msg.get("bytes")
            if data is None and msg.get("text") is not None:
                data = msg["text"].encode()
            if data:
                writer.write(data)
                await writer.drain()

    async def tcp_to_ws() -> None:
        try:
            while data := await reader.read(CHUNK):
                await send({"type": "websocket.send", "bytes": data})
        except (ConnectionError, OSError):
            pass
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": 1000})

    await _both(ws_to_tcp(), tcp_to_ws())
    with contextlib.suppress(Exception):
        writer.close()
