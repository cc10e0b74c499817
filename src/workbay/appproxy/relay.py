"""Moving raw TCP bytes: a TCP circuit's port piped to the app, and TCP over a WebSocket (the
CLI's tunnel).  Nothing buffers; each direction waits for the other side to take what it sent
(backpressure).  HTTP circuits are in http1.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)
CHUNK = 256 * 1024
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


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
                       host: str, port: int, preamble: bytes = b"") -> None:
    """Raw TCP in both directions (TCP circuits in port mode).  ``preamble``: the first bytes to
    the app's port, before the client's (the line its session's app gate opens to)."""
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError as e:
        log.info("tcp app unreachable at %s:%s: %s", host, port, e)
        writer.close()
        return
    if preamble:
        up_writer.write(preamble)

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


async def tcp_over_websocket(receive: Receive, send: Send, host: str, port: int,
                             preamble: bytes = b"") -> None:
    """A WebSocket (already accepted) carrying raw TCP bytes as binary frames, both ways
    (``preamble`` first, as for pipe_streams)."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        log.info("tcp app unreachable at %s:%s: %s", host, port, e)
        await send({"type": "websocket.close", "code": 1011})
        return
    if preamble:
        writer.write(preamble)

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
