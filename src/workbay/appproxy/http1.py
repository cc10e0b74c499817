"""HTTP circuits as plain asyncio protocols: the browser's HTTP/1.1 connection is parsed with
httptools (llhttp), every request's cookie is checked, and the request goes to the app on an
upstream connection of its own (one per browser connection, kept alive with it).  Responses are
passed back byte for byte: the app's framing (Content-Length, chunked, until close) reaches the
browser as the app wrote it, so a response costs one read and one write each way and nothing is
buffered.  A request that upgrades (WebSocket) becomes a raw byte pipe once the cookie is checked.

Why not a framework: a web server plus an HTTP client cost ~0.3 ms of Python per small request and
three socket writes (docs/app-proxy.md, "Performance"); this costs a fraction of that.

One request is with the app at a time; pipelined requests wait their turn (the browser's
connection is not read further meanwhile).  Each direction stops reading when the other side's
send buffer is full (backpressure)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import httptools

from workbay.common.background import BackgroundLoop

from . import tokens
from .circuits import Activity, Circuit, may_use
from .http_front import MAX_HEAD, ClientFront

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)
OPEN_PATH = b"/__workbay/open"
ASSETS_PATH = b"/__workbay/assets/"
COOKIE_PREFIX = b"wbapp_"
# Workbay's own cookies: the app-proxy's (wbapp_<circuit>) and the webserver's (workbay_session,
# workbay_csrf, ...: web/cookies.py).  Cookies ignore ports, so on a shared host name the browser
# sends them to every app; apps never see them and cannot set them (issue 10, finding 5).
RESERVED_COOKIE_PREFIXES = (COOKIE_PREFIX, b"workbay_")
# Headers that belong to one hop (RFC 9110 7.6.1); the proxy writes its own Host and framing.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"host", b"proxy-connection"})
PENDING_LIMIT = 256 * 1024  # request bytes held while the app's connection opens
CONNECT_TIMEOUT = 15.0
IDLE_TIMEOUT = 60.0  # a browser connection with no request in flight is closed after this long
STATUS_TEXT = {200: b"OK", 302: b"Found", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
               431: b"Request Header Fields Too Large", 502: b"Bad Gateway"}
# Front-end files in-session pages (the web terminal) load from the proxy: the WebUI's vendored copies.
VENDOR = Path(__file__).resolve().parent.parent / "web" / "static" / "vendor"
ASSETS = {b"xterm.js": (VENDOR / "xterm" / "xterm.js", b"text/javascript; charset=utf-8"),
          b"xterm.css": (VENDOR / "xterm" / "xterm.css", b"text/css; charset=utf-8")}


# -- pure pieces -----------------------------------------------------------------------------------
def response(status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None,
             close: bool = False) -> bytes:
    """A complete HTTP/1.1 response made by the proxy itself."""
    lines = [b"HTTP/1.1 %d %s" % (status, STATUS_TEXT.get(status, b"")),
             b"content-length: %d" % len(body)]
    if not any(k == b"content-type" for k, _ in headers or ()):
        lines.append(b"content-type: text/plain; charset=utf-8")
    lines += [k + b": " + v for k, v in headers or ()]
    if close:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def is_reserved_cookie(name: bytes) -> bool:
    return name.strip().lower().startswith(RESERVED_COOKIE_PREFIXES)


def strip_cookie(value: bytes) -> bytes:
    """The Cookie header without Workbay's own cookies (apps never see them)."""
    parts = [p.strip() for p in value.split(b";")]
    return b"; ".join(p for p in parts if p and not is_reserved_cookie(p.partition(b"=")[0]))


def _sets_reserved_cookie(line: bytes) -> bool:
    name, colon, value = line.partition(b":")
    if not colon or name.strip().lower() != b"set-cookie":
        return False
    cookie = value.strip()
    return b"=" in cookie and is_reserved_cookie(cookie.partition(b"=")[0])


def filter_response_head(head: bytes) -> bytes:
    """A response head without the Set-Cookie lines that would set one of Workbay's cookies
    (whatever their Domain or Path), folded continuation lines included."""
    lines = head.split(b"\n")
    out = [lines[0]]
    dropping = False
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and line.strip():
            if not dropping:
                out.append(line)
            continue
        dropping = _sets_reserved_cookie(line)
        if not dropping:
            out.append(line)
    return b"\n".join(out)


def _head_end(buf: bytes) -> int:
    """Where a response head ends (after its blank line), or -1."""
    ends = [i + n for i, n in ((buf.find(b"\r\n\r\n"), 4), (buf.find(b"\n\n"), 2)) if i != -1]
    return min(ends) if ends else -1


class HeadFilter:
    """Holds the app's response bytes until the head is complete, then passes it on without
    Set-Cookie lines for Workbay's cookies; informational heads (100 Continue, ...) are filtered
    too, the real head follows them.  The body passes untouched."""

    __slots__ = ("buf", "done")

    def __init__(self) -> None:
        self.buf = b""
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """What may go to the browser now; raises ValueError for a head that never ends."""
        self.buf += data
        out = []
        while not self.done:
            end = _head_end(self.buf)
            if end == -1:
                if len(self.buf) > MAX_HEAD:
                    raise ValueError("the app's response head is too large")
                break
            head, self.buf = self.buf[:end], self.buf[end:]
            out.append(filter_response_head(head))
            status = head.split(None, 2)[1:2]
            code = int(status[0]) if status and status[0].isdigit() else 0
            if not 100 <= code < 200 or code == 101:
                self.done = True
        if self.done and self.buf:
            out.append(self.buf)
            self.buf = b""
        return b"".join(out)


def find_cookie(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if len(k) == 6 and k.lower() == b"cookie":
            for part in v.split(b";"):
                key, _, value = part.strip().partition(b"=")
                if key == name:
                    return value
    return None


def upstream_head(method: bytes, target: bytes, version: str, headers: list[tuple[bytes, bytes]], *,
                  host: bytes, client_ip: bytes, chunked: bool, upgrade: bool) -> bytes:
    """The request as the app gets it: hop-by-hop headers and the proxy's cookies dropped, Host
    naming the app, X-Forwarded-* naming the browser's side, the body's framing restated."""
    lines = [method + b" " + target + b" HTTP/" + version.encode("ascii"), b"host: " + host]
    original_host = b""
    upgrade_to = b""
    for k, v in headers:
        name = k.lower()
        if name in HOP_BY_HOP:
            if name == b"host":
                original_host = v
            elif name == b"upgrade":
                upgrade_to = v
            continue
        if name == b"cookie":
            v = strip_cookie(v)
            if not v:
                continue
        elif name == b"content-length" and chunked:
            continue
        lines.append(k + b": " + v)
    if chunked:
        lines.append(b"transfer-encoding: chunked")
    if upgrade and upgrade_to:
        lines += [b"connection: upgrade", b"upgrade: " + upgrade_to]
    lines.append(b"x-forwarded-for: " + client_ip)
    if original_host:
        lines.append(b"x-forwarded-host: " + original_host)
    lines.append(b"x-forwarded-proto: http")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


# -- the listener of one circuit ---------------------------------------------------------------------
class HttpListener:
    """The HTTP side of one circuit's port: its live connections and the asset cache."""

    def __init__(self, circuit: Circuit, secret: str, opened: tokens.SingleUse | None = None) -> None:
        self.circuit = circuit
        self.secret = secret
        self.opened = opened if opened is not None else tokens.SingleUse()  # used opening links
        self.cookie_name = tokens.cookie_name(circuit.id).encode("latin-1")
        self.upstream_host = f"{circuit.target_host}:{circuit.target_port}".encode("latin-1")
        self.connections: set[HttpConnection] = set()
        self.closed = False
        self.server: asyncio.AbstractServer | None = None
        self._sweeper = BackgroundLoop(f"idle-sweep-{circuit.id}", self._sweep, IDLE_TIMEOUT / 4, logger=log)

    def protocol(self) -> HttpConnection:
        return HttpConnection(self)

    async def start(self, sock) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self.protocol, sock=sock)
        self._sweeper.start()

    async def _sweep(self) -> None:
        """Closes browser connections idle for IDLE_TIMEOUT (they hold an app connection each)."""
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.idle_since is not None and now - conn.idle_since > IDLE_TIMEOUT:
                conn.close()

    async def stop(self) -> None:
        self.closed = True
        await self._sweeper.stop()
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        await asyncio.sleep(0)
        for conn in list(self.connections):
            conn.abort()

    def user(self, cookie: bytes | None) -> str | None:
        if cookie is None:
            return None
        return tokens.cookie_user(self.secret, self.circuit.id, cookie.decode("latin-1"))


class Exchange:
    """One request on a browser connection: what goes to the app (or the proxy's own answer)."""

    __slots__ = ("head", "local", "chunked", "keep_alive", "upgrade", "head_only", "pending", "pending_size",
                 "request_done", "bodyless", "sent", "got_response", "watch", "activity", "retried", "filter")

    def __init__(self) -> None:
        self.head: bytes = b""
        self.local: bytes | Callable[[], asyncio.Future] | None = None  # the proxy answers itself
        self.chunked = False
        self.keep_alive = True
        self.upgrade = False
        self.head_only = False
        self.pending: list[bytes] = []  # request bytes not yet written to the app
        self.pending_size = 0
        self.request_done = False
        self.bodyless = True
        self.sent = False  # the head went to the app
        self.got_response = False
        self.watch: ResponseWatch | None = None
        self.activity: Activity | None = None
        self.retried = False
        self.filter: HeadFilter | None = None  # until the app's response head has passed


class ResponseWatch:
    """Follows the app's response (llhttp) to learn where it ends; the bytes go on unchanged."""

    __slots__ = ("parser", "head_only", "complete", "status", "keep_alive")

    def __init__(self, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only
        self.complete = False
        self.status = 0
        self.keep_alive = False

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # read now: llhttp forgets it once the message ends
        if self.head_only and self.status >= 200:  # a HEAD response has no body whatever it says
            self.complete = True

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if status >= 200 or status == 101:  # 1xx (100 Continue) come before the real answer
            self.complete = True


class Upstream(asyncio.Protocol):
    """The connection to the app behind one browser connection."""

    def __init__(self, conn: HttpConnection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.reused = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        if self.conn.circuit.preamble:  # the session's app gate opens to its secret (runner/gate.py)
            transport.write(self.conn.circuit.preamble)

    def data_received(self, data: bytes) -> None:
        self.conn.upstream_data(self, data)

    def eof_received(self) -> bool:
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.upstream_lost(self)

    def pause_writing(self) -> None:
        self.conn.pause_reading("app")

    def resume_writing(self) -> None:
        self.conn.resume_reading("app")


class HttpConnection(ClientFront):
    exchange_type = Exchange

    """One browser connection to one circuit's port."""

    def __init__(self, listener: HttpListener) -> None:
        self.listener = listener
        self.circuit = listener.circuit
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = b""
        self.queue: deque[Exchange] = deque()  # the first one is with the app (or being answered)
        self.parsing: Exchange | None = None
        self.upstream: Upstream | None = None
        self.tunnel: Exchange | None = None  # the upgrade whose bytes go both ways unparsed
        self.closed = False
        self.read_pauses: set[str] = set()
        self.write_paused = False
        self.idle_since: float | None = time.monotonic()
        self._url: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._auth: tuple[bytes, str | None] | None = None  # the last cookie checked and its user

    # -- the browser's side --------------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client_ip = (peer[0] if peer else "").encode("latin-1")
        self.listener.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.connections.discard(self)
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()
        self.upstream = None
        while self.queue:
            self._end_activity(self.queue.popleft())

    def data_received(self, data: bytes) -> None:
        self.idle_since = None
        if self.tunnel is not None:
            self._to_app(self.tunnel, data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            offset = e.args[0] if e.args else len(data)
            ex = self.parsing or (self.queue[-1] if self.queue else None)
            if ex is not None and ex.upgrade and ex.local is None:
                self.tunnel = ex  # everything after the head is the upgraded protocol's
                rest = data[offset:]
                if rest:
                    self._to_app(ex, rest)
            else:
                self.pause_reading("done")  # refused upgrade: answered, then closed
        except httptools.HttpParserError as e:
            log.debug("bad request on circuit %s: %s", self.circuit.id, e)
            if self._head_size > MAX_HEAD:
                self._refuse_and_close(response(431, b"The request's headers are too large.", close=True))
            else:
                self._refuse_and_close(response(400, b"Bad request.", close=True))

    def pause_writing(self) -> None:  # the browser is slower than the app
        self.write_paused = True
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    # -- parsing (httptools callbacks) -----------------------------------------------------------
    def on_headers_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        parser = self.parser
        target = b"".join(self._url)
        headers = self._headers
        ex.keep_alive = parser.should_keep_alive()
        ex.upgrade = parser.should_upgrade()
        method = parser.get_method()
        ex.head_only = method == b"HEAD"
        path = target.partition(b"?")[0]
        if self.listener.closed:
            ex.local, ex.keep_alive = response(404, b"This app is no longer open.", close=True), False
        elif path == OPEN_PATH:
            ex.local = self._open_answer(target)
        elif path.startswith(ASSETS_PATH):
            ex.local = self._asset_answer(path[len(ASSETS_PATH):])
        elif not may_use(self.circuit, self._user(headers)):
            ex.local = response(403, b"Forbidden: open this app from Workbay (the link is personal).",
                                close=ex.upgrade)
            ex.keep_alive = ex.keep_alive and not ex.upgrade
        else:
            ex.chunked = any(k.lower() == b"transfer-encoding" for k, _ in headers)
            ex.head = upstream_head(method, target, parser.get_http_version(), headers,
                                    host=self.listener.upstream_host, client_ip=self.client_ip,
                                    chunked=ex.chunked, upgrade=ex.upgrade)
        self.queue.append(ex)
        if len(self.queue) == 1:
            self._start(ex)
        else:
            self.pause_reading("queue")  # a pipelined request waits; so does the rest of the stream

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is not None and ex.local is None:
            ex.bodyless = False
            self._to_app(ex, _chunk(body) if ex.chunked else body)

    def on_message_complete(self) -> None:
        ex = self.parsing
        if ex is None:
            return
        self.parsing = None
        ex.request_done = True
        if ex.chunked and ex.local is None:
            self._to_app(ex, b"0\r\n\r\n")
        if not ex.keep_alive:
            self.pause_reading("done")  # nothing more is read from this connection
        if ex.got_response and ex.watch is not None and ex.watch.complete:
            self._finish(ex)

    def _user(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        cookie = find_cookie(headers, self.listener.cookie_name)
        if cookie is None:
            return None
        if self._auth is not None and self._auth[0] == cookie:
            return self._auth[1]
        user = self.listener.user(cookie)
        self._auth = (cookie, user)
        return user

    # -- the proxy's own answers -----------------------------------------------------------------
    def _open_answer(self, target: bytes) -> bytes:
        from urllib.parse import parse_qs

        query = parse_qs(target.partition(b"?")[2].decode("latin-1"))
        token = (query.get("token") or [""])[0]
        try:
            claims = tokens.verify_claims(self.listener.secret, token, self.circuit.id, "open")
        except tokens.TokenError:
            return response(403, b"This link has expired; open the app again from Workbay.")
        if not self.listener.opened.claim(claims):  # an opening link works once
            return response(403, b"This link was used already; open the app again from Workbay.",
                            [(b"cache-control", b"no-store")])
        user_id = str(claims["uid"])
        value = tokens.cookie_value(self.listener.secret, self.circuit.id, user_id)
        cookie = f"{tokens.cookie_name(self.circuit.id)}={value}; Path=/; HttpOnly; SameSite=Lax"
        return response(302, b"", [(b"location", (self.circuit.url_path or "/").encode("latin-1")),
                                   (b"set-cookie", cookie.encode("latin-1")), (b"cache-control", b"no-store")])

    def _asset_answer(self, name: bytes):
        entry = ASSETS.get(name)
        if entry is None or not entry[0].is_file():
            return response(404, b"No such asset.")

        async def read() -> bytes:
            body = await asyncio.to_thread(entry[0].read_bytes)
            return response(200, body, [(b"content-type", entry[1]), (b"cache-control", b"public, max-age=86400")])
        return read

    # -- one request at a time with the app --------------------------------------------------------
    def _start(self, ex: Exchange) -> None:
        if self.closed:
            return
        if ex.local is not None:
            if isinstance(ex.local, bytes):
                self._answer(ex, ex.local)
            else:
                asyncio.ensure_future(ex.local()).add_done_callback(lambda task: self._answered(ex, task))
            return
        ex.activity = Activity(self.circuit)
        ex.activity.__enter__()
        ex.watch = ResponseWatch(ex.head_only)
        ex.filter = HeadFilter()
        up = self.upstream
        if up is not None and up.transport is not None and not up.transport.is_closing():
            up.reused = True
            self._send_head(ex, up)
        else:
            asyncio.ensure_future(self._connect(ex))

    async def _connect(self, ex: Exchange) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, up = await asyncio.wait_for(loop.create_connection(
                lambda: Upstream(self), self.circuit.target_host, self.circuit.target_port), CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as e:
            log.info("app unreachable at %s:%s: %s", self.circuit.target_host, self.circuit.target_port, e)
            if not self.closed and self.queue and self.queue[0] is ex:
                ex.keep_alive = ex.keep_alive and ex.request_done and not ex.upgrade
                self._answer(ex, response(502, b"The app is not answering yet; try again in a moment.",
                                          close=not ex.keep_alive))
            return
        if self.closed or not self.queue or self.queue[0] is not ex:
            up.transport.close()
            return
        self.upstream = up
        if self.write_paused:
            up.transport.pause_reading()
        self._send_head(ex, up)

    def _send_head(self, ex: Exchange, up: Upstream) -> None:
        ex.sent = True
        up.transport.write(b"".join([ex.head, *ex.pending]) if ex.pending else ex.head)
        if ex.pending_size:
            ex.pending, ex.pending_size = [], 0
            self.resume_reading("pending")

    def _to_app(self, ex: Exchange, data: bytes) -> None:
        up = self.upstream
        if ex.sent and up is not None and up.transport is not None and self.queue and self.queue[0] is ex:
            up.transport.write(data)
            return
        ex.pending.append(data)
        ex.pending_size += len(data)
        if ex.pending_size > PENDING_LIMIT:
            self.pause_reading("pending")

    def _answered(self, ex: Exchange, task: asyncio.Future) -> None:
        if task.cancelled() or task.exception() is not None:
            self._answer(ex, response(404, b"No such asset."))
        else:
            self._answer(ex, task.result())

    def _answer(self, ex: Exchange, data: bytes) -> None:
        """The proxy's own response to the request at the head of the queue."""
        if self.closed:
            return
        ex.got_response = True
        self.transport.write(data)
        if not ex.keep_alive:
            self.transport.close()
            return
        self._finish(ex)

    def upstream_data(self, up: Upstream, data: bytes) -> None:
        if up is not self.upstream or self.closed:
            up.transport.close()
            return
        if self.tunnel is not None and self.queue and self.queue[0] is self.tunnel and self.tunnel.watch is None:
            self.transport.write(data)
            return
        ex = self.queue[0] if self.queue else None
        if ex is None or ex.watch is None or ex.watch.complete:
            up.transport.close()  # the app spoke out of turn
            return
        if ex.filter is not None:
            try:
                data = ex.filter.feed(data)
            except ValueError as e:
                log.info("bad response from the app at %s:%s: %s", self.circuit.target_host,
                         self.circuit.target_port, e)
                self.close()
                return
            if ex.filter.done:
                ex.filter = None
            if not data:
                return
        ex.got_response = True
        self.transport.write(data)
        try:
            ex.watch.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if ex.upgrade and ex.watch.status == 101 and self.tunnel is ex:
                ex.watch = None  # from here on a byte pipe until either side closes
                return
            ex.watch.complete = True
        except httptools.HttpParserError as e:
            log.info("bad response from the app at %s:%s: %s", self.circuit.target_host,
                     self.circuit.target_port, e)
            self.close()
            return
        if ex.watch.complete:
            if ex.upgrade or not ex.watch.keep_alive:
                ex.keep_alive = ex.keep_alive and not ex.upgrade
                self.upstream = None
                up.transport.close()
            if ex.request_done:
                self._finish(ex)
            elif not ex.keep_alive or ex.upgrade:
                self.close()
            else:  # the app answered before the request's body was all sent: this connection ends here
                ex.keep_alive = False

    def upstream_lost(self, up: Upstream) -> None:
        if up is not self.upstream:
            return
        self.upstream = None
        if self.closed:
            return
        ex = self.queue[0] if self.queue else None
        if ex is None or ex.local is not None:
            return  # an idle app connection closed; the next request opens another
        if ex.got_response:
            self.close()  # a response read until close, an upgraded pipe, or a broken one: done here too
            return
        if up.reused and ex.sent and not ex.retried and ex.request_done and ex.bodyless and not ex.upgrade:
            # The app closed an idle kept-alive connection as the request went out: once more, anew.
            ex.retried, ex.sent = True, False
            ex.filter = HeadFilter()
            asyncio.ensure_future(self._connect(ex))
            return
        ex.keep_alive = False
        self._answer(ex, response(502, b"The app closed the connection.", close=True))

    def _finish(self, ex: Exchange) -> None:
        if self.queue and self.queue[0] is ex:
            self.queue.popleft()
        self._end_activity(ex)
        if self.closed:
            return
        if not ex.keep_alive:
            self.transport.close()
            return
        if self.queue:
            self._start(self.queue[0])
        else:
            self.idle_since = time.monotonic()
        if len(self.queue) <= 1:
            self.resume_reading("queue")

    @staticmethod
    def _end_activity(ex: Exchange) -> None:
        if ex.activity is not None:
            with contextlib.suppress(Exception):
                ex.activity.__exit__(None, None, None)
            ex.activity = None
