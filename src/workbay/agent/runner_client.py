"""The agent's side of the runner's control socket (``<kernel dir>/ipc/runner.sock``)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from workbay.runner import protocol


async def runner_request(ipc_dir: Path, req: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One JSON-line request/response. Raises OSError (no socket, refused, reset) or
    asyncio.TimeoutError."""
    path = str(ipc_dir / protocol.SOCKET)
    fd = None
    if len(path) > 100:  # sun_path is 108 bytes: go through a short /proc path to the directory
        fd = os.open(ipc_dir, os.O_PATH | os.O_DIRECTORY)
        path = f"/proc/self/fd/{fd}/{protocol.SOCKET}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(path, limit=protocol.MAX_MESSAGE), 5)
    finally:
        if fd is not None:
            os.close(fd)
    try:
        writer.write(json.dumps(req).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionResetError("the runner closed the connection")
        return json.loads(line)
    finally:
        writer.close()
