"""Reaching a replica's model server from the manager: through the session's app gate at the
kernel's published host port (the gate opens to the session's app secret only).

* :func:`model_target`: where a replica's model port is published (host, port) from its main
  kernel's ``service_ports``;
* :func:`http_get`: one ``GET`` through the gate, its status and (bounded) body;
* :func:`health_check`: a replica's health check (the definition's path and expected status; no
  path: healthy once the model server accepts connections, asked with the gate's probe line).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from workbay.runner import protocol as gate

MAX_BODY = 4 * 1024 * 1024  # a /metrics page is small; a bigger answer is cut


@dataclass(frozen=True)
class Target:
    host: str
    port: int


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str = ""  # why not (the status that came back, the timeout, the refused connection)


def model_target(service_ports: list[Any] | None, model_port: int) -> Target | None:
    """The host address of the kernel's published ``model_port`` (None until it runs)."""
    for sp in service_ports or []:
        if not isinstance(sp, dict):
            continue
        ports = list(sp.get("container_ports") or [])
        if model_port not in ports:
            continue
        host_ports = sp.get("host_ports") or []
        index = ports.index(model_port)
        host = sp.get("kernel_host")
        if index < len(host_ports) and host_ports[index] and host:
            return Target(str(host), int(host_ports[index]))
    return None


async def http_get(target: Target, secret: str, path: str, timeout: float,
                   max_body: int = MAX_BODY) -> tuple[int, bytes]:
    """``GET path`` at the replica through its gate; raises OSError/TimeoutError/ValueError."""
    async def exchange() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            writer.write(gate.gate_hello(secret))
            writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: workbay-manager\r\n"
                         f"Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1"))
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                raise ValueError(f"no HTTP answer ({status_line[:80]!r})" if status_line
                                 else "the connection closed without an answer")
            length: int | None = None
            chunked = False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length" and value.strip().isdigit():
                    length = int(value.strip())
                elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
            body = await _body(reader, length, chunked, max_body)
            return int(parts[1]), body
        finally:
            writer.close()

    return await asyncio.wait_for(exchange(), timeout)


async def _body(reader: asyncio.StreamReader, length: int | None, chunked: bool, max_body: int) -> bytes:
    if chunked:
        out = bytearray()
        while len(out) < max_body:
            size_line = await reader.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            out += await reader.readexactly(size)
            await reader.readline()
        return bytes(out[:max_body])
    if length is not None:
        return await reader.readexactly(min(length, max_body))
    return await reader.read(max_body)


async def gate_ready(target: Target, secret: str, timeout: float) -> bool:
    """Whether the app behind the gate accepts connections (the gate's probe line)."""
    async def ask() -> bool:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            writer.write(gate.gate_probe(secret))
            await writer.drain()
            return (await reader.readline()).strip() == b"READY"
        finally:
            writer.close()

    try:
        return await asyncio.wait_for(ask(), timeout)
    except (OSError, TimeoutError):
        return False


async def health_check(target: Target, secret: str, path: str | None, expected: int, timeout: float
                       ) -> CheckResult:
    if not path:
        ok = await gate_ready(target, secret, timeout)
        return CheckResult(ok, "" if ok else "the model server does not accept connections")
    try:
        status, _ = await http_get(target, secret, path, timeout, max_body=64 * 1024)
    except TimeoutError:
        return CheckResult(False, f"GET {path} took longer than {timeout:g} s")
    except (OSError, ValueError, asyncio.IncompleteReadError) as e:
        return CheckResult(False, f"GET {path} failed: {e or type(e).__name__}")
    if status != expected:
        return CheckResult(False, f"GET {path} answered {status}, not {expected}")
    return CheckResult(True)
