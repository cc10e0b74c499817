"""A stand-in model server for serving tests and benchmarks (stdlib only, Python 3.9+).

Runs inside kernel containers (whose python is 3.9) and as a local process:

    python3 model_server.py --port 8000 [--host 0.0.0.0]

HTTP/1.1 with keep-alive on asyncio (one task per connection; request bodies by Content-Length
or chunked). Endpoints:

* ``GET /health`` — 200 ``{"status":"ok"}``; 503 while the file named by ``MODEL_UNHEALTHY_FILE``
  exists (tests flip a replica's health by touching it);
* ``GET /v1/models`` — ``{"object":"list","data":[{"id": MODEL_ID or "test-model", ...}]}``;
* ``POST /v1/completions``, ``POST /v1/chat/completions`` — OpenAI-shaped answers of
  ``max_tokens`` (default 16) tokens; ``"stream": true`` → ``text/event-stream`` (chunked), one
  ``data: {...}`` event per token ``MODEL_TOKEN_DELAY`` seconds apart (default 0.01), then
  ``data: [DONE]``;
* ``/echo`` (any method) — the replica's name (``MODEL_REPLICA_NAME``, default the hostname: local
  processes share a hostname), its hostname, a per-process counter, and what arrived (method,
  path, query, headers, body length): tests see which replica answered and what it was sent;
* ``GET /whoami`` — the hostname (text); ``GET /slow?ms=N`` — answers after N ms;
* ``GET /metrics`` — Prometheus text: ``model_requests_running`` (gauge), ``model_requests_total``
  (counter);
* ``GET /bytes?n=N`` — N bytes (zeros), for streaming benchmarks.

Every response carries ``X-Model-Replica: <replica name>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import time
from urllib.parse import parse_qs, urlsplit

HOSTNAME = socket.gethostname()
REPLICA = os.environ.get("MODEL_REPLICA_NAME") or HOSTNAME
MODEL_ID = os.environ.get("MODEL_ID") or "test-model"
TOKEN_DELAY = float(os.environ.get("MODEL_TOKEN_DELAY", "0.01"))
WORDS = ("the quick brown fox jumps over the lazy dog and runs far away").split()
CHUNK = bytes(64 * 1024)
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           413: "Payload Too Large", 503: "Service Unavailable"}


class Counters:
    running = 0
    total = 0
    echo = 0


class BadRequest(Exception):
    pass


def _unhealthy() -> bool:
    path = os.environ.get("MODEL_UNHEALTHY_FILE")
    return bool(path) and os.path.exists(path)  # type: ignore[arg-type]


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append("X-Model-Replica: " + REPLICA)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json(status: int, body: object, keep_alive: bool) -> bytes:
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if not keep_alive:
        headers.append(("Connection", "close"))
    return _head(status, headers) + data


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], list[tuple[str, str]]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as e:
        raise BadRequest("request head too large") from e
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest("bad request line")
    method, target, _version = parts
    headers: dict[str, str] = {}
    raw_headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
        raw_headers.append((name.strip(), value.strip()))
    return method, target, headers, raw_headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or "0")
    return await reader.readexactly(length) if length else b""


def _tokens(body: dict) -> list[str]:
    count = body.get("max_tokens", 16)
    if not isinstance(count, int) or count < 0:
        count = 16
    return [("" if i == 0 else " ") + WORDS[i % len(WORDS)] for i in range(count)]


async def _completion(writer: asyncio.StreamWriter, path: str, body_raw: bytes,
                      keep_alive: bool) -> None:
    try:
        body = json.loads(body_raw or b"{}")
        if not isinstance(body, dict):
            raise ValueError
    except ValueError:
        writer.write(_json(400, {"error": {"message": "the body is not a JSON object"}}, keep_alive))
        return
    chat = path.endswith("/chat/completions")
    tokens = _tokens(body)
    ident = f"cmpl-{Counters.total}"
    created = int(time.time())
    model = body.get("model") or MODEL_ID
    if not body.get("stream"):
        text = "".join(tokens)
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text},
                      "finish_reason": "length"}
        else:
            choice = {"index": 0, "text": text, "finish_reason": "length"}
        writer.write(_json(200, {
            "id": ident, "object": "chat.completion" if chat else "text_completion",
            "created": created, "model": model, "choices": [choice],
            "usage": {"prompt_tokens": 1, "completion_tokens": len(tokens),
                      "total_tokens": 1 + len(tokens)}}, keep_alive))
        return
    headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
               ("Transfer-Encoding", "chunked")]
    if not keep_alive:
        headers.append(("Connection", "close"))
    writer.write(_head(200, headers))
    kind = "chat.completion.chunk" if chat else "text_completion"
    for i, token in enumerate(tokens):
        if i:
            await asyncio.sleep(TOKEN_DELAY)
        if chat:
            choice = {"index": 0, "delta": {"content": token}, "finish_reason": None}
        else:
            choice = {"index": 0, "text": token, "finish_reason": None}
        event = {"id": ident, "object": kind, "created": created, "model": model,
                 "choices": [choice]}
        _chunk(writer, b"data: " + json.dumps(event).encode() + b"\n\n")
        await writer.drain()
    _chunk(writer, b"data: [DONE]\n\n")
    writer.write(b"0\r\n\r\n")


class _HeadOnly:
    """The writer for a HEAD request: the response head goes out, its body does not."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.head_done = False

    def write(self, data: bytes) -> None:
        if not self.head_done:
            head, sep, _ = data.partition(b"\r\n\r\n")
            self.writer.write(head + sep)
            self.head_done = bool(sep)

    async def drain(self) -> None:
        await self.writer.drain()


def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))


async def _bytes(writer: asyncio.StreamWriter, n: int, keep_alive: bool) -> None:
    headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))]
    if not keep_alive:
        headers.append(("Connection", "close"))
    writer.write(_head(200, headers))
    left = n
    while left > 0:
        piece = CHUNK if left >= len(CHUNK) else CHUNK[:left]
        writer.write(piece)
        left -= len(piece)
        await writer.drain()


def _int_arg(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return max(0, int(query.get(name, [str(default)])[0]))
    except ValueError as e:
        raise BadRequest(f"{name} must be an integer") from e


def _metrics() -> str:
    return (
        "# HELP model_requests_running Requests being answered now.\n"
        "# TYPE model_requests_running gauge\n"
        f"model_requests_running {Counters.running}\n"
        "# HELP model_requests_total Requests answered since start.\n"
        "# TYPE model_requests_total counter\n"
        f"model_requests_total {Counters.total}\n")


async def _answer(writer: asyncio.StreamWriter, method: str, target: str,
                  headers: dict[str, str], raw_headers: list[tuple[str, str]], body: bytes,
                  keep_alive: bool) -> None:
    url = urlsplit(target)
    path, query = url.path, parse_qs(url.query)
    if path == "/health":
        if _unhealthy():
            writer.write(_json(503, {"status": "unhealthy"}, keep_alive))
        else:
            writer.write(_json(200, {"status": "ok"}, keep_alive))
    elif path == "/v1/models":
        writer.write(_json(200, {"object": "list", "data": [
            {"id": MODEL_ID, "object": "model", "owned_by": "workbay-test"}]}, keep_alive))
    elif path in ("/v1/completions", "/v1/chat/completions"):
        if method != "POST":
            writer.write(_json(405, {"error": {"message": "use POST"}}, keep_alive))
        else:
            await _completion(writer, path, body, keep_alive)
    elif path == "/echo":
        Counters.echo += 1
        writer.write(_json(200, {
            "replica": REPLICA, "hostname": HOSTNAME, "count": Counters.echo,
            "method": method, "path": path, "query": url.query,
            "headers": raw_headers, "body_length": len(body)}, keep_alive))
    elif path == "/whoami":
        data = HOSTNAME.encode()
        writer.write(_head(200, [("Content-Type", "text/plain"),
                                 ("Content-Length", str(len(data)))]) + data)
    elif path == "/slow":
        ms = _int_arg(query, "ms", 100)
        await asyncio.sleep(ms / 1000)
        writer.write(_json(200, {"replica": REPLICA, "slept_ms": ms}, keep_alive))
    elif path == "/metrics":
        data = _metrics().encode()
        writer.write(_head(200, [("Content-Type", "text/plain; version=0.0.4"),
                                 ("Content-Length", str(len(data)))]) + data)
    elif path == "/bytes":
        await _bytes(writer, _int_arg(query, "n", 1024), keep_alive)
    else:
        writer.write(_json(404, {"error": {"message": "no such path: " + path}}, keep_alive))


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await _read_head(reader)
                if head is None:
                    break
                method, target, headers, raw_headers = head
                body = await _read_body(reader, headers)
            except (BadRequest, ValueError) as e:
                writer.write(_json(400, {"error": {"message": str(e) or "bad request"}}, False))
                await writer.drain()
                break
            keep_alive = headers.get("connection", "").lower() != "close"
            Counters.running += 1
            Counters.total += 1
            try:
                out = _HeadOnly(writer) if method == "HEAD" else writer
                await _answer(out, method, target, headers, raw_headers, body, keep_alive)  # type: ignore[arg-type]
            except BadRequest as e:
                writer.write(_json(400, {"error": {"message": str(e)}}, keep_alive))
            finally:
                Counters.running -= 1
            await writer.drain()
            if not keep_alive:
                break
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int) -> None:
    server = await asyncio.start_server(_connection, host, port, limit=1 << 16, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
