"""Agent → manager reports survive a manager that is down or failing."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import workbay.runner
from workbay.agent.manager_link import ManagerLink


def manager_app(fail_first: int):
    app = FastAPI()
    app.state.calls = 0
    app.state.events = []
    app.state.heartbeats = []

    @app.post("/internal/agents/events")
    async def events(request: Request):
        app.state.calls += 1
        if app.state.calls <= fail_first:
            return JSONResponse({"title": "down"}, status_code=503)
        assert request.headers["X-Workbay-Secret"] == "sec"
        body = await request.json()
        app.state.events += [e["name"] for e in body["events"]]
        return {}

    @app.post("/internal/agents/heartbeat")
    async def heartbeat(request: Request):
        app.state.heartbeats.append(await request.json())
        return {}

    return app


async def test_events_are_retried_in_order():
    app = manager_app(fail_first=2)
    beats = 0

    async def payload():
        nonlocal beats
        beats += 1
        return {"id": "a1", "n": beats}

    link = ManagerLink("http://manager", "sec", "a1", payload, interval=0.05,
                       transport=httpx.ASGITransport(app=app))
    link.start()
    for i in range(5):
        link.emit(f"e{i}", "k", "s")
    for _ in range(100):
        if len(app.state.events) == 5:
            break
        await asyncio.sleep(0.1)
    assert app.state.events == ["e0", "e1", "e2", "e3", "e4"]
    assert link.event_failures == 0 and not link.queue
    assert app.state.heartbeats and app.state.heartbeats[-1]["id"] == "a1"
    await link.close()


async def test_unreachable_manager_never_raises():
    async def payload():
        raise RuntimeError("cannot build the payload")  # also survived

    link = ManagerLink("http://127.0.0.1:9", "sec", "a1", payload, interval=0.05)
    link.start()
    link.emit("kernel_started", "k", "s")
    await asyncio.sleep(0.5)
    assert link.heartbeat_failures >= 1 and link.event_failures >= 1
    assert all(loop.running for loop in link.loops)
    assert len(link.queue) == 1  # kept for later
    await link.close(flush_timeout=0.2)


async def test_a_requested_heartbeat_goes_out_at_once_and_events_do_not_wait_for_the_interval():
    app = manager_app(fail_first=0)
    link = ManagerLink("http://manager", "sec", "a1", lambda: _payload(), interval=30,
                       transport=httpx.ASGITransport(app=app))
    link.start()
    for _ in range(50):  # the first beat goes at start
        if app.state.heartbeats:
            break
        await asyncio.sleep(0.02)
    link.request_heartbeat()
    link.emit("kernel_started", "k", "s")
    for _ in range(50):
        if len(app.state.heartbeats) == 2 and app.state.events:
            break
        await asyncio.sleep(0.02)
    assert len(app.state.heartbeats) == 2 and app.state.events == ["kernel_started"]
    await link.close()


async def _payload():
    return {"id": "a1"}


def test_runner_is_python39_syntax():
    """Images may have Python 3.9 (python:3.9 on Debian bullseye)."""
    for path in Path(workbay.runner.__file__).parent.glob("*.py"):
        ast.parse(path.read_text(), str(path), feature_version=(3, 9))
