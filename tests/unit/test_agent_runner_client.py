"""The agent reaches a runner's socket even under a data dir too long for a unix socket path."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from workbay.agent.runner_client import runner_request


async def test_long_socket_path(tmp_path):
    ipc = tmp_path / ("x" * 60) / ("y" * 60) / "ipc"
    ipc.mkdir(parents=True)
    assert len(str(ipc / "runner.sock")) > 108  # more than sun_path holds

    async def handle(reader, writer):
        req = json.loads(await reader.readline())
        writer.write(json.dumps({"echo": req}).encode() + b"\n")
        await writer.drain()
        writer.close()

    fd = os.open(ipc, os.O_PATH | os.O_DIRECTORY)  # the runner binds it inside the container
    try:
        server = await asyncio.start_unix_server(handle, f"/proc/self/fd/{fd}/runner.sock")
    finally:
        os.close(fd)
    try:
        assert await runner_request(ipc, {"op": "ping"}, 5) == {"echo": {"op": "ping"}}
    finally:
        server.close()
        await server.wait_closed()


async def test_no_runner(tmp_path):
    with pytest.raises(OSError):
        await runner_request(tmp_path, {"op": "ping"}, 1)
