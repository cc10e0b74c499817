"""The session SDK beyond plain requests: server-sent event streams (``/events/session``,
``/events/background-task``) and downloads of files and directories from a running session
(Backend.AI's multipart answer of one tar per path, extracted safely).  No click, no rich: the CLI
(``cli_session``, ``cli_vfolder``) prints; these functions return data or raise."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from .sdk import APIError, Client

log = logging.getLogger(__name__)

SSE_SIGN_CONTENT_TYPE = "application/octet-stream"  # SSE: no Content-Type sent, signed as this (§1.1)
SSE_TIMEOUT = httpx.Timeout(30.0, read=None)  # events come when they come
DEFAULT_RETRY = 5.0  # seconds before reconnecting, until the server sends ``retry``


class DownloadError(ValueError):
    """A download answer that cannot be taken as it is (not multipart, an unsafe tar member)."""


# -- server-sent events ----------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def open_stream(client: Client, path: str, params: dict[str, Any] | None = None
                      ) -> AsyncIterator[httpx.Response]:
    """An SSE stream: a streaming GET signed like :meth:`Client.request` (for SSE no Content-Type
    is sent and the signature uses ``application/octet-stream``).  Error answers raise
    :class:`APIError`."""
    async with client.stream(path, params=params, headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"},
                             sign_content_type=SSE_SIGN_CONTENT_TYPE, timeout=SSE_TIMEOUT) as resp:
        yield resp


async def parse_sse(lines: AsyncIterator[str], on_retry: Callable[[float], None] | None = None
                    ) -> AsyncIterator[tuple[str, str, str | None]]:
    """Server-sent events from a stream's lines: ``(event, data, last id)`` per event (``data``
    lines joined; comments ignored); a ``retry`` field goes to ``on_retry`` in seconds."""
    event, data, last_id = "", list[str](), None
    async for line in lines:
        if line == "":
            if data or event:
                yield event or "message", "\n".join(data), last_id
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            last_id = value
        elif field == "retry" and on_retry is not None:
            with contextlib.suppress(ValueError):
                on_retry(int(value) / 1000)


def _log_reconnect(error: BaseException, retry: float) -> None:
    log.warning("event stream interrupted (%s); reconnecting in %gs", error.__class__.__name__, retry)


async def sse_events(client: Client, path: str, params: dict[str, Any] | None = None, reconnect: bool = True,
                     on_connect: Callable[[], None] | None = None,
                     on_reconnect: Callable[[BaseException, float], None] = _log_reconnect,
                     ) -> AsyncIterator[tuple[str, str, str | None]]:
    """``(event, data, id)`` for each server-sent event; reconnects after ``retry`` (default 5 s)
    when the connection drops, unless the server sent ``server_close``.  ``on_connect`` runs each
    time the stream is open, ``on_reconnect(error, seconds)`` before each wait to reconnect (it
    logs a warning unless given)."""
    retry = DEFAULT_RETRY
    connected = False

    def set_retry(seconds: float) -> None:
        nonlocal retry
        retry = seconds
    while True:
        try:
            async with open_stream(client, path, params) as resp:
                connected = True
                if on_connect:
                    on_connect()
                async for name, data, last_id in parse_sse(resp.aiter_lines(), on_retry=set_retry):
                    yield name, data, last_id
                    if name == "server_close":
                        return
        except (httpx.TransportError, httpx.RemoteProtocolError) as e:
            if not reconnect or not connected:
                raise  # the first connection failing is an error, not a reason to wait
            on_reconnect(e, retry)
        if not reconnect:
            return
        await asyncio.sleep(retry)


# -- downloads -------------------------------------------------------------------------------------
def multipart_parts(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of a multipart/mixed answer (``GET /session/{n}/download``: one tar per path)."""
    boundary = next((p.split("=", 1)[1].strip().strip('"') for p in content_type.split(";")
                     if p.strip().startswith("boundary=")), None)
    if not boundary:
        raise DownloadError("The download answer is not multipart.")
    parts = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        _, sep, data = chunk.partition(b"\r\n\r\n")
        if sep:
            parts.append(data[:-2] if data.endswith(b"\r\n") else data)
    return parts


def extract_tar(data: bytes, out_dir: Path) -> list[str]:
    """Extract a tar safely: no absolute paths, no `..`, no links out of ``out_dir``, no devices
    (tarfile's ``data`` filter raises its own errors; without filters, :class:`DownloadError`)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        try:
            tar.extractall(out_dir, members=members, filter="data")
        except TypeError:  # Python without extraction filters: check by hand
            root = out_dir.resolve()
            for m in members:
                target = (out_dir / m.name).resolve()
                if not (m.isfile() or m.isdir()) or (target != root and root not in target.parents):
                    raise DownloadError(f"Refusing to extract {m.name!r}.") from None
            tar.extractall(out_dir, members=members)
        return [m.name for m in members]


async def download_file(client: Client, session: str, path: str) -> bytes | None:
    """A regular file's bytes (``download_single``), or None when ``path`` is a directory."""
    try:
        resp = await client.request("GET", f"/session/{session}/download_single", params={"file": path}, raw=True)
    except APIError as e:
        if e.status != 400 or "regular file" not in e.message:
            raise
        return None  # a directory: Backend.AI's download, one tar per path
    return bytes(resp.content)


async def download_tree(client: Client, session: str, path: str, out_dir: Path) -> list[str]:
    """Download ``path`` (a directory: its whole tree) into ``out_dir``; the names extracted."""
    multi = await client.request("GET", f"/session/{session}/download", json={"files": [path]}, raw=True)
    names: list[str] = []
    for part in multipart_parts(multi.content, multi.headers.get("content-type", "")):
        names += extract_tar(part, out_dir)
    return names
