"""`workbay app`, `workbay ssh`, `workbay scp`, `workbay sftp`: apps of a session on this machine.

The manager's ``POST /session/{name}/start-service`` starts the app in the session and opens a
circuit on the app-proxy; its answer carries ``tcp_url``, a WebSocket that carries the app's raw
TCP bytes as binary frames both ways (valid 24 h).  :class:`Tunnel` listens on a local port and,
for every connection accepted there, opens such a WebSocket and pipes the bytes in both
directions, each side waiting for the other to take what it sent (backpressure).  For HTTP apps
the tunnel goes to the app's own port, so the local URL is a plain HTTP endpoint without the
proxy's cookie.

`workbay ssh` / `scp` / `sftp` download the session's ``id_container`` key into a private
temporary file, open the tunnel to ``sshd`` on a free local port and run the OpenSSH client
against it; they exit with its exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import click
import websockets
from rich.markup import escape
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .commands import run
from .credentials import make_client
from .output import err_console
from .sdk import APIError, Client

CHUNK = 64 * 1024
SSH_USER = "work"
KEY_FILE = "id_container"
# The tcp_url's token lives 24 h; a tunnel asks for a fresh circuit before it gets that old.
REFRESH_AFTER = 12 * 3600
SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR")


# -- pure helpers (unit-tested) --------------------------------------------------------------------
def parse_bind(value: str | None, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``[HOST:]PORT`` → (host, port).  ``PORT`` alone binds ``default_host``; IPv6 hosts are
    written in brackets (``[::1]:8080``); port 0 (or no value) asks for a free port."""
    if value is None or value.strip() == "":
        return default_host, 0
    value = value.strip()
    host, port_text = default_host, value
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (value[end + 1:] and not value[end + 1:].startswith(":")):
            raise click.BadParameter(f"{value!r}: write an IPv6 address as [ADDR]:PORT")
        host, port_text = value[1:end], value[end + 2:]
        if not host:
            raise click.BadParameter(f"{value!r}: the address is empty")
    elif ":" in value:
        host, _, port_text = value.rpartition(":")
        if not host or ":" in host:
            raise click.BadParameter(f"{value!r}: expected [HOST:]PORT (IPv6 in brackets: [::1]:PORT)")
    if not port_text.isdigit():
        raise click.BadParameter(f"{value!r}: the port must be a number")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise click.BadParameter(f"{value!r}: the port must be 0–65535")
    return host, port


# scp options that take a value (their value is never a remote path).
SCP_VALUE_OPTIONS = frozenset("cDFiJlosPSX")


def rewrite_scp_args(args: Sequence[str], target: str = f"{SSH_USER}@127.0.0.1") -> list[str]:
    """The user's scp arguments with every remote path ``:PATH`` written ``TARGET:PATH``.

    Option values (``-i KEY``, ``-o OPT``, …) are left alone, as is everything after ``--``
    except remote paths.  At least one remote path is required."""
    out: list[str] = []
    remote = 0
    expect_value = False
    options_done = False
    for arg in args:
        if expect_value:
            out.append(arg)
            expect_value = False
            continue
        if not options_done and arg == "--":
            options_done = True
            out.append(arg)
            continue
        if not options_done and arg.startswith("-") and len(arg) > 1:
            out.append(arg)
            # -i KEY (value in the next argument) vs -iKEY; in a cluster like -rpP only the last may take one
            letters = arg[1:]
            for i, letter in enumerate(letters):
                if letter in SCP_VALUE_OPTIONS:
                    expect_value = i == len(letters) - 1
                    break
            continue
        if arg.startswith(":"):
            out.append(f"{target}{arg}")
            remote += 1
        else:
            out.append(arg)
    if expect_value:
        raise click.UsageError(f"scp option {out[-1]} needs a value")
    if remote == 0:
        raise click.UsageError("Write the session's paths with a leading colon, e.g. "
                               "`workbay scp SESSION ./file.txt :/home/work/` or `… :/home/work/out.txt .`")
    return out


# ssh options that take a value.
SSH_VALUE_OPTIONS = frozenset("BbcDEeFIiJLlmOoPpRSWw")


def split_ssh_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The user's ssh arguments as (options, remote command): leading options (with their values)
    go before the destination, the rest after it (``-L 8888:localhost:8888 -N``, ``-t htop``)."""
    options: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or len(arg) == 1:
            break
        options.append(arg)
        letters = arg[1:]
        for j, letter in enumerate(letters):
            if letter in SSH_VALUE_OPTIONS:
                if j == len(letters) - 1:  # the value is the next argument
                    if i + 1 >= len(args):
                        raise click.UsageError(f"ssh option {arg} needs a value")
                    options.append(args[i + 1])
                    i += 1
                break
        i += 1
    return options, list(args[i:])


def ssh_command(key: str, port: int, extra: Sequence[str], user: str = SSH_USER) -> list[str]:
    options, command = split_ssh_args(extra)
    return ["ssh", "-i", key, "-p", str(port), *SSH_OPTIONS, *options, f"{user}@127.0.0.1", *command]


def scp_command(key: str, port: int, args: Sequence[str], user: str = SSH_USER) -> list[str]:
    return ["scp", "-i", key, "-P", str(port), *SSH_OPTIONS, *rewrite_scp_args(args, f"{user}@127.0.0.1")]


def sftp_command(key: str, port: int, extra: Sequence[str], user: str = SSH_USER) -> list[str]:
    return ["sftp", "-i", key, "-P", str(port), *SSH_OPTIONS, *extra, f"{user}@127.0.0.1"]


def local_url(circuit: dict[str, Any], host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::", ""):
        shown = "127.0.0.1"
    if circuit.get("protocol") == "http":
        return f"http://{shown}:{port}/"
    return f"{shown}:{port}"


# -- the tunnel ------------------------------------------------------------------------------------
class Tunnel:
    """A local TCP listener; each connection is piped over its own WebSocket to the circuit's
    ``tcp_url``.  The circuit is asked for again (``start-service``) when the token gets old or
    the app-proxy refuses it, e.g. after the app-proxy restarted."""

    def __init__(self, client: Client, session: str, app: str, port: int | None = None,
                 log: Any = None) -> None:
        self.client, self.session, self.app, self.app_port = client, session, app, port
        self.circuit: dict[str, Any] = {}
        self.opened_at = 0.0
        self.server: asyncio.Server | None = None
        self.connections = 0
        self._lock = asyncio.Lock()
        self._log = log or (lambda msg: err_console.print(msg, highlight=False, soft_wrap=True))

    async def open_circuit(self) -> dict[str, Any]:
        body: dict[str, Any] = {"app": self.app}
        if self.app_port:
            body["port"] = self.app_port
        self.circuit = await self.client.post(f"/session/{self.session}/start-service", json=body)
        self.opened_at = time.monotonic()
        if not self.circuit.get("tcp_url"):
            raise click.ClickException("The app-proxy gave no tunnel address for this app.")
        return self.circuit

    async def _fresh_url(self, stale: str | None = None) -> str:
        async with self._lock:
            if (stale is not None and self.circuit.get("tcp_url") == stale) or \
                    time.monotonic() - self.opened_at > REFRESH_AFTER:
                await self.open_circuit()
            return self.circuit["tcp_url"]

    async def connect(self) -> Any:
        url = await self._fresh_url()
        try:
            return await self._connect(url)
        except InvalidStatus as e:
            if e.response.status_code not in (401, 403):
                raise
        # refused: the token expired or the circuit is gone (app-proxy restarted); ask again
        return await self._connect(await self._fresh_url(stale=url))

    @staticmethod
    async def _connect(url: str) -> Any:
        return await websockets.connect(url, max_size=None, compression=None, open_timeout=30,
                                        ping_interval=30, ping_timeout=120, close_timeout=5)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        if not self.circuit:
            await self.open_circuit()
        self.server = await asyncio.start_server(self._handle, host, port, reuse_address=True)
        sockname = self.server.sockets[0].getsockname()
        return host, int(sockname[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            ws = await self.connect()
        except (APIError, click.ClickException) as e:
            self._log(f"[red]Cannot open {escape(self.app)}:[/red] "
                      f"{escape(e.message if isinstance(e, APIError) else e.format_message())}")
            writer.close()
            return
        except (TimeoutError, OSError, InvalidHandshake) as e:
            self._log(f"[red]The app-proxy refused the tunnel:[/red] {escape(str(e) or e.__class__.__name__)}")
            writer.close()
            return
        try:
            await pipe(reader, writer, ws)
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            with contextlib.suppress(Exception):
                await ws.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: Any) -> None:
    """Local socket ⇄ WebSocket until either side ends (a WebSocket has no half-close: the local
    end closing its sending side ends the tunnel)."""

    async def local_to_ws() -> None:
        try:
            while data := await reader.read(CHUNK):
                await ws.send(data)  # waits while the WebSocket's write buffer is full
        except (ConnectionError, OSError, ConnectionClosed):
            pass

    async def ws_to_local() -> None:
        try:
            async for message in ws:
                writer.write(message if isinstance(message, bytes) else message.encode())
                await writer.drain()  # not reading further while the local side is slow
        except (ConnectionError, OSError, ConnectionClosed):
            pass

    tasks = [asyncio.ensure_future(local_to_ws()), asyncio.ensure_future(ws_to_local())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- commands --------------------------------------------------------------------------------------
def _refused(e: APIError, session: str) -> str:
    if e.status == 404:
        return (f"Session {session!r} was not found: it does not exist or is not yours "
                f"(another user's session cannot be opened).")
    return e.message


async def _open(client: Client, session: str, app: str, port: int | None, host: str, bind_port: int
                ) -> tuple[Tunnel, str, int]:
    tunnel = Tunnel(client, session, app, port)
    try:
        await tunnel.open_circuit()
    except APIError as e:
        raise click.ClickException(_refused(e, session)) from None
    try:
        host, bound = await tunnel.start(host, bind_port)
    except OSError as e:
        raise click.ClickException(f"Cannot listen on {host}:{bind_port}: {e.strerror or e}") from None
    return tunnel, host, bound


@click.command("app")
@click.argument("session")
@click.argument("app")
@click.option("-b", "--bind", "bind", metavar="[HOST:]PORT",
              help="Local address to listen on (default 127.0.0.1 and a free port).")
def app_cmd(session: str, app: str, bind: str | None) -> None:
    """Open APP of SESSION on a local port: every connection there is tunnelled to the app
    (TCP over WebSocket through the app-proxy).  Runs until Ctrl+C.

    APP is one of the session's apps (`workbay session info` lists them): jupyter, jupyterlab,
    ttyd, sshd, filebrowser, … or a preopen port given at creation (e.g. 8080).

    \b
    Examples:
      workbay app my-session jupyter            # then open the printed http://127.0.0.1:PORT/
      workbay app my-session sshd -b 2222       # ssh -p 2222 -i id_container work@127.0.0.1
    """
    host, bind_port = parse_bind(bind)

    async def serve() -> None:
        async with make_client() as client:
            tunnel, bound_host, bound = await _open(client, session, app, None, host, bind_port)
            try:
                circuit = tunnel.circuit
                url = local_url(circuit, bound_host, bound)
                print(f"{app} of session {session} is at {url}", flush=True)
                if app == "sshd":
                    print(f"Connect with: ssh -p {bound} -i {KEY_FILE} {SSH_USER}@127.0.0.1   "
                          f"(key: workbay session download {shlex.quote(session)} {KEY_FILE})", flush=True)
                if app == "ttyd" and circuit.get("url"):
                    # the terminal page loads xterm.js from the app-proxy (/__workbay/assets/), which
                    # this tunnel to the app's own port does not serve
                    err_console.print("[yellow]The web terminal's page needs the app-proxy: in a browser open "
                                      f"{escape(circuit['url'])} (or use `workbay ssh`).[/yellow]", soft_wrap=True)
                if bound_host not in ("127.0.0.1", "localhost", "::1"):
                    err_console.print(f"[yellow]Listening on {escape(bound_host)}: anyone who can reach this "
                                      "address reaches the app.[/yellow]")
                err_console.print("[dim]Ctrl+C stops the tunnel.[/dim]")
                await asyncio.Event().wait()
            finally:
                await tunnel.close()

    try:
        run(serve)()
    except SystemExit as e:
        if e.code != 130:  # Ctrl+C is how one stops the tunnel: not an error
            raise


async def _fetch_key(client: Client, session: str, directory: str) -> str:
    try:
        resp = await client.request("GET", f"/session/{session}/download_single",
                                    params={"file": f"/home/{SSH_USER}/{KEY_FILE}"}, raw=True)
    except APIError as e:
        raise click.ClickException(_refused(e, session)) from None
    path = os.path.join(directory, KEY_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(resp.content)
    return path


async def _run_tool(session: str, build: Any) -> int:
    """Key + tunnel to sshd, then the OpenSSH tool ``build(key, port)`` returns; its exit code."""
    async with make_client() as client:
        tmp = tempfile.mkdtemp(prefix="workbay-ssh-")  # 0700
        tunnel = None
        try:
            key = await _fetch_key(client, session, tmp)
            tunnel, _, port = await _open(client, session, "sshd", None, "127.0.0.1", 0)
            argv = build(key, port)
            if not shutil.which(argv[0]):
                raise click.ClickException(f"{argv[0]} is not installed (the OpenSSH client is needed).")
            proc = await asyncio.create_subprocess_exec(*argv)
            loop = asyncio.get_running_loop()
            # Ctrl+C reaches ssh too (same process group): ssh decides, we wait for it.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, lambda: None)
            try:
                return await proc.wait()
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signal.SIGINT)
        finally:
            if tunnel is not None:
                await tunnel.close()
            shutil.rmtree(tmp, ignore_errors=True)


_PASSTHROUGH = {"ignore_unknown_options": True, "allow_interspersed_args": False}


@click.command("ssh", context_settings=_PASSTHROUGH)
@click.argument("session")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def ssh_cmd(session: str, args: tuple[str, ...]) -> None:
    """SSH into SESSION (as `work`, with the session's id_container key, through the app-proxy).

    Arguments after SESSION (or after `--`) go to ssh: leading options (before the
    destination), then a command to run.

    \b
    Examples:
      workbay ssh my-session
      workbay ssh my-session -- nvidia-smi
      workbay ssh my-session -- -L 8888:127.0.0.1:8888 -N
    """
    extra = list(args[1:] if args[:1] == ("--",) else args)
    split_ssh_args(extra)  # usage errors before anything is opened

    async def go() -> int:
        return await _run_tool(session, lambda key, port: ssh_command(key, port, extra))

    sys.exit(run(go)())


@click.command("scp", context_settings=_PASSTHROUGH)
@click.argument("session")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def scp_cmd(session: str, args: tuple[str, ...]) -> None:
    """Copy files to or from SESSION with scp; write the session's paths with a leading colon.

    \b
    Examples:
      workbay scp my-session ./data.csv :/home/work/mydata/
      workbay scp my-session -r :/home/work/results ./results
    """
    argv = list(args[1:] if args[:1] == ("--",) else args)
    rewrite_scp_args(argv)  # usage errors before anything is opened

    async def go() -> int:
        return await _run_tool(session, lambda key, port: scp_command(key, port, argv))

    sys.exit(run(go)())


@click.command("sftp", context_settings=_PASSTHROUGH)
@click.argument("session")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def sftp_cmd(session: str, args: tuple[str, ...]) -> None:
    """An interactive sftp session to SESSION (extra arguments go to sftp, e.g. `-b batchfile`)."""
    extra = list(args[1:] if args[:1] == ("--",) else args)

    async def go() -> int:
        return await _run_tool(session, lambda key, port: sftp_command(key, port, extra))

    sys.exit(run(go)())


COMMANDS = (app_cmd, ssh_cmd, scp_cmd, sftp_cmd)
__all__ = ["COMMANDS", "Tunnel", "parse_bind", "pipe", "rewrite_scp_args", "split_ssh_args"]
