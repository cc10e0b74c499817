"""The scheduling loop: for each resource group with pending sessions, load it (``tick_loader``),
ask the pure core (``manager/scheduler``), write its decisions, then publish and launch.

Each group ticks in its own transaction: one group's failure (logged) rolls back that group only,
and the others are scheduled as usual.  Several manager replicas may run the loop: on PostgreSQL
each group's transaction holds a transaction-scoped advisory lock; SQLite means one process, so an
asyncio lock is enough.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.background import BackgroundLoop
from workbay.common.domain import SessionStatus
from workbay.manager.models import ResourceGroup
from workbay.manager.models.compute import Agent, ComputeSession, Kernel
from workbay.manager.scheduler import core
from workbay.manager.services.context import ServiceContext
from workbay.manager.services.session_status import set_status

from . import tick_loader
from .lifecycle import Lifecycle

log = logging.getLogger(__name__)
ADVISORY_LOCK_KEY = 0x57_42_53_43  # "WBSC"


class KernelLaunch(Protocol):
    """Starts a scheduled session's kernels on their agents (``AgentRPC.launch``)."""

    def launch(self, session_id: uuid.UUID) -> None: ...


@dataclass(frozen=True)
class _Refused:
    """The session of a decision about a row that never became a ``core.PendingSession``."""
    id: str


@dataclass
class GroupOutcome:
    """What one group's committed tick leaves to do: events to publish, sessions to launch."""
    result: core.SchedulingResult
    scheduled: list[uuid.UUID] = field(default_factory=list)
    events: list[tuple[ComputeSession, str, str]] = field(default_factory=list)


class Dispatcher:
    """Implements ``services.compute_ports.SchedulerWake``."""

    def __init__(self, ctx: ServiceContext, kernels: KernelLaunch, lifecycle: Lifecycle) -> None:
        self.ctx = ctx
        self.kernels = kernels
        self.lifecycle = lifecycle
        self._lock = asyncio.Lock()
        # A failing tick (database unreachable) backs off to 15 s at most: sessions should not
        # wait long once the database is back.
        self.loop = BackgroundLoop("scheduler", self.tick, lambda: ctx.config.manager.scheduler_interval,
                                   max_backoff=15.0, logger=log)

    def wake(self) -> None:
        self.loop.wake()

    def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def tick(self, now: datetime | None = None) -> core.SchedulingResult | None:
        """One pass over every resource group with pending sessions; returns the last group's result."""
        now = now or datetime.now(UTC)
        result = None
        async with self._lock:
            async with self.ctx.db() as s:
                groups = await tick_loader.pending_groups(s)
            for name in groups:
                try:
                    outcome = await self.tick_group(name, now)
                except Exception:  # one group's trouble never stops the others (its writes are rolled back)
                    log.exception("scheduling resource group %s failed; the other groups go on", name)
                    continue
                if outcome is None:
                    continue
                result = outcome.result
                for sess, event, reason in outcome.events:
                    await self.lifecycle.publish(sess, event, reason)
                for sid in outcome.scheduled:
                    self.kernels.launch(sid)
        return result

    async def tick_group(self, name: str, now: datetime) -> GroupOutcome | None:
        """Schedule one resource group in a transaction of its own; None if the group is gone."""
        async with self.ctx.db.begin() as s:
            if s.get_bind().dialect.name == "postgresql":
                await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            rg = await s.get(ResourceGroup, name)
            if rg is None:
                log.warning("pending sessions name resource group %s, which does not exist", name)
                return None
            snap = await tick_loader.load_group(s, rg, now)
            result = core.schedule(snap.input)
            outcome = GroupOutcome(result)
            decisions: list[core.Decision] = list(result.decisions)
            for p, error in snap.refused:
                decisions.append(core.Cancelled(_Refused(str(p.id)), core.CANCEL_INVALID_REQUEST,  # type: ignore[arg-type]
                                                f"the request cannot be scheduled: {error[:500]}"))
            for decision in decisions:
                try:
                    self._apply(decision, snap.rows[decision.session.id], now, snap, outcome)
                except Exception:
                    log.exception("recording the scheduler's decision on session %s failed", decision.session.id)
            await self._write_occupancy(s, result)
        return outcome

    @staticmethod
    async def _write_occupancy(s: AsyncSession, result: core.SchedulingResult) -> None:
        for agent_id, slots in result.agent_occupied.items():
            agent = await s.get(Agent, agent_id)
            if agent is not None:
                agent.occupied_slots = slots.to_json()

    @staticmethod
    def _apply(decision: core.Decision, sess: ComputeSession, now: datetime, snap: tick_loader.GroupSnapshot,
               outcome: GroupOutcome) -> None:
        """Write one decision onto its rows (everything that can fail is computed first)."""
        predicates: Sequence[core.PredicateResult] = getattr(decision, "predicates", ())
        record = {"last_try": now.isoformat(), "predicates": [
            {"name": p.name, "passed": p.passed, "message": p.message} for p in predicates]}
        previous = sess.status_data if isinstance(sess.status_data, dict) else {}
        kernels: list[Kernel] = snap.kernels_of[sess.id]
        if isinstance(decision, core.Scheduled):
            placements = [(k, p.agent_id, snap.agent_addr[p.agent_id], p.slots.to_json())
                          for k, p in zip(kernels, sorted(decision.placements, key=lambda p: p.index), strict=False)]
            occupying = decision.slots.to_json()
            for k, agent_id, agent_addr, slots in placements:
                k.agent_id, k.agent_addr, k.occupied_slots = agent_id, agent_addr, slots
                set_status(k, SessionStatus.SCHEDULED)
            sess.occupying_slots = occupying
            sess.scheduling_attempts = (sess.scheduling_attempts or 0) + 1
            sess.last_try_at = now
            sess.status_data = {**previous, "scheduler": {**record, "retries": sess.scheduling_attempts}}
            set_status(sess, SessionStatus.SCHEDULED, "scheduled")
            outcome.scheduled.append(sess.id)
            outcome.events.append((sess, "session_scheduled", "scheduled"))
        elif isinstance(decision, core.StillPending):
            sess.scheduling_attempts = decision.attempts
            sess.skip_count = decision.blocking_retries
            sess.last_try_at = now
            sess.status_info = "pending"
            sess.status_data = {**previous, "scheduler": {
                **record, "retries": decision.attempts, "blocking_retries": decision.blocking_retries,
                "blocked_by": decision.blocked_by, "msg": decision.message}}
        else:
            for k in kernels:
                set_status(k, SessionStatus.CANCELLED, decision.reason)
            sess.status_data = {**previous, "scheduler": {**record, "msg": decision.message}}
            set_status(sess, SessionStatus.CANCELLED, decision.reason)
            outcome.events.append((sess, "session_cancelled", decision.reason))
