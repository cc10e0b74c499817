"""A session's ``callback_url`` (Backend.AI's): the manager POSTs each of the session's lifecycle
events there, best effort — a slow or failing receiver never holds up the session.

The body is Backend.AI's: ``{"type": "session_lifecycle", "event": "started", "session_id", "when"}``
plus Workbay's ``session_name``, ``reason`` and ``exit_code``.  The URL was checked when the session
was created (``check_callback_url``: http(s), no credentials, no loopback or link-local literal).
The manager that publishes an event sends it, so a cluster of managers sends each event once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger(__name__)
TIMEOUT = 5.0
MAX_IN_FLIGHT = 64  # beyond this, events are dropped (and logged) rather than queued without end


class SessionCallbacks:
    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = httpx.AsyncClient(timeout=TIMEOUT, transport=transport, follow_redirects=False,
                                      headers={"User-Agent": "workbay-manager"})
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, url: str | None, event: dict[str, Any]) -> None:
        """Send a ``session_*`` event of the bus to ``url`` (nothing when the session has none)."""
        name = str(event.get("name", ""))
        if not url or not name.startswith("session_"):
            return
        if len(self._tasks) >= MAX_IN_FLIGHT:
            log.warning("session %s: %s not sent to its callback URL (too many in flight)",
                        event.get("session_id"), name)
            return
        body = {"type": "session_lifecycle", "event": name.removeprefix("session_"),
                "session_id": event.get("session_id"), "session_name": event.get("session_name"),
                "reason": event.get("reason"), "exit_code": event.get("exit_code"),
                "when": datetime.now(UTC).isoformat()}
        task = asyncio.create_task(self._send(url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, url: str, body: dict[str, Any]) -> None:
        try:
            resp = await self.http.post(url, json=body)
            if resp.status_code >= 400:
                log.info("callback of session %s answered %s", body["session_id"], resp.status_code)
        except httpx.HTTPError as e:
            log.info("callback of session %s failed: %s", body["session_id"], e)

    async def drain(self) -> None:
        """Wait for the events on their way (tests; shutdown)."""
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self.http.aclose()
