"""Periodic convergence of the compute side: lost agents, sessions a restart left half-done, stuck
terminations, and the kernels each agent reports (heartbeat) against the database."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from workbay.agent.client import AgentError
from workbay.common.background import BackgroundLoop
from workbay.common.domain import DEAD_STATUSES
from workbay.manager.models.compute import Agent, ComputeSession, Kernel
from workbay.manager.services.agent_registry import AgentRegistry, Heartbeat, occupancy_by_agent
from workbay.manager.services.context import ServiceContext

from .agent_rpc import AgentRPC
from .lifecycle import Lifecycle

PROBE_TIMEOUT = 3.0

log = logging.getLogger(__name__)


class ComputeReconciler:
    def __init__(self, ctx: ServiceContext, kernels: AgentRPC, lifecycle: Lifecycle, registry: AgentRegistry) -> None:
        self.ctx = ctx
        self.kernels = kernels
        self.lifecycle = lifecycle
        self.registry = registry
        self.loop = BackgroundLoop("compute-reconciler", self.run_once,
                                   lambda: ctx.config.manager.reconcile_interval, immediate=True, logger=log)
        # Silence is counted from this process's start at the earliest: while the manager was
        # down, agents could not reach it (and their retries back off).
        self.started_at = datetime.now(UTC)
        # Kernels an agent stopped reporting: kernel id -> when first missed (see agent_reported).
        self._missing: dict[uuid.UUID, datetime] = {}
        self._destroying: set[uuid.UUID] = set()  # orphans being destroyed

    def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def run_once(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        await self.mark_lost_agents(now)
        await self.resume_launches(now)
        await self.retry_terminations(now)

    async def mark_lost_agents(self, now: datetime) -> list[str]:
        """Agents silent for longer than agent_lost_timeout (and not answering a direct probe
        either): LOST, their kernels end with agent-lost."""
        cutoff = now - timedelta(seconds=self.ctx.config.manager.agent_lost_timeout)
        if cutoff <= self.started_at:
            return []
        async with self.ctx.db() as s:
            silent = (await s.execute(select(Agent.id, Agent.addr).where(
                Agent.status == "ALIVE", Agent.last_heartbeat < cutoff))).all()
        if not silent:
            return []
        answered = await asyncio.gather(*(self.probe(aid, addr) for aid, addr in silent))
        silent_ids = [aid for (aid, _), ok in zip(silent, answered, strict=False) if not ok]
        if not silent_ids:
            return []
        async with self.ctx.db.begin() as s:
            lost = (await s.execute(select(Agent).where(Agent.id.in_(silent_ids), Agent.status == "ALIVE",
                                                        Agent.last_heartbeat < cutoff))).scalars().all()
            for agent in lost:
                agent.status, agent.status_info, agent.lost_at = "LOST", "no heartbeat", now
            lost_ids = [a.id for a in lost]
            kernels: Sequence[uuid.UUID] = []
            if lost_ids:
                kernels = (await s.execute(select(Kernel.id).where(
                    Kernel.agent_id.in_(lost_ids), Kernel.status.not_in(DEAD_STATUSES)))).scalars().all()
        for agent_id in lost_ids:
            log.warning("agent %s lost (no heartbeat since before %s)", agent_id, cutoff.isoformat())
            await self.ctx.events.publish({"name": "agent_lost", "agent_id": agent_id})
        for kid in kernels:
            await self.lifecycle.kernel_terminated(kid, "agent-lost", None, "the agent stopped answering")
        return lost_ids

    async def probe(self, agent_id: str, addr: str) -> bool:
        """Ask a silent agent directly; an answer counts as a heartbeat (its heartbeats may be
        backing off after the manager was unreachable, or only that direction may be broken)."""
        try:
            async with self.kernels.client(addr, timeout=PROBE_TIMEOUT) as client:
                info = await client.info()
            hb = Heartbeat.model_validate({**info, "id": agent_id})
            await self.registry.heartbeat(hb)
        except (AgentError, httpx.HTTPError, OSError, ValueError) as e:
            log.info("agent %s is silent and does not answer at %s: %s", agent_id, addr, e)
            return False
        log.info("agent %s is silent but answers at %s; kept alive", agent_id, addr)
        await self.agent_reported(hb)
        return True

    async def agent_reported(self, hb: Heartbeat, now: datetime | None = None) -> None:
        """Reconcile the kernels an agent reports (heartbeat or probe) with the database.

        * a kernel the agent runs that has ended here (or never existed) is destroyed on the agent
          -- e.g. the agent was declared lost and came back with its containers still running;
        * a started kernel the agent no longer reports (its container vanished while the agent
          was down, so no event will ever tell) ends with ``kernel-lost`` once it has been
          missing for twice agent_lost_timeout (time for queued events to arrive first);
        * the kernels' last stats sample is stored (the session's ``lastStat``).
        """
        now = now or datetime.now(UTC)
        reported: set[uuid.UUID] = set()
        for raw in hb.kernels:
            try:
                reported.add(uuid.UUID(str(raw)))
            except ValueError:
                continue
        stats: dict[str, Any] = getattr(hb, "kernel_stats", None) or {}
        grace = timedelta(seconds=2 * self.ctx.config.manager.agent_lost_timeout)
        orphans: list[tuple[uuid.UUID, str]] = []
        vanished: list[uuid.UUID] = []
        async with self.ctx.db.begin() as s:
            known = {k.id: k for k in (await s.execute(select(Kernel).where(Kernel.id.in_(reported)))).scalars()} \
                if reported else {}
            for kid in reported:
                k = known.get(kid)
                if k is None or k.status in DEAD_STATUSES or (k.agent_id not in (None, hb.id)):
                    orphans.append((kid, (k.status_info if k is not None else None) or "orphaned"))
                elif stats.get(str(kid)) and k.last_stat != stats[str(kid)]:
                    k.last_stat = stats[str(kid)]
            running = (await s.execute(select(Kernel.id).where(
                Kernel.agent_id == hb.id, Kernel.status == "RUNNING"))).scalars().all()
        for kid in running:
            if kid in reported:
                self._missing.pop(kid, None)
                continue
            first = self._missing.setdefault(kid, now)
            if now - first >= grace:
                vanished.append(kid)
        for kid in list(self._missing):
            if kid not in running:
                self._missing.pop(kid, None)
        for kid, reason in orphans:
            if kid in self._destroying:
                continue
            log.warning("agent %s runs kernel %s that ended here (%s); destroying it", hb.id, kid, reason)
            self._destroying.add(kid)
            self.kernels.spawn(self._destroy_orphan(hb.addr, kid, reason))
        for kid in vanished:
            log.warning("agent %s no longer reports kernel %s; it is gone", hb.id, kid)
            self._missing.pop(kid, None)
            await self.lifecycle.kernel_terminated(
                kid, "kernel-lost", None, f"agent {hb.id} no longer reports this kernel")

    async def on_heartbeat(self, hb: Heartbeat) -> None:
        try:
            await self.agent_reported(hb)
        except Exception:  # never fail the heartbeat itself; the next one retries
            log.exception("reconciling the kernels of agent %s failed", hb.id)

    async def _destroy_orphan(self, addr: str, kernel_id: uuid.UUID, reason: str) -> None:
        try:
            async with self.kernels.client(addr, timeout=120) as client:
                await client.destroy_kernel(str(kernel_id), reason, forced=True)
        except AgentError as e:
            if not e.not_found:
                log.warning("destroying orphaned kernel %s failed: %s", kernel_id, e)
        except (httpx.HTTPError, OSError) as e:
            log.warning("destroying orphaned kernel %s failed: %s", kernel_id, e)
        finally:
            self._destroying.discard(kernel_id)

    async def resume_launches(self, now: datetime) -> None:
        """Sessions scheduled before a manager restart: send their (idempotent) create again."""
        cutoff = now - timedelta(seconds=10)
        async with self.ctx.db() as s:
            ids = (await s.execute(select(ComputeSession.id).where(
                ComputeSession.status.in_(("SCHEDULED", "PREPARING", "PULLING")),
                ComputeSession.scheduled_at < cutoff))).scalars().all()
        for sid in ids:
            self.kernels.launch(sid)

    async def retry_terminations(self, now: datetime) -> None:
        cutoff = now - timedelta(seconds=15)
        async with self.ctx.db() as s:
            rows = (await s.execute(select(ComputeSession).where(ComputeSession.status == "TERMINATING"))).scalars().all()
        for sess in rows:
            last = (sess.status_history or [{}])[-1].get("timestamp")
            if last and datetime.fromisoformat(last) < cutoff:
                self.kernels.spawn(self.kernels.terminate_session(sess.id, sess.status_info or "terminated"))

    async def recalculate_usage(self, progress: Callable[[int, int], Awaitable[object]] | None = None
                                ) -> dict[str, dict[str, str]]:
        """AD-8: rebuild every agent's occupied slots from its live kernels.  ``progress``
        (``await progress(done, total)``) hears about each agent."""
        async with self.ctx.db.begin() as s:
            occupied = await occupancy_by_agent(s)
            out: dict[str, dict[str, str]] = {}
            agents = list((await s.execute(select(Agent))).scalars())
            for n, agent in enumerate(agents, 1):
                slots = occupied.get(agent.id)
                out[agent.id] = slots.to_json() if slots else {}
                agent.occupied_slots = out[agent.id]
                if progress is not None:
                    await progress(n, len(agents))
        return out
