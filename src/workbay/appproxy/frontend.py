"""Port mode: every circuit gets a port of its own, so apps run at the root path they expect.

An HTTP circuit's port serves an ASGI app that checks the circuit's cookie (set by the opening
link) and relays HTTP and WebSocket traffic; a TCP circuit's port pipes raw bytes (SSH does its
own authentication, as with Backend.AI's app-proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import uvicorn

from . import relay, tokens
from .circuits import Activity, Circuit, NewCircuit, candidate_ports, may_use

log = logging.getLogger(__name__)
OPEN_PATH = "/__workbay/open"
ASSETS_PATH = "/__workbay/assets/"
COOKIE_PREFIX = "wbapp_"
# Front-end files in-session pages (the web terminal) load from the proxy: the WebUI's vendored copies.
VENDOR = Path(__file__).resolve().parent.parent / "web" / "static" / "vendor"
ASSETS = {"xterm.js": (VENDOR / "xterm" / "xterm.js", b"text/javascript; charset=utf-8"),
          "xterm.css": (VENDOR / "xterm" / "xterm.css", b"text/css; charset=utf-8")}


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handling alone (it runs inside another)."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        return None


class Listener:
    def __init__(self, circuit: Circuit, task: asyncio.Task, stop) -> None:
        self.circuit, self.task, self.stop = circuit, task, stop


class Circuits:
    """The live circuits of this app-proxy and the listeners behind them."""

    def __init__(self, secret: str, host: str, pool: tuple[int, int] | None) -> None:
        self.secret = secret
        self.host = host
        self.pool = pool
        self.by_id: dict[str, Listener] = {}
        self.by_port: dict[int, Circuit] = {}
        self._http: aiohttp.ClientSession | None = None
        self.frontend = Frontend(self)

    def _bind(self, preferred: int | None) -> socket.socket:
        last: OSError | None = None
        for port in candidate_ports(self.pool, set(self.by_port), preferred):
            # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on such sockets, and
            # accepted connections inherit it; with Nagle on, small responses wait ~40 ms for ACKs.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, port))
                sock.listen(128)
                sock.setblocking(False)
                return sock
            except OSError as e:
                sock.close()
                last = e
        raise RuntimeError(f"no free port for a circuit ({last})")

    async def open(self, req: NewCircuit) -> Circuit:
        sock = self._bind(req.preferred_port)
        circuit = Circuit.from_request(req, sock.getsockname()[1])
        self.by_port[circuit.port] = circuit
        if circuit.protocol == "tcp":
            async def pipe(r, w) -> None:
                with Activity(circuit):
                    await relay.pipe_streams(r, w, circuit.target_host, circuit.target_port)
            server = await asyncio.start_server(pipe, sock=sock)

            async def stop_tcp() -> None:
                server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 5)
            task = asyncio.create_task(server.serve_forever(), name=f"circuit-{circuit.id}")
            self.by_id[circuit.id] = Listener(circuit, task, stop_tcp)
        else:
            server = _QuietServer(uvicorn.Config(self.frontend, lifespan="off", log_level="warning",
                                                 timeout_graceful_shutdown=2, access_log=False))
            task = asyncio.create_task(server.serve(sockets=[sock]), name=f"circuit-{circuit.id}")

            async def stop_http() -> None:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(task), 5)
            self.by_id[circuit.id] = Listener(circuit, task, stop_http)
            for _ in range(200):  # serving before the manager hands out its URL
                if server.started or task.done():
                    break
                await asyncio.sleep(0.01)
        log.info("circuit %s: %s of session %s on port %d → %s:%d", circuit.id, circuit.app,
                 circuit.session_id, circuit.port, circuit.target_host, circuit.target_port)
        return circuit

    async def close(self, circuit_id: str) -> bool:
        listener = self.by_id.pop(circuit_id, None)
        if listener is None:
            return False
        self.by_port.pop(listener.circuit.port, None)
        await listener.stop()
        listener.task.cancel()
        with contextlib.suppress(BaseException):
            await listener.task
        return True

    async def close_session(self, session_id: str) -> int:
        ids = [cid for cid, lst in self.by_id.items() if lst.circuit.session_id == session_id]
        for cid in ids:
            await self.close(cid)
        return len(ids)

    def list(self, session_id: str | None = None) -> list[Circuit]:
        return [lst.circuit for lst in self.by_id.values() if session_id in (None, lst.circuit.session_id)]

    def get(self, circuit_id: str) -> Circuit | None:
        lst = self.by_id.get(circuit_id)
        return lst.circuit if lst else None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:  # made inside the running loop
            self._http = relay.upstream_session()
        return self._http

    async def shutdown(self) -> None:
        for cid in list(self.by_id):
            await self.close(cid)
        if self._http is not None:
            await self._http.close()


class Frontend:
    """The ASGI app behind every HTTP circuit's port."""

    def __init__(self, circuits: Circuits) -> None:
        self.circuits = circuits

    def _user(self, scope: dict[str, Any], circuit: Circuit) -> str | None:
        name = tokens.cookie_name(circuit.id)
        for k, v in scope["headers"]:
            if k == b"cookie":
                for part in v.decode("latin-1").split(";"):
                    key, _, value = part.strip().partition("=")
                    if key == name:
                        return tokens.cookie_user(self.circuits.secret, circuit.id, value)
        return None

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        circuit = self.circuits.by_port.get((scope.get("server") or ("", 0))[1])
        if circuit is None:
            return await self._refuse(scope, receive, send, 404, b"This app is no longer open.")
        if scope["type"] == "http" and scope["path"] == OPEN_PATH:
            return await self._open(scope, send, circuit)
        if scope["type"] == "http" and scope["path"].startswith(ASSETS_PATH):
            return await self._asset(send, scope["path"][len(ASSETS_PATH):])
        if not may_use(circuit, self._user(scope, circuit)):
            return await self._refuse(scope, receive, send, 403,
                                      b"Forbidden: open this app from Workbay (the link is personal).")
        with Activity(circuit):
            if scope["type"] == "websocket":
                await relay.proxy_websocket(scope, receive, send, circuit.target_host, circuit.target_port,
                                            COOKIE_PREFIX)
            else:
                await relay.proxy_http(scope, receive, send, self.circuits.http, circuit.target_host,
                                       circuit.target_port, COOKIE_PREFIX)

    async def _open(self, scope: dict[str, Any], send, circuit: Circuit) -> None:
        query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        try:
            user_id = tokens.verify(self.circuits.secret, token, circuit.id, "open")
        except tokens.TokenError:
            return await relay._plain(send, 403, b"This link has expired; open the app again from Workbay.")
        cookie = (f"{tokens.cookie_name(circuit.id)}={tokens.cookie_value(self.circuits.secret, circuit.id, user_id)}"
                  f"; Path=/; HttpOnly; SameSite=Lax")
        await send({"type": "http.response.start", "status": 302, "headers": [
            (b"location", (circuit.url_path or "/").encode("latin-1")), (b"set-cookie", cookie.encode("latin-1")),
            (b"cache-control", b"no-store"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _asset(self, send, name: str) -> None:
        entry = ASSETS.get(name)
        if entry is None or not entry[0].is_file():
            return await relay._plain(send, 404, b"No such asset.")
        body = await asyncio.to_thread(entry[0].read_bytes)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", entry[1]), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"public, max-age=86400")]})
        await send({"type": "http.response.body", "body": body})

    async def _refuse(self, scope: dict[str, Any], receive, send, status: int, body: bytes) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 4403 if status == 403 else 4404})
            return
        await relay._plain(send, status, body)
