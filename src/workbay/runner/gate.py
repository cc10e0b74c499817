"""The app gate: the only way into a session's apps from outside its container.

Every service port of a kernel (the terminal, Jupyter, the File Browser, sshd, preopen ports) is
published on the host through a gate port of its own (``protocol.gate_ports``), not directly.  The
gate, run by the runner (root), answers a connection only after its first line proves the session's
app secret -- which only the manager and the app-proxy know -- and then carries the connection's
bytes, unchanged and both ways, to the app at ``127.0.0.1:<its port>``.  It parses nothing after
that line: HTTP, WebSocket, SSH and raw TCP tunnels all pass alike, and the app never sees the
secret.  A connection that starts any other way (a browser or ``curl`` at the published port) gets
``403`` and is closed; one that says nothing is closed after ``HELLO_TIMEOUT``.

Lines (``protocol.GATE_HELLO`` / ``GATE_PROBE`` + the secret + CRLF):
- hello: carry this connection to the app (closed at once when the app does not answer);
- probe: answer ``READY`` when the app accepts connections, ``WAIT`` otherwise, and close (the
  manager waits for an app to listen this way before handing out its link).

Runs with the image's Python (3.9+), stdlib only."""

from __future__ import annotations

import asyncio
import hmac
import socket
from typing import Callable, Dict, List, Optional, Tuple

from . import protocol

HELLO_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
MAX_LINE = 512
HIGH_WATER = 256 * 1024
FORBIDDEN = protocol.GATE_FORBIDDEN
APP_HOSTS = ("127.0.0.1", "::1")


def parse_line(line: bytes, secret: bytes) -> Optional[str]:
    """``"hello"`` or ``"probe"`` for a line that carries the secret; None for anything else."""
    line = line.rstrip(b"\r\n")
    for kind, prefix in (("hello", protocol.GATE_HELLO), ("probe", protocol.GATE_PROBE)):
        if line.startswith(prefix):
            given = line[len(prefix):]
            return kind if secret and hmac.compare_digest(given, secret) else None
    return None


async def open_app(port: int, factory: Callable[[], asyncio.Protocol]
                   ) -> Tuple[asyncio.Transport, asyncio.Protocol]:
    loop = asyncio.get_running_loop()
    last: Optional[BaseException] = None
    for host in APP_HOSTS:
        try:
            return await asyncio.wait_for(loop.create_connection(factory, host, port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as e:
            last = e
    raise OSError(f"the app on port {port} does not answer: {last}")


class _AppSide(asyncio.Protocol):
    """The gate's connection to the app: its bytes go to the client as they come."""

    def __init__(self, client: "GateConnection") -> None:
        self.client = client
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.set_write_buffer_limits(HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        self.client.from_app(data)

    def eof_received(self) -> bool:
        self.client.app_eof()
        return True  # half-close: the client may still be sending

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.client.app_lost()

    def pause_writing(self) -> None:
        self.client.pause("app")

    def resume_writing(self) -> None:
        self.client.resume("app")


class GateConnection(asyncio.Protocol):
    """One connection to a gate port."""

    def __init__(self, gate: "Gate") -> None:
        self.gate = gate
        self.transport: Optional[asyncio.Transport] = None
        self.buf = b""
        self.state = "hello"  # hello → connecting → open → closed
        self.app: Optional[_AppSide] = None
        self.pending: List[bytes] = []
        self.pauses: set = set()
        self.timer: Optional[asyncio.TimerHandle] = None
        self.client_eof = False
        self.app_eof_seen = False

    # -- the client's side ------------------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.set_write_buffer_limits(HIGH_WATER)
        self.gate.connections.add(self)
        self.timer = asyncio.get_running_loop().call_later(HELLO_TIMEOUT, self._hello_timeout)

    def _hello_timeout(self) -> None:
        if self.state == "hello":
            self.close()

    def data_received(self, data: bytes) -> None:
        if self.state == "open":
            self.app.transport.write(data)
            return
        if self.state == "connecting":
            self.pending.append(data)
            return
        if self.state != "hello":
            return
        self.buf += data
        end = self.buf.find(b"\n")
        if end < 0:
            if len(self.buf) > MAX_LINE:
                self.refuse()
            return
        line, rest = self.buf[:end + 1], self.buf[end + 1:]
        self.buf = b""
        kind = parse_line(line, self.gate.secret)
        if kind is None:
            self.refuse()
        elif kind == "probe":
            self.state = "connecting"
            asyncio.ensure_future(self._probe())
        else:
            self.state = "connecting"
            if rest:
                self.pending.append(rest)
            asyncio.ensure_future(self._connect())

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.state == "open" and self.app is not None and self.app.transport is not None:
            if self.app.transport.can_write_eof():
                self.app.transport.write_eof()
            if self.app_eof_seen:
                self.close()
            return True
        if self.state == "connecting":
            return True  # sent after the app connection opens
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.state = "closed"
        self.gate.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        if self.app is not None and self.app.transport is not None:
            self.app.transport.close()

    def refuse(self) -> None:
        self.state = "closed"
        if self.transport is not None:
            self.transport.write(FORBIDDEN)
            self.transport.close()

    def close(self) -> None:
        self.state = "closed"
        if self.transport is not None:
            self.transport.close()

    # -- the app's side -----------------------------------------------------------------------------
    async def _probe(self) -> None:
        try:
            transport, _ = await open_app(self.gate.app_port, asyncio.Protocol)
            transport.close()
            answer = b"READY\r\n"
        except OSError:
            answer = b"WAIT\r\n"
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)
        self.close()

    async def _connect(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        try:
            transport, app = await open_app(self.gate.app_port, lambda: _AppSide(self))
        except OSError:
            self.close()  # the proxy in front tells its client the app is not answering
            return
        if self.state == "closed":
            transport.close()
            return
        self.app = app  # type: ignore[assignment]
        self.state = "open"
        if self.pending:
            transport.write(b"".join(self.pending))
            self.pending = []
        if self.client_eof and transport.can_write_eof():
            transport.write_eof()

    def from_app(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def app_eof(self) -> None:
        self.app_eof_seen = True
        if self.transport is not None and not self.transport.is_closing() and self.transport.can_write_eof():
            self.transport.write_eof()
        if self.client_eof:
            self.close()

    def app_lost(self) -> None:
        self.close()

    # -- backpressure: a side stops reading while the other's send buffer is full -------------------
    def pause_writing(self) -> None:
        if self.app is not None and self.app.transport is not None:
            self.app.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.app is not None and self.app.transport is not None:
            self.app.transport.resume_reading()

    def pause(self, why: str) -> None:
        if not self.pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self.pauses.add(why)

    def resume(self, why: str) -> None:
        self.pauses.discard(why)
        if not self.pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class Gate:
    """The gate of one app port."""

    def __init__(self, gate_port: int, app_port: int, secret: str) -> None:
        self.gate_port, self.app_port = gate_port, app_port
        self.secret = secret.encode("ascii")
        self.connections: set = set()
        self.server: Optional[asyncio.AbstractServer] = None

    async def start(self, host: str = "0.0.0.0") -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, self.gate_port))
        sock.listen(128)
        sock.setblocking(False)
        self.server = await loop.create_server(lambda: GateConnection(self), sock=sock)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()


async def start_gates(service_ports: List[Dict], secret: str, log) -> List[Gate]:
    """A gate for every (container port, gate port) pair of the kernel's service ports."""
    gates = []
    for sp in service_ports:
        for app_port, gate_port in zip(sp.get("container_ports") or [], sp.get("gate_ports") or []):
            gate = Gate(int(gate_port), int(app_port), secret)
            await gate.start()
            gates.append(gate)
    if gates:
        log("app gates: " + ", ".join(f"{g.gate_port}→{g.app_port}" for g in gates))
    return gates
