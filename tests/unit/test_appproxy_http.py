"""HTTP circuits of the app-proxy (appproxy/http1.py) against a real app on loopback (aiohttp),
no containers: the cookie on every request, the opening link, public circuits, what the app sees
(no proxy cookies, its own Host, X-Forwarded-*), bodies both ways (Content-Length, chunked, until
close, HEAD, 100-continue), keep-alive reuse of the app connection (and a new one when the app
closes it), pipelining, WebSocket relay, 502 when the app is away, a closed circuit ending its
connections, activity counting, and backpressure (a slow browser does not make the proxy buffer)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket

import httpx
import pytest
import websockets
from aiohttp import web

from workbay.appproxy import tokens
from workbay.appproxy.circuits import NewCircuit
from workbay.appproxy.frontend import Circuits
from workbay.appproxy.http1 import HeadFilter, filter_response_head, find_cookie, strip_cookie, upstream_head

SECRET = "unit-test-secret-of-32-bytes-or-more"
BIG = 8 * 1024 * 1024


class App:
    """The app in the session: records what it was sent and which connections it saw."""

    def __init__(self) -> None:
        self.peers: set[tuple[str, int]] = set()
        self.requests: list[dict] = []
        self.release = asyncio.Event()

    def routes(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_get("/big", self.big)
        app.router.add_get("/huge", self.huge)
        app.router.add_get("/chunked", self.chunked)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/ws", self.ws)
        return app

    async def echo(self, request: web.Request) -> web.Response:
        self.peers.add(request.transport.get_extra_info("peername")[:2])
        body = await request.read()
        seen = {"method": request.method, "path": request.path_qs, "headers": dict(request.headers),
                "length": len(body), "sha": hashlib.sha256(body).hexdigest()}
        self.requests.append(seen)
        return web.json_response(seen)

    async def big(self, request: web.Request) -> web.Response:
        self.peers.add(request.transport.get_extra_info("peername")[:2])
        return web.Response(body=bytes(range(256)) * (BIG // 256), content_type="application/octet-stream")

    async def huge(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(256 * 1024 * 1024)})
        await resp.prepare(request)
        block = bytes(1024 * 1024)
        for _ in range(256):
            await resp.write(block)  # waits while the proxy does not take more
        return resp

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(5):
            await resp.write(f"part {i}\n".encode())
        await resp.write_eof()
        return resp

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(text="done")

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("term",))
        await ws.prepare(request)
        await ws.send_str(json.dumps({"cookie": request.headers.get("Cookie", ""), "host": request.host}))
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
            elif msg.type == web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws


@pytest.fixture
async def app():
    the_app = App()
    runner = web.AppRunner(the_app.routes())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    the_app.port = site._server.sockets[0].getsockname()[1]
    try:
        yield the_app
    finally:
        the_app.release.set()
        await runner.cleanup()


@pytest.fixture
async def circuits():
    c = Circuits(SECRET, "127.0.0.1", None)
    try:
        yield c
    finally:
        await c.shutdown()


async def open_circuit(circuits: Circuits, port: int, public: bool = False, user: str = "u1"):
    circuit = await circuits.open(NewCircuit(session_id="s1", kernel_id="k1", app="app", protocol="http",
                                             target_host="127.0.0.1", target_port=port, user_id=user,
                                             open_to_public=public, url_path="/echo?landed=1"))
    cookie = f"{tokens.cookie_name(circuit.id)}={tokens.cookie_value(SECRET, circuit.id, user)}"
    return circuit, f"http://127.0.0.1:{circuit.port}", cookie


async def raw_exchange(port: int, data: bytes, until: bytes, limit: float = 10) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        got = b""
        while until not in got:
            chunk = await asyncio.wait_for(reader.read(65536), limit)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        writer.close()


# -- pure pieces -----------------------------------------------------------------------------------
def test_strip_cookie_and_find_cookie():
    assert strip_cookie(b"a=1; wbapp_x=2;b=3 ; wbapp_y=4") == b"a=1; b=3"
    assert strip_cookie(b"wbapp_x=2") == b""
    headers = [(b"Host", b"h"), (b"Cookie", b"a=1; wbapp_c1=v1"), (b"cookie", b"wbapp_c2=v2")]
    assert find_cookie(headers, b"wbapp_c1") == b"v1"
    assert find_cookie(headers, b"wbapp_c2") == b"v2"
    assert find_cookie(headers, b"wbapp_c3") is None


def test_workbay_cookies_are_kept_from_apps_both_ways():
    assert strip_cookie(b"workbay_session=s; a=1; WORKBAY_CSRF=c; wbapp_x=2; b=3") == b"a=1; b=3"
    head = (b"HTTP/1.1 200 OK\r\nSet-Cookie: workbay_session=x; Path=/\r\nset-cookie:theirs=1\r\n"
            b"SET-COOKIE: Workbay_Csrf=y;\r\n folded=continuation\r\nSet-Cookie: wbapp_c=z\r\n"
            b"Content-Length: 2\r\n\r\n")
    assert filter_response_head(head) == b"HTTP/1.1 200 OK\r\nset-cookie:theirs=1\r\nContent-Length: 2\r\n\r\n"
    f = HeadFilter()
    cont = b"HTTP/1.1 100 Continue\r\nSet-Cookie: workbay_session=a\r\n\r\n"
    assert f.feed(cont[:10]) == b"" and not f.done  # a head passes only once complete
    assert f.feed(cont[10:] + b"HTTP/1.1 200 OK\r\nSet-Cookie: workbay_session=b\r\n") == \
        b"HTTP/1.1 100 Continue\r\n\r\n"
    assert f.feed(b"Content-Length: 2\r\n\r\nok") == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert f.done


def test_upstream_head_rewrites_host_cookies_and_framing():
    head = upstream_head(b"POST", b"/p?q=1", "1.1", [
        (b"Host", b"proxy:1234"), (b"Cookie", b"wbapp_c=secret; theirs=1"), (b"Connection", b"keep-alive"),
        (b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"5"), (b"X-Custom", b"v")],
        host=b"10.0.0.5:8080", client_ip=b"192.0.2.7", chunked=True, upgrade=False)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /p?q=1 HTTP/1.1"
    assert b"host: 10.0.0.5:8080" in lines
    assert b"Cookie: theirs=1" in lines and b"secret" not in head
    assert b"transfer-encoding: chunked" in lines and b"Content-Length: 5" not in lines
    assert b"Connection: keep-alive" not in lines and b"X-Custom: v" in lines
    assert b"x-forwarded-for: 192.0.2.7" in lines and b"x-forwarded-host: proxy:1234" in lines
    assert head.endswith(b"\r\n\r\n")
    ws = upstream_head(b"GET", b"/ws", "1.1", [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"),
                                               (b"Cookie", b"wbapp_c=x")],
                       host=b"h:1", client_ip=b"::1", chunked=False, upgrade=True)
    assert b"connection: upgrade\r\nupgrade: websocket" in ws and b"Cookie" not in ws


# -- through the proxy -----------------------------------------------------------------------------
async def test_every_request_needs_the_circuits_cookie(app, circuits):
    circuit, base, cookie = await open_circuit(circuits, app.port)
    async with httpx.AsyncClient(timeout=10) as browser:
        assert (await browser.get(base + "/echo")).status_code == 403
        forged = f"{tokens.cookie_name(circuit.id)}=u1.{'0' * 64}"
        assert (await browser.get(base + "/echo", headers={"Cookie": forged})).status_code == 403
        # a valid cookie of another user (or of another circuit) is no key to this one
        other_user = f"{tokens.cookie_name(circuit.id)}={tokens.cookie_value(SECRET, circuit.id, 'u2')}"
        assert (await browser.get(base + "/echo", headers={"Cookie": other_user})).status_code == 403
        other_circuit = f"{tokens.cookie_name(circuit.id)}={tokens.cookie_value(SECRET, 'c-other', 'u1')}"
        assert (await browser.get(base + "/echo", headers={"Cookie": other_circuit})).status_code == 403
        ok = await browser.get(base + "/echo", headers={"Cookie": cookie})
        assert ok.status_code == 200 and ok.json()["path"] == "/echo"
        # the same keep-alive connection, the cookie gone: refused again
        assert (await browser.get(base + "/echo")).status_code == 403
    assert len(app.requests) == 1


async def test_opening_link_sets_the_cookie_and_redirects(app, circuits):
    circuit, base, _ = await open_circuit(circuits, app.port)
    token = tokens.issue(SECRET, circuit.id, "u1", "open", 60)
    async with httpx.AsyncClient(timeout=10, follow_redirects=True) as browser:
        page = await browser.get(f"{base}/__workbay/open?token={token}")
        assert page.status_code == 200 and page.json()["path"] == "/echo?landed=1"
        assert browser.cookies.get(tokens.cookie_name(circuit.id)) == tokens.cookie_value(SECRET, circuit.id, "u1")
    async with httpx.AsyncClient(timeout=10) as stranger:
        assert (await stranger.get(f"{base}/__workbay/open?token=forged")).status_code == 403
        tcp_token = tokens.issue(SECRET, circuit.id, "u1", "tcp", 60)
        assert (await stranger.get(f"{base}/__workbay/open?token={tcp_token}")).status_code == 403
        assert not stranger.cookies


async def test_public_circuit_needs_no_cookie(app, circuits):
    _, base, _ = await open_circuit(circuits, app.port, public=True)
    async with httpx.AsyncClient(timeout=10) as anyone:
        assert (await anyone.get(base + "/echo")).status_code == 200


async def test_the_app_sees_its_own_host_no_proxy_cookies_and_forwarded_headers(app, circuits):
    circuit, base, cookie = await open_circuit(circuits, app.port)
    async with httpx.AsyncClient(timeout=10) as browser:
        seen = (await browser.get(base + "/echo?x=1&y=%20", headers={"Cookie": f"mine=1; {cookie}; also=2",
                                                                     "X-Thing": "t"})).json()
    assert seen["path"] == "/echo?x=1&y=%20"
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["cookie"] == "mine=1; also=2"
    assert headers["host"] == f"127.0.0.1:{app.port}"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{circuit.port}"
    assert headers["x-forwarded-for"] == "127.0.0.1" and headers["x-thing"] == "t"


async def test_bodies_both_ways_on_one_kept_alive_app_connection(app, circuits):
    _, base, cookie = await open_circuit(circuits, app.port)
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def chunks():
        for i in range(0, len(payload), 100_000):
            yield payload[i:i + 100_000]

    async with httpx.AsyncClient(timeout=30, headers={"Cookie": cookie}) as browser:
        sized = (await browser.post(base + "/echo", content=payload)).json()
        assert sized["length"] == len(payload) and sized["sha"] == hashlib.sha256(payload).hexdigest()
        streamed = (await browser.post(base + "/echo", content=chunks())).json()  # chunked upload
        assert streamed["length"] == len(payload) and streamed["sha"] == hashlib.sha256(payload).hexdigest()
        big = await browser.get(base + "/big")
        assert big.content == bytes(range(256)) * (BIG // 256)
        chunked = await browser.get(base + "/chunked")
        assert chunked.text == "".join(f"part {i}\n" for i in range(5))
        for _ in range(20):
            assert (await browser.get(base + "/echo")).status_code == 200
    assert len(app.peers) == 1  # one browser connection, one app connection, kept alive


async def test_head_and_pipelined_requests_keep_their_order(app, circuits):
    circuit, _, cookie = await open_circuit(circuits, app.port)
    req = lambda method, path: (f"{method} {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n").encode()  # noqa: E731
    got = await raw_exchange(circuit.port, req("HEAD", "/big") + req("GET", "/echo?n=1") + req("GET", "/echo?n=2"),
                             b'"/echo?n=2"')
    assert got.startswith(b"HTTP/1.1 200")
    head, _, rest = got.partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % BIG in head
    assert rest.startswith(b"HTTP/1.1 200")  # nothing of /big's body after the HEAD answer
    assert rest.index(b'"/echo?n=1"') < rest.index(b'"/echo?n=2"')


async def test_websocket_through_the_proxy_needs_the_cookie(app, circuits):
    _, base, cookie = await open_circuit(circuits, app.port)
    url = base.replace("http://", "ws://") + "/ws"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(url, additional_headers={"Cookie": f"{cookie}; keep=1"},
                                  subprotocols=["term"]) as ws:
        assert ws.subprotocol == "term"
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["cookie"] == "keep=1" and hello["host"] == f"127.0.0.1:{app.port}"
        await ws.send("hi")
        assert await asyncio.wait_for(ws.recv(), 10) == "echo:hi"
        await ws.send(b"\x00\x01\x02" * 100_000)
        assert await asyncio.wait_for(ws.recv(), 10) == (b"\x00\x01\x02" * 100_000)[::-1]


async def test_app_away_is_a_502_and_a_closed_circuit_refuses(circuits):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    circuit, base, cookie = await open_circuit(circuits, dead_port)
    async with httpx.AsyncClient(timeout=30, headers={"Cookie": cookie}) as browser:
        resp = await browser.get(base + "/echo")
        assert resp.status_code == 502
        assert await circuits.close(circuit.id)
        with pytest.raises(httpx.ConnectError):
            await browser.get(base + "/echo")


async def test_requests_in_flight_count_as_activity(app, circuits):
    circuit, base, cookie = await open_circuit(circuits, app.port)
    async with httpx.AsyncClient(timeout=30, headers={"Cookie": cookie}) as browser:
        pending = asyncio.create_task(browser.get(base + "/slow"))
        for _ in range(200):
            if circuit.active_connections == 1:
                break
            await asyncio.sleep(0.01)
        assert circuit.active_connections == 1
        app.release.set()
        assert (await pending).text == "done"
    assert circuit.active_connections == 0


async def test_a_slow_browser_does_not_make_the_proxy_buffer_the_body(app, circuits):
    circuit, _, cookie = await open_circuit(circuits, app.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", circuit.port, limit=64 * 1024)
    try:
        writer.write(f"GET /huge HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(1.0)  # the browser reads nothing for a while
        connections = list(circuits.by_id[circuit.id].http.connections)
        assert len(connections) == 1
        buffered = connections[0].transport.get_write_buffer_size()
        assert buffered < 16 * 1024 * 1024, buffered  # far less than the 256 MiB the app has to send
        total = 0
        while total < 256 * 1024 * 1024:
            chunk = await asyncio.wait_for(reader.read(1024 * 1024), 30)
            assert chunk
            total += len(chunk)
        assert total == 256 * 1024 * 1024
    finally:
        writer.close()



@pytest.fixture
async def raw_app():
    """An app written by hand, for the framings a framework would not produce."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1]
                served += 1
                if path.startswith(b"/stale") and served == 2:  # a kept-alive connection it had dropped
                    return
                if path == b"/until-close":  # no length, no chunks: the body ends when the app closes
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
                    await writer.drain()
                    return
                if path == b"/then-close":  # answers, then closes its kept-alive connection
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
                    return
                if path == b"/continue":
                    assert b"expect: 100-continue" in head.lower()
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                    body = await reader.readexactly(5)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + body[::-1])
                    await writer.drain()
                    continue
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfine\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    server.port = server.sockets[0].getsockname()[1]
    server.connections = connections
    try:
        yield server
    finally:
        server.close()


async def test_framings_a_framework_would_not_write(raw_app, circuits):
    circuit, base, cookie = await open_circuit(circuits, raw_app.port)
    got = await raw_exchange(circuit.port, f"GET /until-close HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode(),
                             b"\x00never")  # read until the proxy closes too
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n\r\nall of it")
    got = await raw_exchange(circuit.port, (f"POST /continue HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n"
                                            "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nabcde").encode(), b"edcba")
    assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK") and got.endswith(b"edcba")
    # the app closes its side after each answer; the browser's connection lives on and gets a new one
    async with httpx.AsyncClient(timeout=10, headers={"Cookie": cookie}) as browser:
        before = len(raw_app.connections)
        for _ in range(3):
            resp = await browser.get(base + "/then-close")
            assert resp.text == "ok"
        assert (await browser.get(base + "/fine")).text == "fine\n"
        assert len(raw_app.connections) - before == 4


async def test_closing_the_circuit_ends_its_websockets(app, circuits):
    circuit, base, cookie = await open_circuit(circuits, app.port)
    async with websockets.connect(base.replace("http://", "ws://") + "/ws",
                                  additional_headers={"Cookie": cookie}) as ws:
        await asyncio.wait_for(ws.recv(), 10)
        assert circuit.active_connections == 1
        await circuits.close(circuit.id)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert circuit.active_connections == 0


async def test_a_request_on_a_connection_the_app_dropped_is_sent_again_once(raw_app, circuits):
    _, base, cookie = await open_circuit(circuits, raw_app.port)
    async with httpx.AsyncClient(timeout=10, headers={"Cookie": cookie}) as browser:
        assert (await browser.get(base + "/stale")).text == "fine\n"
        before = len(raw_app.connections)
        assert (await browser.get(base + "/stale")).text == "fine\n"  # dropped, then sent anew
        assert len(raw_app.connections) == before + 1
        # the second request on that new connection, with a body: never sent twice, the browser learns
        resp = await browser.post(base + "/stale", content=b"once")
        assert resp.status_code == 502
        assert len(raw_app.connections) == before + 1
