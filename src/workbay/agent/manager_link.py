"""Agent → manager: heartbeats and kernel events over HTTP, with backoff; never fatal."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

log = logging.getLogger(__name__)

HEARTBEAT_PATH = "/internal/agents/heartbeat"
EVENTS_PATH = "/internal/agents/events"
MAX_QUEUED_EVENTS = 10000
MAX_BACKOFF = 5.0  # well under the manager's agent_lost_timeout


class _NotReady(Exception):
    pass


class ManagerLink:
    def __init__(self, manager_url: str, secret: str, agent_id: str,
                 heartbeat: Callable[[], Awaitable[dict[str, Any] | None]], interval: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.agent_id = agent_id
        self.heartbeat_payload = heartbeat
        self.interval = interval
        self.http = httpx.AsyncClient(base_url=manager_url.rstrip("/"), timeout=10,
                                      headers={"X-Workbay-Secret": secret}, transport=transport)
        self.queue: collections.deque[dict[str, Any]] = collections.deque()
        self.wakeup = asyncio.Event()
        self.beat_now = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.last_heartbeat_ok: float | None = None
        self.heartbeat_failures = 0
        self.event_failures = 0

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._heartbeat_loop(), name="agent-heartbeat"),
                      asyncio.create_task(self._event_loop(), name="agent-events")]

    async def close(self, flush_timeout: float = 2.0) -> None:
        if self.queue:
            try:
                await asyncio.wait_for(self._flush_once(), flush_timeout)
            except Exception:
                pass
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.http.aclose()

    def emit(self, name: str, kernel_id: str, session_id: str, **data: Any) -> None:
        ev = {"name": name, "kernel_id": kernel_id, "session_id": session_id,
              "timestamp": time.time(), **data}
        if len(self.queue) >= MAX_QUEUED_EVENTS:
            dropped = self.queue.popleft()
            log.warning("event queue full; dropped %s of kernel %s", dropped["name"],
                        dropped["kernel_id"])
        self.queue.append(ev)
        self.wakeup.set()

    def request_heartbeat(self) -> None:
        self.beat_now.set()

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        r = await self.http.post(path, json=body)
        if r.status_code >= 300:
            raise httpx.HTTPStatusError(f"{path}: HTTP {r.status_code}: {r.text[:200]}",
                                        request=r.request, response=r)

    async def _heartbeat_loop(self) -> None:
        while True:
            delay = self.interval
            try:
                payload = await self.heartbeat_payload()
                if payload is None:  # not ready to report (engine not reached yet)
                    raise _NotReady
                await self._post(HEARTBEAT_PATH, payload)
                if self.heartbeat_failures:
                    log.info("heartbeat to the manager works again")
                self.heartbeat_failures = 0
                self.last_heartbeat_ok = time.time()
            except asyncio.CancelledError:
                raise
            except _NotReady:
                pass
            except Exception as e:
                self.heartbeat_failures += 1
                delay = min(MAX_BACKOFF, self.interval * 2 ** min(self.heartbeat_failures - 1, 5))
                lvl = logging.WARNING if self.heartbeat_failures in (1, 10) or \
                    self.heartbeat_failures % 100 == 0 else logging.DEBUG
                log.log(lvl, "heartbeat to the manager failed (%d in a row, retry in %.0fs): %s",
                        self.heartbeat_failures, delay, e)
            self.beat_now.clear()
            try:
                await asyncio.wait_for(self.beat_now.wait(), delay)
            except TimeoutError:
                pass

    async def _flush_once(self) -> None:
        batch = list(self.queue)[:100]
        if not batch:
            return
        await self._post(EVENTS_PATH, {"agent_id": self.agent_id, "events": batch})
        for _ in batch:
            self.queue.popleft()

    async def _event_loop(self) -> None:
        while True:
            if not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
            try:
                await self._flush_once()
                if self.event_failures:
                    log.info("events reach the manager again")
                self.event_failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.event_failures += 1
                delay = min(MAX_BACKOFF, 0.5 * 2 ** min(self.event_failures - 1, 6))
                lvl = logging.WARNING if self.event_failures in (1, 10) or \
                    self.event_failures % 100 == 0 else logging.DEBUG
                log.log(lvl, "sending %d events to the manager failed (retry in %.1fs): %s",
                        len(self.queue), delay, e)
                await asyncio.sleep(delay)
