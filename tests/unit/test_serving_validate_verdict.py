"""The validate dry run always ends with a verdict: an unexpected error mid-run is a failed one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from workbay.manager.compute.serving_validate import DryRun, Event


class Exploding(DryRun):
    async def _run(self, svc: Any) -> AsyncIterator[Event]:
        yield "step", {"step": "starting", "status": "running"}
        raise RuntimeError("secrets.appproxy is empty")


@pytest.mark.asyncio
async def test_an_error_mid_run_ends_with_a_failed_verdict() -> None:
    dry = Exploding(ctx=None, sessions=None, kernels=None, specs=None)  # type: ignore[arg-type]

    class Svc:
        name = "svc"
    events = [e async for e in dry.run(Svc())]  # type: ignore[arg-type]
    assert events[0] == ("step", {"step": "starting", "status": "running"})
    assert events[-2] == ("step", {"step": "starting", "status": "failed"})
    name, verdict = events[-1]
    assert name == "verdict" and verdict["ok"] is False and verdict["step"] == "starting"
    assert "secrets.appproxy is empty" in verdict["message"]
