"""BackgroundLoop: interval, wake-up hint, error logging with backoff, clean stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from workbay.common.background import BackgroundLoop


class Counter:
    def __init__(self, fail: int = 0) -> None:
        self.calls = 0
        self.fail = fail
        self.stamps: list[float] = []

    async def __call__(self) -> None:
        self.calls += 1
        self.stamps.append(asyncio.get_running_loop().time())
        if self.calls <= self.fail:
            raise RuntimeError(f"broken step #{self.calls}")


async def test_runs_every_interval() -> None:
    step = Counter()
    loop = BackgroundLoop("ticker", step, 0.02)
    loop.start()
    await asyncio.sleep(0.13)
    await loop.stop()
    assert 3 <= step.calls <= 7


async def test_first_step_waits_an_interval_unless_immediate() -> None:
    late, early = Counter(), Counter()
    a = BackgroundLoop("late", late, 10)
    b = BackgroundLoop("early", early, 10, immediate=True)
    a.start()
    b.start()
    await asyncio.sleep(0.05)
    await a.stop()
    await b.stop()
    assert (late.calls, early.calls) == (0, 1)


async def test_wake_runs_the_step_early() -> None:
    step = Counter()
    loop = BackgroundLoop("woken", step, 30)
    loop.start()
    await asyncio.sleep(0.01)
    assert step.calls == 0
    loop.wake()
    await asyncio.sleep(0.02)
    assert step.calls == 1
    loop.wake()
    await asyncio.sleep(0.02)
    await loop.stop()
    assert step.calls == 2


async def test_wake_during_a_step_runs_one_more() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def slow() -> None:
        nonlocal calls
        calls += 1
        started.set()
        if calls == 1:
            await release.wait()

    loop = BackgroundLoop("slow", slow, 30, immediate=True)
    loop.start()
    await started.wait()
    loop.wake()
    loop.wake()  # hints do not pile up
    release.set()
    await asyncio.sleep(0.03)
    await loop.stop()
    assert calls == 2


async def test_errors_are_logged_with_backoff_and_the_loop_recovers(caplog: pytest.LogCaptureFixture) -> None:
    step = Counter(fail=3)
    loop = BackgroundLoop("flaky", step, 0.02, immediate=True, max_backoff=0.1)
    with caplog.at_level(logging.INFO, logger="workbay.common.background"):
        loop.start()
        await asyncio.sleep(0.4)
        await loop.stop()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert all("flaky failed" in r.getMessage() and r.exc_info for r in errors)
    assert "broken step #1" in caplog.text
    # The waits after failures grow: 0.04, 0.08, then capped at 0.1 (never below the interval).
    gaps = [b - a for a, b in zip(step.stamps, step.stamps[1:], strict=False)]
    assert gaps[0] >= 0.035 and gaps[1] >= 0.075 and gaps[2] >= 0.095
    assert step.calls >= 5  # back to the plain interval after the first success
    assert loop.failures == 0
    assert any("works again after 3 failed tries" in r.getMessage() for r in caplog.records)


async def test_wake_does_not_cut_a_backoff_short() -> None:
    # A failure waits 2 x the interval (2 s here): wide enough that a loaded machine's slow
    # sleeps below never reach it, so any second call could only come from a wake-up.
    step = Counter(fail=10)
    loop = BackgroundLoop("broken", step, 1.0, immediate=True, max_backoff=10.0)
    loop.start()
    while step.calls < 1:
        await asyncio.sleep(0.005)
    for _ in range(5):
        loop.wake()
        await asyncio.sleep(0.01)
    await loop.stop()
    assert step.calls == 1


async def test_stop_cancels_a_step_in_flight_and_awaits_it() -> None:
    entered, cleaned = asyncio.Event(), []

    async def forever() -> None:
        entered.set()
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append(True)

    loop = BackgroundLoop("forever", forever, 1, immediate=True)
    loop.start()
    await entered.wait()
    assert loop.running
    await loop.stop()
    assert cleaned == [True] and not loop.running
    await loop.stop()  # twice is harmless


async def test_stop_before_start_and_restart() -> None:
    step = Counter()
    loop = BackgroundLoop("idle", step, 10, immediate=True)
    await loop.stop()
    loop.start()
    with pytest.raises(RuntimeError, match="already running"):
        loop.start()
    await asyncio.sleep(0.01)
    await loop.stop()
    loop.start()
    await asyncio.sleep(0.01)
    await loop.stop()
    assert step.calls == 2


async def test_a_bad_interval_fails_at_start() -> None:
    loop = BackgroundLoop("bad", Counter(), 0)
    with pytest.raises(ValueError, match="'bad'.*positive"):
        loop.start()
    assert not loop.running


async def test_interval_may_be_read_each_time() -> None:
    step, period = Counter(), [10.0]
    loop = BackgroundLoop("configurable", step, lambda: period[0])
    loop.start()
    await asyncio.sleep(0.02)
    assert step.calls == 0
    period[0] = 0.01
    loop.wake()
    await asyncio.sleep(0.06)
    await loop.stop()
    assert step.calls >= 3
