"""One helper for every periodic task: run a step every interval, early when woken, with backoff.

A process's reconcilers, sweeps and flushers all need the same few things: a task that runs an
async step now and then, a way to make it run sooner ("something changed, look now"), failures
logged without flooding the log or hammering a broken dependency, and a clean stop.  Writing that
loop by hand each time is how they drift apart, so they all use :class:`BackgroundLoop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[object]]


class BackgroundLoop:
    """Runs ``step`` every ``interval`` seconds in a task of its own.

    * ``immediate``: the first step runs at :meth:`start`, otherwise one interval later.
    * :meth:`wake` is a hint: the next step runs as soon as the current wait allows (at once
      while idle; a wake-up during a step makes one more step follow it).  A wake-up never cuts a
      backoff short: a failing dependency is not hammered however often something wakes the loop.
    * A step that raises is logged (with its traceback) and the next try waits ``interval`` × 2,
      × 4, … up to ``max_backoff``; the first success returns to the plain interval.
    * :meth:`stop` cancels the task and waits until it has ended (a step in flight is cancelled).
    """

    def __init__(self, name: str, step: Step, interval: float | Callable[[], float], *,
                 immediate: bool = False, max_backoff: float = 60.0,
                 logger: logging.Logger | None = None) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._immediate = immediate
        self._max_backoff = max_backoff
        self._log = logger or log
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0  # consecutive failed steps (0 after a success)

    @property
    def interval(self) -> float:
        value = self._interval() if callable(self._interval) else self._interval
        if value <= 0:
            raise ValueError(f"background loop {self.name!r}: the interval must be positive, not {value}")
        return value

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"background loop {self.name!r} is already running")
        self.interval  # noqa: B018 -- a bad interval fails at start, not inside the task
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Ask for a step soon (a hint; steps never overlap)."""
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def delay(self) -> float:
        """Seconds until the next step: the interval, or the backoff after failures."""
        if not self.failures:
            return self.interval
        return max(self.interval, min(self._max_backoff, self.interval * 2 ** self.failures))

    async def _wait(self) -> None:
        if self.failures:
            await asyncio.sleep(self.delay())
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.delay())

    async def _run(self) -> None:
        if not self._immediate:
            await self._wait()
        while True:
            self._wake.clear()
            try:
                await self._step()
            except Exception:  # the loop outlives any one step; the log says what broke
                self.failures += 1
                self._log.exception("%s failed (%d in a row); next try in %.1f s",
                                    self.name, self.failures, self.delay())
            else:
                if self.failures:
                    self._log.info("%s works again after %d failed tries", self.name, self.failures)
                self.failures = 0
            await self._wait()
