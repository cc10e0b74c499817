"""Port mode: every circuit gets a port of its own, so apps run at the root path they expect.

An HTTP circuit's port checks the circuit's cookie (set by the opening link) on every request and
relays HTTP and WebSocket traffic (http1.py); a TCP circuit's port pipes raw bytes (SSH does its
own authentication, as with Backend.AI's app-proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from . import relay, tokens
from .circuits import Activity, Circuit, NewCircuit, candidate_ports
from .http1 import HttpListener

log = logging.getLogger(__name__)


class Listener:
    def __init__(self, circuit: Circuit, task: asyncio.Task, stop, http: HttpListener | None = None) -> None:
        self.circuit, self.task, self.stop, self.http = circuit, task, stop, http


class Circuits:
    """The live circuits of this app-proxy and the listeners behind them."""

    def __init__(self, secret: str, host: str, pool: tuple[int, int] | None) -> None:
        self.secret = secret
        self.host = host
        self.pool = pool
        self.by_id: dict[str, Listener] = {}
        self.by_port: dict[int, Circuit] = {}
        self.opened = tokens.SingleUse()  # opening links already used, on every circuit

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
                    await relay.pipe_streams(r, w, circuit.target_host, circuit.target_port, circuit.preamble)
            server = await asyncio.start_server(pipe, sock=sock)

            async def stop_tcp() -> None:
                server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 5)
            task = asyncio.create_task(server.serve_forever(), name=f"circuit-{circuit.id}")
            self.by_id[circuit.id] = Listener(circuit, task, stop_tcp)
        else:
            listener = HttpListener(circuit, self.secret, self.opened)
            await listener.start(sock)  # serving before the manager hands out its URL
            self.by_id[circuit.id] = Listener(circuit, asyncio.create_task(listener.server.serve_forever(),
                                                                           name=f"circuit-{circuit.id}"),
                                              listener.stop, listener)
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

    async def shutdown(self) -> None:
        for cid in list(self.by_id):
            await self.close(cid)
