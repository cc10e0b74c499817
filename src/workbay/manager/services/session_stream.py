"""Backend.AI's streaming API (docs/backendai-api.md §2.3): a terminal, code execution and raw TCP
to an app of a session, each carried by one WebSocket the manager serves.

The parts that only read or write messages are pure functions (unit-tested); ``SessionStreams``
does the I/O.  It never sees Starlette: the API layer hands it a ``Channel``.

- execute: the same execute calls as ``POST /session/{id}`` (runner's query/batch/continue/input
  modes), looped on the server until ``finished``.
- pty: the session's terminal app (``ttyd``: Workbay's tmux terminal, runner/terminal.py, or the
  ttyd binary where an image has it) is started on demand like start-service does, and its
  WebSocket (terminado's or ttyd's protocol) is translated to Backend.AI's pty messages.  No new
  agent RPC: the manager reaches the published port, as the app-proxy does.
- tcpproxy/httpproxy: the app is started on demand, then bytes are piped between the WebSocket
  and the app's published port on the agent's node.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import contextlib
import json
import logging
import secrets
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import websockets
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from workbay.common.errors import BackendError, GenericBadRequest, ServiceUnavailable

from .access import Actor
from .session_apps import AppTarget, SessionApps, StartService

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from .sessions import SessionService

log = logging.getLogger(__name__)
TERMINAL_APP = "ttyd"
CHUNK = 64 * 1024
EXECUTE_FLUSH_SECONDS = 0.5
MAX_TERMINAL_SIZE = 1000
TERMINAL_CONNECT_TIMEOUT = 15.0


# -- messages (pure) --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PtyStdin:
    data: bytes


@dataclass(frozen=True)
class PtyResize:
    rows: int
    cols: int


@dataclass(frozen=True)
class PtyPing:
    pass


@dataclass(frozen=True)
class PtyRestart:
    pass


PtyMessage = PtyStdin | PtyResize | PtyPing | PtyRestart


def parse_pty_message(raw: str | bytes) -> PtyMessage:
    """A client → server pty message; ValueError says what is wrong with a bad one."""
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: nested too deeply
        raise ValueError("a pty message is a JSON object") from e
    if not isinstance(msg, dict):
        raise ValueError("a pty message is a JSON object")
    kind = msg.get("type")
    if kind == "stdin":
        chars = msg.get("chars")
        if not isinstance(chars, str):
            raise ValueError("stdin needs 'chars' (base64)")
        try:
            return PtyStdin(base64.b64decode(chars.encode("ascii"), validate=True))
        except (binascii.Error, UnicodeEncodeError) as e:
            raise ValueError("stdin 'chars' is not valid base64") from e
    if kind == "resize":
        size: list[int] = []
        for name in ("rows", "cols"):
            v = msg.get(name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_TERMINAL_SIZE:
                raise ValueError(f"resize needs '{name}', an integer from 1 to {MAX_TERMINAL_SIZE}")
            size.append(v)
        return PtyResize(size[0], size[1])
    if kind == "ping":
        return PtyPing()
    if kind == "restart":
        return PtyRestart()
    raise ValueError(f"unknown pty message type {kind!r}")


def pty_output(data: bytes) -> str:
    return json.dumps({"type": "out", "data": base64.b64encode(data).decode("ascii")})


class TerminadoCodec:
    """Backend.AI pty ↔ terminado's JSON arrays (``["stdin", text]``, ``["set_size", rows, cols]``,
    ``["stdout", text]``), what Workbay's terminal app speaks."""

    path = "/websocket"
    subprotocols: list[Subprotocol] | None = None

    def __init__(self) -> None:
        # Keystrokes arrive as bytes; a multi-byte character may be split over two messages.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @staticmethod
    def hello() -> str | None:
        return None

    def stdin(self, data: bytes) -> str | None:
        text = self._decoder.decode(data)
        return json.dumps(["stdin", text]) if text else None

    @staticmethod
    def resize(rows: int, cols: int) -> str:
        return json.dumps(["set_size", rows, cols])

    @staticmethod
    def output(msg: str | bytes) -> bytes | None:
        try:
            parsed = json.loads(msg)
        except (ValueError, UnicodeDecodeError, RecursionError):  # the container sends what it likes
            return None
        if isinstance(parsed, list) and len(parsed) >= 2 and parsed[0] == "stdout" and isinstance(parsed[1], str):
            return parsed[1].encode("utf-8", "replace")
        return None


class TtydCodec:
    """Backend.AI pty ↔ ttyd's protocol (images that ship the ttyd binary): subprotocol ``tty``, a
    JSON hello first, then frames whose first byte says what they are (client: ``0`` input,
    ``1`` resize JSON; server: ``0`` output, ``1`` title, ``2`` preferences)."""

    path = "/ws"
    subprotocols: list[Subprotocol] | None = [Subprotocol("tty")]

    @staticmethod
    def hello(rows: int = 24, cols: int = 80) -> bytes:
        return json.dumps({"AuthToken": "", "columns": cols, "rows": rows}).encode()

    @staticmethod
    def stdin(data: bytes) -> bytes | None:
        return b"0" + data if data else None

    @staticmethod
    def resize(rows: int, cols: int) -> bytes:
        return b"1" + json.dumps({"columns": cols, "rows": rows}).encode()

    @staticmethod
    def output(msg: str | bytes) -> bytes | None:
        data = msg.encode() if isinstance(msg, str) else msg
        return (data[1:] or None) if data[:1] == b"0" else None


TerminalCodec = TerminadoCodec | TtydCodec


class ExecuteRequest(BaseModel):
    """The first message of /execute."""
    model_config = ConfigDict(extra="ignore")
    code: str = ""
    mode: Literal["query", "batch"]
    options: dict[str, Any] | None = None


def parse_execute_request(raw: str | bytes) -> ExecuteRequest:
    try:
        return ExecuteRequest.model_validate_json(raw)
    except ValidationError as e:
        where = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
                          for err in e.errors())
        raise ValueError(where) from e


def execute_reply(result: dict[str, Any]) -> dict[str, Any]:
    """What the client gets for one execute result."""
    return {"status": result.get("status"), "console": result.get("console"),
            "exitCode": result.get("exitCode"), "options": result.get("options"),
            "files": result.get("files")}


def next_execute_mode(status: str | None) -> str | None:
    """The mode of the next execute call after a result of this status; None when the run is over."""
    if status == "finished":
        return None
    if status == "waiting-input":
        return "input"
    if status in ("continued", "build-finished", "clean-finished"):
        return "continue"
    raise ValueError(f"unexpected execute status {status!r}")


def worth_sending(result: dict[str, Any]) -> bool:
    """Whether a result tells the client anything (a ``continued`` with no output does not)."""
    return result.get("status") != "continued" or bool(result.get("console") or result.get("files"))


def error_message(msg: str) -> str:
    return json.dumps({"status": "error", "msg": msg})


class StreamParams(BaseModel):
    """Query parameters of /pty and /execute."""
    model_config = ConfigDict(extra="ignore")
    owner_access_key: str | None = Field(None, max_length=64)


class AppStreamParams(StartService):
    """Query parameters of /tcpproxy and /httpproxy: start-service's, plus the owner."""
    owner_access_key: str | None = Field(None, max_length=64)


# -- I/O --------------------------------------------------------------------------------------------
class ChannelClosed(Exception):
    """The client's WebSocket is gone (raised by a ``Channel``'s send methods)."""


class Channel(Protocol):
    """One accepted WebSocket, as the API layer hands it over."""

    async def receive(self) -> str | bytes | None:
        """The next message (text or bytes), None once the client has gone."""

    async def send_text(self, text: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class SessionStreams:
    def __init__(self, sessions: SessionService, apps: SessionApps) -> None:
        self.sessions = sessions
        self.apps = apps

    # -- execute ---------------------------------------------------------------------------------
    async def attach_execute(self, actor: Actor, ref: str, owner_access_key: str | None) -> str:
        """The id of the session the caller may run code in (raises otherwise)."""
        sess, kernel = await self.sessions._main_kernel(actor, ref, owner_access_key)
        if sess.status != "RUNNING" or kernel is None or kernel.agent_addr is None:
            raise GenericBadRequest(f"The session is {sess.status}; code runs once it is RUNNING.")
        return str(sess.id)

    async def execute(self, actor: Actor, session_id: str, channel: Channel) -> None:
        """Run what the first message asks, send each result, pass input on ``waiting-input``.
        A run the client leaves unfinished is interrupted: a REPL left waiting for input would
        keep the session busy."""
        mode: str | None = None
        try:
            first = await channel.receive()
            if first is None:
                return
            try:
                req = parse_execute_request(first)
            except ValueError as e:
                await channel.send_text(error_message(f"Invalid API parameters: {e}"))
                return
            run_id = secrets.token_hex(8)
            mode = req.mode
            code, options = req.code, req.options or {}
            while mode is not None:
                out = await self.sessions.execute(actor, session_id, {
                    "mode": mode, "runId": run_id, "code": code, "options": options,
                    "flush_timeout": EXECUTE_FLUSH_SECONDS})
                result = out["result"]
                if worth_sending(result):
                    await channel.send_text(json.dumps(execute_reply(result)))
                mode, code, options = next_execute_mode(result.get("status")), "", {}
                if mode == "input":
                    given = await channel.receive()
                    if given is None:
                        return
                    code = given if isinstance(given, str) else given.decode("utf-8", "replace")
        except ChannelClosed:
            pass
        except BackendError as e:
            await _try(channel.send_text(error_message(e.msg or e.title)))
        except ValueError as e:
            await _try(channel.send_text(error_message(str(e))))
        finally:
            if mode is not None:
                await _try(self.sessions.interrupt(actor, session_id))
            await _try(channel.close())

    # -- apps over TCP ---------------------------------------------------------------------------
    async def open_app(self, actor: Actor, ref: str, params: AppStreamParams) -> AppTarget:
        return await self.apps.open_target(actor, ref, params, params.owner_access_key)

    async def pipe_tcp(self, target: AppTarget, channel: Channel) -> None:
        """Binary frames to the app's port and its bytes back, one chunk in flight each way."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port, limit=CHUNK), 15)
        except (TimeoutError, OSError) as e:
            log.info("app unreachable at %s:%s: %s", target.host, target.port, e)
            await channel.close(1011, "The app is not answering.")
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.preamble:  # the session's app gate opens to its secret (runner/gate.py)
            writer.write(target.preamble)

        async def client_to_app() -> None:
            while (data := await channel.receive()) is not None:
                if isinstance(data, str):
                    data = data.encode()
                writer.write(data)
                await writer.drain()  # backpressure: the next frame is read once the app took this one
            if writer.can_write_eof():
                writer.write_eof()

        async def app_to_client() -> None:
            while data := await reader.read(CHUNK):
                await channel.send_bytes(data)

        try:
            await _first_done(client_to_app(), app_to_client())
        except (OSError, ConnectionClosed, ChannelClosed) as e:
            log.info("tcp stream to %s:%s ended: %r", target.host, target.port, e)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            await _try(channel.close())

    # -- pty -------------------------------------------------------------------------------------
    async def open_terminal(self, actor: Actor, ref: str, owner_access_key: str | None) -> AppTarget:
        return await self.apps.open_target(actor, ref, StartService(app=TERMINAL_APP), owner_access_key)

    async def _connect_terminal(self, target: AppTarget) -> tuple[Any, TerminalCodec]:
        """A WebSocket to the terminal app: Workbay's own (terminado) or, where the image has the
        binary, ttyd; whichever answers on its path."""
        for codec in (TerminadoCodec(), TtydCodec()):
            sock = None
            try:
                sock = await _open_socket(target)
                upstream = await websockets.connect(
                    f"ws://{target.host}:{target.port}{codec.path}", subprotocols=codec.subprotocols,
                    max_size=None, ping_interval=None, compression=None, open_timeout=TERMINAL_CONNECT_TIMEOUT,
                    sock=sock)
            except websockets.InvalidStatus:
                continue  # not this kind of terminal
            except (TimeoutError, OSError, websockets.InvalidHandshake) as e:
                if sock is not None:
                    sock.close()
                raise ServiceUnavailable("The session's terminal is not answering.") from e
            hello = codec.hello()
            if hello is not None:
                await upstream.send(hello)
            return upstream, codec
        raise ServiceUnavailable("The session's terminal app speaks neither terminado nor ttyd.")

    async def pty(self, target: AppTarget, channel: Channel) -> None:
        """Relay Backend.AI's pty messages to the terminal app and its output back."""
        try:
            upstream, codec = await self._connect_terminal(target)
        except BackendError as e:
            await channel.close(1011, e.msg or e.title)
            return
        ended = asyncio.Event()

        async def terminal_to_client(up: ClientConnection) -> None:
            try:
                async for msg in up:
                    data = codec.output(msg)
                    if data:
                        await channel.send_text(pty_output(data))
            except (ConnectionClosed, OSError, ChannelClosed):
                pass
            ended.set()

        pump = asyncio.create_task(terminal_to_client(upstream))
        receiving: asyncio.Task[str | bytes | None] | None = None
        try:
            while True:
                receiving = asyncio.create_task(channel.receive())
                waiter = asyncio.create_task(ended.wait())
                await asyncio.wait({receiving, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if not receiving.done():
                    break  # the terminal went away
                raw = receiving.result()
                if raw is None:
                    break
                try:
                    msg = parse_pty_message(raw)
                except ValueError as e:
                    log.debug("bad pty message: %s", e)
                    continue  # Backend.AI ignores what it cannot parse; the terminal goes on
                if isinstance(msg, PtyStdin):
                    frame = codec.stdin(msg.data)
                    if frame is not None:
                        await upstream.send(frame)
                elif isinstance(msg, PtyResize):
                    await upstream.send(codec.resize(msg.rows, msg.cols))
                elif isinstance(msg, PtyRestart):
                    # A new terminal client: the tmux session behind it carries on.
                    pump.cancel()
                    await asyncio.gather(pump, return_exceptions=True)
                    await upstream.close()
                    upstream, codec = await self._connect_terminal(target)
                    ended.clear()
                    pump = asyncio.create_task(terminal_to_client(upstream))
                # PtyPing keeps the connection alive; nothing to answer
        except (ConnectionClosed, OSError, ChannelClosed) as e:
            log.info("terminal stream ended: %r", e)
        except BackendError as e:
            await _try(channel.send_text(error_message(e.msg or e.title)))
        finally:
            if receiving is not None and not receiving.done():
                receiving.cancel()
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await upstream.close()
            await _try(channel.close())


async def _open_socket(target: AppTarget) -> socket.socket:
    """A connected socket to the app's port, its gate's line already sent."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    last: Exception | None = None
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, addr), TERMINAL_CONNECT_TIMEOUT)
            if target.preamble:
                await loop.sock_sendall(sock, target.preamble)
            return sock
        except (TimeoutError, OSError) as e:
            sock.close()
            last = e
    raise OSError(f"cannot connect to {target.host}:{target.port}: {last}")


async def _first_done(*coros: Awaitable[None]) -> None:
    """Run until one side ends; cancel the other.  Re-raises what the finished side raised."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            t.result()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _try(aw: Awaitable[object]) -> None:
    """Best effort on a socket that may already be gone."""
    try:
        await aw
    except Exception as e:  # noqa: BLE001 - the peer left; nothing to tell it
        log.debug("stream: %s", e)
