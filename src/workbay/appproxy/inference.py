"""The inference listener (docs/serving.md, "The endpoint"): one port for every model service,
``/<service-name>/<rest>`` → ``/<rest>`` on one of the service's replicas.

Like the HTTP circuits (http1.py) it is plain asyncio protocols with httptools: the client's
HTTP/1.1 stream is parsed, the service's token checked, the head rewritten (prefix removed,
``Authorization`` dropped, ``Host`` naming the replica, ``X-Forwarded-*`` added) and written to a
kept-alive connection of the chosen replica (balancer.py), which opened with the replica's app-gate
line.  The replica's response goes back byte for byte (its own framing: SSE and chunked bodies reach
the client as they are produced); a response parser only follows where it ends and when its head
arrived (latency).  Each direction stops reading while the other's send buffer is full.

Retry: when the replica fails before any response byte reached the client (connection refused or
reset, closed before the response head), the request goes once more to another route, with its body
replayed -- when the body is at most ``REPLAY_LIMIT`` (1 MiB); a larger one is not kept, so such a
request is not retried (502).  A kept-alive connection that turns out closed as the request goes out
is retried on a fresh connection to the same route first (that is not the replica's fault).

No routes: a service with ``wake`` set holds its requests (``waiting``) until routes arrive or
``wake_timeout`` passes (503 "starting"); otherwise 503 at once.  Routes removed by an update finish
the requests they have; their idle connections close."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

import httptools

from workbay.runner.protocol import GATE_FORBIDDEN

from .http_front import MAX_HEAD, ClientFront
from .services import Route, Service, ServiceTable

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"host", b"proxy-connection"})
PENDING_LIMIT = 256 * 1024  # request body bytes held while no replica connection takes them
REPLAY_LIMIT = 1024 * 1024  # a request body up to this is kept for the retry
CONNECT_TIMEOUT = 10.0
IDLE_TIMEOUT = 75.0  # client connections with no request in flight
# Idle replica connections are closed after this long: before uvicorn's keep-alive timeout (5 s, what
# vLLM and most Python model servers run with) closes them under a request just sent.
POOL_IDLE = 4.0
SWEEP_INTERVAL = 1.0
PROBLEM = "https://api.backend.ai/probs/"
REASONS = {400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found", 431: b"Request Header Fields Too Large",
           502: b"Bad Gateway", 503: b"Service Unavailable"}


# -- pure pieces -----------------------------------------------------------------------------------
def problem(status: int, kind: str, title: str, msg: str, headers: list[tuple[bytes, bytes]] | None = None,
            close: bool = False) -> bytes:
    """A problem+json response of the proxy's own."""
    body = json.dumps({"type": PROBLEM + kind, "title": title, "msg": msg}).encode()
    lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"")), b"content-type: application/problem+json",
             b"content-length: %d" % len(body), *(k + b": " + v for k, v in headers or ())]
    if close:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """``/<name>/<rest>?q`` → (name, ``/<rest>?q``); ``/<name>`` alone → (name, ``/``)."""
    path, sep, query = target.partition(b"?")
    name, _, rest = path[1:].partition(b"/")
    return name, b"/" + rest + (sep + query if sep else b"")


def bearer(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The token of ``Authorization: BackendAI <token>`` or ``Bearer <token>``."""
    for k, v in headers:
        if len(k) == 13 and k.lower() == b"authorization":
            scheme, _, token = v.strip().partition(b" ")
            if scheme.lower() in (b"backendai", b"bearer") and token.strip():
                return token.strip()
            return b""
    return None


def request_head(method: bytes, target: bytes, version: str, headers: list[tuple[bytes, bytes]], *,
                 client_ip: bytes, chunked: bool) -> tuple[bytes, bytes]:
    """The request as a replica gets it, less its Host line: (request line, header lines).  Never the
    Authorization header, public service or not: a Workbay token sent there (one of another service,
    say) must not reach the service's owner."""
    first = method + b" " + target + b" HTTP/" + version.encode("ascii")
    lines = []
    original_host = b""
    for k, v in headers:
        name = k.lower()
        if name in HOP_BY_HOP:
            if name == b"host":
                original_host = v
            continue
        if name == b"authorization" or (name == b"content-length" and chunked):
            continue
        if name.startswith(b"x-forwarded-"):
            continue  # ours replace whatever the client claims
        lines.append(k + b": " + v)
    if chunked:
        lines.append(b"transfer-encoding: chunked")
    lines.append(b"x-forwarded-for: " + client_ip)
    if original_host:
        lines.append(b"x-forwarded-host: " + original_host)
    lines.append(b"x-forwarded-proto: http")
    return first, b"\r\n".join(lines) + b"\r\n\r\n"


# -- the listener ----------------------------------------------------------------------------------
class InferenceProxy(ServiceTable):
    """The services this app-proxy serves and the listener that serves them."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.connections: set[ClientConnection] = set()
        self.server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task | None = None
        self.tasks: set[asyncio.Task] = set()  # held here: the loop keeps only weak references

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def start(self, host: str, port: int) -> None:
        # IPPROTO_TCP explicitly: asyncio turns Nagle off only on such sockets (see frontend.py).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: ClientConnection(self), sock=sock)
        self._sweeper = asyncio.create_task(self._sweep(), name="inference-idle-sweep")
        log.info("inference listener on http://%s:%d", host, port)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.idle_since is not None and now - conn.idle_since > IDLE_TIMEOUT:
                    conn.close()
            for svc in self.services.values():
                for route in svc.routes.values():
                    route.close_idle(older_than=now - POOL_IDLE)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(BaseException):
                await self._sweeper
        if self.server is not None:
            self.server.close()
        for svc in list(self.services.values()):
            svc.wake_waiters()
            for route in svc.routes.values():
                route.close_idle()
        for conn in list(self.connections):
            conn.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.sleep(0)
        for conn in list(self.connections):
            conn.abort()


class ResponseWatch:
    """Follows a replica's response (llhttp): when its head arrived, its status, where it ends."""

    __slots__ = ("parser", "head_only", "complete", "status", "keep_alive", "head_at")

    def __init__(self, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only
        self.complete = False
        self.status = 0
        self.keep_alive = False
        self.head_at: float | None = None

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if self.status >= 200:
            self.head_at = time.monotonic()
            if self.head_only:
                self.complete = True

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() >= 200:
            self.complete = True


class Exchange:
    """One client request: its service, the replica it went to, its body for a replay."""

    __slots__ = ("service", "local", "first_line", "headers", "chunked", "keep_alive", "head_only",
                 "pending", "pending_size", "replay", "body_size", "request_done", "route", "upstream",
                 "tried", "fresh_retry", "started", "got_response", "watch", "counted", "finished")

    def __init__(self) -> None:
        self.service: Service | None = None
        self.local: bytes | None = None  # the proxy's own answer
        self.first_line = b""
        self.headers = b""
        self.chunked = False
        self.keep_alive = True
        self.head_only = False
        self.pending: list[bytes] = []  # body bytes not yet written to a replica
        self.pending_size = 0
        self.replay: list[bytes] | None = []  # every body byte so far, while at most REPLAY_LIMIT
        self.body_size = 0
        self.request_done = False
        self.route: Route | None = None
        self.upstream: Upstream | None = None
        self.tried: set[str] = set()
        self.fresh_retry = False
        self.started = 0.0
        self.got_response = False
        self.watch: ResponseWatch | None = None
        self.counted = False  # in the route's in_flight
        self.finished = False


class Upstream(asyncio.Protocol):
    """A connection to one replica (through its gate); idle in its route's pool or lent to a client."""

    __slots__ = ("route", "owner", "transport", "idle_since", "read_paused", "reused")

    def __init__(self, route: Route) -> None:
        self.route = route
        self.owner: ClientConnection | None = None
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.read_paused = False
        self.reused = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.route.preamble:
            transport.write(self.route.preamble)

    def data_received(self, data: bytes) -> None:
        if self.owner is None:
            self.close()  # a replica speaking out of turn
            return
        self.owner.upstream_data(self, data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.upstream_lost(self)
        elif self in self.route.idle:
            self.route.idle.remove(self)

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner.pause_reading("upstream")

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner.resume_reading("upstream")

    def pause(self) -> None:
        if self.transport is not None and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.owner = None
        if self.transport is not None:
            self.transport.close()


class ClientConnection(ClientFront):
    exchange_type = Exchange

    """One client connection to the inference port; one request at a time with a replica."""

    def __init__(self, proxy: InferenceProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = b""
        self.queue: deque[Exchange] = deque()
        self.parsing: Exchange | None = None
        self.closed = False
        self.read_pauses: set[str] = set()
        self.write_paused = False
        self.idle_since: float | None = time.monotonic()
        self._url: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0

    # -- the client's side ---------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client_ip = (peer[0] if peer else "").encode("latin-1")
        self.proxy.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.proxy.connections.discard(self)
        while self.queue:
            ex = self.queue.popleft()
            self._release(ex, reusable=False)

    def data_received(self, data: bytes) -> None:
        self.idle_since = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "upgrades (WebSocket) are not served on the inference endpoint")
        except httptools.HttpParserError:
            if self._head_size > MAX_HEAD:
                self._refuse(431, "the request's headers are too large")
            else:
                self._refuse(400, "bad request")

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.queue[0] if self.queue else None
        if ex is not None and ex.upstream is not None:
            ex.upstream.pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.queue[0] if self.queue else None
        if ex is not None and ex.upstream is not None:
            ex.upstream.resume()

    def _refuse(self, status: int, msg: str) -> None:
        self._refuse_and_close(problem(status, "generic-bad-request", "Bad request.", msg, close=True))

    # -- parsing (httptools callbacks) -----------------------------------------------------------
    def on_headers_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        parser = self.parser
        ex.keep_alive = parser.should_keep_alive()
        ex.head_only = parser.get_method() == b"HEAD"
        headers = self._headers
        name, rest = split_target(b"".join(self._url))
        svc = self.proxy.by_name.get(name)
        if svc is None:
            ex.local = problem(404, "object-not-found", "No such service.",
                               f"no model service is named {name.decode('latin-1')!r} here")
        else:
            why = None if svc.open_to_public else svc.check_token(self.proxy.secret, bearer(headers))
            if why is not None:
                ex.local = problem(401, "auth-failed", "This service needs a valid token.", why,
                                   [(b"www-authenticate", b'Bearer realm="workbay"')])
            else:
                ex.service = svc
                ex.chunked = any(k.lower() == b"transfer-encoding" for k, _ in headers)
                ex.first_line, ex.headers = request_head(
                    parser.get_method(), rest, parser.get_http_version(), headers, client_ip=self.client_ip,
                    chunked=ex.chunked)
        self.queue.append(ex)
        if len(self.queue) == 1:
            self._start(ex)
        else:
            self.pause_reading("queue")  # a pipelined request waits its turn

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is not None and ex.local is None:
            self._body(ex, b"%x\r\n%s\r\n" % (len(body), body) if ex.chunked else body)

    def on_message_complete(self) -> None:
        ex = self.parsing
        if ex is None:
            return
        self.parsing = None
        ex.request_done = True
        if ex.chunked and ex.local is None:
            self._body(ex, b"0\r\n\r\n")
        if not ex.keep_alive:
            self.pause_reading("done")
        if ex.got_response and (ex.local is not None or (ex.watch is not None and ex.watch.complete)):
            self._finish(ex)

    # -- the request body --------------------------------------------------------------------------
    def _body(self, ex: Exchange, data: bytes) -> None:
        ex.body_size += len(data)
        if ex.replay is not None:
            if ex.body_size <= REPLAY_LIMIT:
                ex.replay.append(data)
            else:
                ex.replay = None  # too large to keep: this request is not retried
        up = ex.upstream
        if up is not None and up.transport is not None and not ex.pending:
            up.transport.write(data)
            return
        ex.pending.append(data)
        ex.pending_size += len(data)
        if ex.pending_size > PENDING_LIMIT:
            self.pause_reading("pending")

    # -- dispatch ------------------------------------------------------------------------------------
    def _start(self, ex: Exchange) -> None:
        if self.closed:
            return
        if ex.local is not None:
            self._answer(ex, ex.local)
            return
        svc = ex.service
        assert svc is not None
        now = time.time()
        svc.figures.requests += 1
        svc.figures.in_flight += 1
        svc.rate.add(now)
        svc.last_request_at = now
        ex.started = time.monotonic()
        self._dispatch(ex)

    def _dispatch(self, ex: Exchange) -> None:
        svc = ex.service
        assert svc is not None
        route = svc.choose(ex.tried) if not svc.deleted else None
        if route is None:
            if ex.tried:
                self._fail(ex, 502, "the replica failed and no other replica could take the request")
            elif svc.wake and not svc.deleted and not svc.has_routes():
                self.proxy.spawn(self._wait_for_routes(ex, svc))
            else:
                self._fail(ex, 503, "no healthy replica of this service is in rotation")
            return
        self._use(ex, route)

    def _use(self, ex: Exchange, route: Route) -> None:
        ex.route = route
        route.figures.requests += 1
        route.figures.in_flight += 1
        ex.counted = True
        ex.watch = ResponseWatch(ex.head_only)
        up = route.take_idle()
        if up is not None:
            up.reused = True
            self._send(ex, up)
        else:
            self.proxy.spawn(self._connect(ex, route))

    async def _wait_for_routes(self, ex: Exchange, svc: Service) -> None:
        fut = asyncio.get_running_loop().create_future()
        svc.waiters.add(fut)
        svc.waiting += 1
        timed_out = False
        try:
            await asyncio.wait_for(fut, svc.wake_timeout)
        except TimeoutError:
            timed_out = True
        finally:
            svc.waiting -= 1
            svc.waiters.discard(fut)
        if self.closed or not self.queue or self.queue[0] is not ex:
            return
        if timed_out or (svc.wake and not svc.has_routes() and not svc.deleted):
            self._fail(ex, 503, "the service is starting, try again in a moment",
                       [(b"retry-after", b"5")])
            return
        self._dispatch(ex)

    async def _connect(self, ex: Exchange, route: Route) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, up = await asyncio.wait_for(loop.create_connection(lambda: Upstream(route), route.host, route.port),
                                           CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as e:
            log.info("replica %s at %s:%d unreachable: %s", route.route_id, route.host, route.port, e)
            if not self.closed and self.queue and self.queue[0] is ex and ex.route is route:
                self._replica_failed(ex, stale=False)
            return
        if self.closed or not self.queue or self.queue[0] is not ex or ex.route is not route:
            route.give_back(up)
            return
        self._send(ex, up)

    def _send(self, ex: Exchange, up: Upstream) -> None:
        assert up.transport is not None and ex.route is not None
        ex.upstream = up
        up.owner = self
        if self.write_paused:
            up.pause()
        head = ex.first_line + b"\r\nhost: " + ex.route.host_header + b"\r\n" + ex.headers
        if ex.pending:
            up.transport.write(b"".join([head, *ex.pending]))
            ex.pending, ex.pending_size = [], 0
            self.resume_reading("pending")
        else:
            up.transport.write(head)

    # -- the replica's side --------------------------------------------------------------------------
    def upstream_data(self, up: Upstream, data: bytes) -> None:
        ex = self.queue[0] if self.queue else None
        if self.closed or ex is None or ex.upstream is not up or ex.watch is None or ex.watch.complete:
            up.close()
            return
        if not ex.got_response and data.startswith(GATE_FORBIDDEN):
            # The route's address now leads to another session's gate (the replica died and its
            # port went to a new session before the routing table caught up): a failed replica.
            up.close()
            ex.upstream = None
            self._replica_failed(ex, stale=False)
            return
        ex.got_response = True
        assert self.transport is not None
        self.transport.write(data)
        watch = ex.watch
        had_head = watch.head_at is not None
        try:
            watch.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            watch.complete = True
        except httptools.HttpParserError as e:
            log.info("bad response from replica %s: %s", ex.route.route_id if ex.route else "?", e)
            self.close()
            return
        if not had_head and watch.head_at is not None:
            self._head_arrived(ex, watch)
        if watch.complete:
            if ex.request_done:
                self._finish(ex)
            else:  # answered before the body was all sent: neither connection is reused
                ex.keep_alive = False
                self._finish(ex)

    def _head_arrived(self, ex: Exchange, watch: ResponseWatch) -> None:
        assert ex.service is not None and ex.route is not None and watch.head_at is not None
        ms = (watch.head_at - ex.started) * 1000
        ex.service.figures.latencies.append(ms)
        ex.route.figures.latencies.append(ms)
        if watch.status >= 500:
            ex.service.figures.errors += 1
            ex.route.figures.errors += 1

    def upstream_lost(self, up: Upstream) -> None:
        ex = self.queue[0] if self.queue else None
        if self.closed or ex is None or ex.upstream is not up:
            return
        ex.upstream = None
        if ex.got_response:
            ex.keep_alive = False  # a response read until close ends here; a broken one is cut off
            self._finish(ex, reusable=False)
            return
        self._replica_failed(ex, stale=up.reused)

    def _replica_failed(self, ex: Exchange, stale: bool) -> None:
        """The replica failed before any response byte went to the client: retry or 502."""
        route = ex.route
        assert route is not None and ex.service is not None
        route.figures.in_flight -= 1
        ex.counted = False
        ex.upstream = None
        replayable = ex.replay is not None
        if replayable:
            ex.pending = list(ex.replay or [])
            ex.pending_size = sum(len(p) for p in ex.pending)
        if stale and not ex.fresh_retry and replayable:
            ex.fresh_retry = True  # a kept-alive connection closed as the request went out: anew
            route.figures.requests -= 1
            self._use(ex, route)
            return
        route.figures.errors += 1
        ex.tried.add(route.route_id)
        if replayable and len(ex.tried) == 1 and ex.service.choose(ex.tried) is not None:
            ex.service.retries += 1
            self._dispatch(ex)
            return
        why = ("the replica failed and the request body was too large to retry" if not replayable
               else "the replica failed and no other replica could take the request")
        self._fail(ex, 502, why)

    # -- endings -------------------------------------------------------------------------------------
    def _fail(self, ex: Exchange, status: int, msg: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """The proxy's own error for a request it could not get answered."""
        if ex.service is not None:
            ex.service.figures.errors += 1
        ex.keep_alive = ex.keep_alive and ex.request_done
        title = "Bad gateway." if status == 502 else "Service unavailable."
        kind = "bad-gateway" if status == 502 else "service-unavailable"
        self._answer(ex, problem(status, kind, title, msg, headers, close=not ex.keep_alive))

    def _answer(self, ex: Exchange, data: bytes) -> None:
        if self.closed or self.transport is None:
            return
        ex.got_response = True
        ex.local = data
        self.transport.write(data)
        if not ex.keep_alive:
            self._finish(ex)
            return
        if ex.request_done:
            self._finish(ex)
        # else: the rest of the request body is read and dropped, then _finish

    def _finish(self, ex: Exchange, reusable: bool = True) -> None:
        if ex.finished:
            return
        ex.finished = True
        if self.queue and self.queue[0] is ex:
            self.queue.popleft()
        ok = ex.watch is not None and ex.watch.complete
        self._release(ex, reusable=reusable and ok and ex.request_done and ex.watch is not None
                      and ex.watch.keep_alive)
        if self.closed:
            return
        if not ex.keep_alive:
            assert self.transport is not None
            self.transport.close()
            return
        if self.queue:
            self._start(self.queue[0])
        else:
            self.idle_since = time.monotonic()
        if len(self.queue) <= 1:
            self.resume_reading("queue")

    def _release(self, ex: Exchange, reusable: bool) -> None:
        """Ends the exchange's hold on its replica: in_flight counts, the connection back to the pool."""
        ex.finished = True
        if ex.counted and ex.route is not None:
            ex.route.figures.in_flight -= 1
            ex.counted = False
        if ex.service is not None and ex.started:
            ex.service.figures.in_flight -= 1
            ex.started = 0.0
        up, ex.upstream = ex.upstream, None
        if up is not None:
            if reusable and ex.route is not None:
                ex.route.give_back(up)
            else:
                up.close()
        self.resume_reading("upstream")  # paused while that replica connection's buffer was full
