"""Agent → manager: heartbeats and kernel events over HTTP, with backoff; never fatal."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from workbay.common.background import BackgroundLoop

log = logging.getLogger(__name__)

HEARTBEAT_PATH = "/internal/agents/heartbeat"
EVENTS_PATH = "/internal/agents/events"
MAX_QUEUED_EVENTS = 10000
MAX_BACKOFF = 5.0  # well under the manager's agent_lost_timeout
EVENTS_IDLE_INTERVAL = 1.0  # a look at an empty queue (emit wakes the loop at once)


class ManagerLink:
    """Two BackgroundLoops: heartbeats (every ``interval``, at once on ``request_heartbeat``) and
    kernel events (sent in order as soon as they are emitted).

    Both handle their own failures rather than leaving them to the loop's generic error log: a
    manager that is down is expected (restarts, upgrades), so failures are counted and logged
    sparingly (the 1st, the 10th, every 100th) and retried with a backoff capped at
    ``MAX_BACKOFF``.  A requested heartbeat still goes out at once during a heartbeat backoff (it
    reports a real change); new events never cut an event backoff short."""

    def __init__(self, manager_url: str, secret: str, agent_id: str,
                 heartbeat: Callable[[], Awaitable[dict[str, Any] | None]], interval: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.agent_id = agent_id
        self.heartbeat_payload = heartbeat
        self.interval = interval
        self.http = httpx.AsyncClient(base_url=manager_url.rstrip("/"), timeout=10,
                                      headers={"X-Workbay-Secret": secret}, transport=transport)
        self.queue: collections.deque[dict[str, Any]] = collections.deque()
        self.last_heartbeat_ok: float | None = None
        self.heartbeat_failures = 0
        self.event_failures = 0
        self._heartbeat_delay = interval
        self._events_retry_at = 0.0  # monotonic time before which events are not retried
        self.heartbeats = BackgroundLoop("agent-heartbeat", self._beat, lambda: self._heartbeat_delay,
                                         immediate=True, logger=log)
        self.events = BackgroundLoop("agent-events", self._send_events, self._events_wait,
                                     immediate=True, logger=log)

    @property
    def loops(self) -> tuple[BackgroundLoop, BackgroundLoop]:
        return (self.heartbeats, self.events)

    def start(self) -> None:
        for loop in self.loops:
            loop.start()

    async def close(self, flush_timeout: float = 2.0) -> None:
        for loop in self.loops:  # first, so no send is in flight while the last events go
            await loop.stop()
        if self.queue:
            try:
                await asyncio.wait_for(self._flush_once(), flush_timeout)
            except Exception:  # the manager is gone: the events die with this process
                pass
        await self.http.aclose()

    def emit(self, name: str, kernel_id: str, session_id: str, **data: Any) -> None:
        ev = {"name": name, "kernel_id": kernel_id, "session_id": session_id,
              "timestamp": time.time(), **data}
        if len(self.queue) >= MAX_QUEUED_EVENTS:
            dropped = self.queue.popleft()
            log.warning("event queue full; dropped %s of kernel %s", dropped["name"],
                        dropped["kernel_id"])
        self.queue.append(ev)
        self.events.wake()

    def request_heartbeat(self) -> None:
        self.heartbeats.wake()

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        r = await self.http.post(path, json=body)
        if r.status_code >= 300:
            raise httpx.HTTPStatusError(f"{path}: HTTP {r.status_code}: {r.text[:200]}",
                                        request=r.request, response=r)

    @staticmethod
    def _log_level(failures: int) -> int:
        return logging.WARNING if failures in (1, 10) or failures % 100 == 0 else logging.DEBUG

    async def _beat(self) -> None:
        """One heartbeat; never raises (see the class docstring)."""
        self._heartbeat_delay = self.interval
        try:
            payload = await self.heartbeat_payload()
            if payload is None:  # not ready to report (engine not reached yet)
                return
            await self._post(HEARTBEAT_PATH, payload)
        except Exception as e:
            self.heartbeat_failures += 1
            self._heartbeat_delay = min(MAX_BACKOFF,
                                        self.interval * 2 ** min(self.heartbeat_failures - 1, 5))
            log.log(self._log_level(self.heartbeat_failures),
                    "heartbeat to the manager failed (%d in a row, retry in %.0fs): %s",
                    self.heartbeat_failures, self._heartbeat_delay, e)
            return
        if self.heartbeat_failures:
            log.info("heartbeat to the manager works again")
        self.heartbeat_failures = 0
        self.last_heartbeat_ok = time.time()

    def _events_wait(self) -> float:
        return max(0.01, self._events_retry_at - time.monotonic()) if self.event_failures \
            else EVENTS_IDLE_INTERVAL

    async def _send_events(self) -> None:
        """Send every queued event, in order; never raises (see the class docstring)."""
        if self.event_failures and time.monotonic() < self._events_retry_at:
            return  # backing off: woken by a new event
        try:
            while self.queue:
                await self._flush_once()
        except Exception as e:
            self.event_failures += 1
            delay = min(MAX_BACKOFF, 0.5 * 2 ** min(self.event_failures - 1, 6))
            self._events_retry_at = time.monotonic() + delay
            log.log(self._log_level(self.event_failures),
                    "sending %d events to the manager failed (retry in %.1fs): %s",
                    len(self.queue), delay, e)
            return
        if self.event_failures:
            log.info("events reach the manager again")
        self.event_failures = 0

    async def _flush_once(self) -> None:
        batch = list(self.queue)[:100]
        if not batch:
            return
        await self._post(EVENTS_PATH, {"agent_id": self.agent_id, "events": batch})
        for _ in batch:
            self.queue.popleft()
