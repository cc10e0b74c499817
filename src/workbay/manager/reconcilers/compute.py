"""Periodic convergence: lost agents, sessions a restart left half-done, stuck terminations."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from workbay.manager.models.compute import Agent, ComputeSession, Kernel
from workbay.manager.scheduler.dispatcher import occupancy_by_agent
from workbay.manager.scheduler.launcher import Launcher
from workbay.manager.services.context import ServiceContext
from workbay.manager.services.session_status import DEAD

log = logging.getLogger(__name__)


class ComputeReconciler:
    def __init__(self, ctx: ServiceContext, launcher: Launcher) -> None:
        self.ctx = ctx
        self.launcher = launcher
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="compute-reconciler")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("reconciliation failed; retrying")
            await asyncio.sleep(self.ctx.config.manager.reconcile_interval)

    async def run_once(self, now: datetime | None = None) -> None:
        now = now or datetime.now(timezone.utc)
        await self.mark_lost_agents(now)
        await self.resume_launches(now)
        await self.retry_terminations(now)

    async def mark_lost_agents(self, now: datetime) -> list[str]:
        """Agents silent for longer than agent_lost_timeout: LOST, their kernels end with agent-lost."""
        cutoff = now - timedelta(seconds=self.ctx.config.manager.agent_lost_timeout)
        async with self.ctx.db.begin() as s:
            lost = (await s.execute(select(Agent).where(Agent.status == "ALIVE",
                                                        Agent.last_heartbeat < cutoff))).scalars().all()
            for agent in lost:
                agent.status, agent.status_info, agent.lost_at = "LOST", "no heartbeat", now
            lost_ids = [a.id for a in lost]
            kernels = []
            if lost_ids:
                kernels = (await s.execute(select(Kernel.id).where(
                    Kernel.agent_id.in_(lost_ids), Kernel.status.not_in(DEAD)))).scalars().all()
        for agent_id in lost_ids:
            log.warning("agent %s lost (no heartbeat since before %s)", agent_id, cutoff.isoformat())
            await self.ctx.events.publish({"name": "agent_lost", "agent_id": agent_id})
        for kid in kernels:
            await self.launcher.lifecycle.kernel_terminated(kid, "agent-lost", None, "the agent stopped answering")
        return lost_ids

    async def resume_launches(self, now: datetime) -> None:
        """Sessions scheduled before a manager restart: send their (idempotent) create again."""
        cutoff = now - timedelta(seconds=10)
        async with self.ctx.db() as s:
            ids = (await s.execute(select(ComputeSession.id).where(
                ComputeSession.status.in_(("SCHEDULED", "PREPARING", "PULLING")),
                ComputeSession.scheduled_at < cutoff))).scalars().all()
        for sid in ids:
            self.launcher.launch(sid)

    async def retry_terminations(self, now: datetime) -> None:
        cutoff = now - timedelta(seconds=15)
        async with self.ctx.db() as s:
            rows = (await s.execute(select(ComputeSession).where(ComputeSession.status == "TERMINATING"))).scalars().all()
        for sess in rows:
            last = (sess.status_history or [{}])[-1].get("timestamp")
            if last and datetime.fromisoformat(last) < cutoff:
                self.launcher.spawn(self.launcher.terminate_session(sess.id, sess.status_info or "terminated"))

    async def recalculate_usage(self) -> dict[str, dict[str, str]]:
        """AD-8: rebuild every agent's occupied slots from its live kernels."""
        async with self.ctx.db.begin() as s:
            occupied = await occupancy_by_agent(s)
            out = {}
            for agent in (await s.execute(select(Agent))).scalars():
                agent.occupied_slots = occupied.get(agent.id, {}) and occupied[agent.id].to_json()
                out[agent.id] = agent.occupied_slots or {}
        return out
