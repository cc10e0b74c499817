"""Kernel events from agents move kernels and sessions through their lifecycle.

Every handler is idempotent: agents deliver events at least once, and the reconciler may apply
the same outcome again.  Resources held on agents are derived from kernels in an occupying
status, so a kernel that ends releases its slots by changing status.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.domain import DEAD_STATUSES
from workbay.manager.models.compute import ComputeSession, Kernel
from workbay.manager.services.context import ServiceContext
from workbay.manager.services.session_callbacks import SessionCallbacks
from workbay.manager.services.session_status import session_event, set_status

log = logging.getLogger(__name__)
BATCH_REASONS = {"task-finished": "SUCCESS", "task-failed": "FAILURE", "batch-timeout": "FAILURE"}
ERROR_REASONS = {"failed-to-start", "prepare-timeout"}

# Called with (session id, reason) when a kernel's end decides its session's outcome while other
# kernels of the session still run: they must be destroyed (the agent RPC does it in the background).
SessionOutcome = Callable[[uuid.UUID, str], Awaitable[None]]


async def _session_of(s: AsyncSession, kernel: Kernel) -> ComputeSession:
    sess = await s.get(ComputeSession, kernel.session_id)
    if sess is None:  # kernels reference their session (foreign key): only a broken database gets here
        raise LookupError(f"kernel {kernel.id} belongs to session {kernel.session_id}, which does not exist")
    return sess


class Lifecycle:
    def __init__(self, ctx: ServiceContext, on_session_outcome: SessionOutcome,
                 callbacks: SessionCallbacks | None = None) -> None:
        self.ctx = ctx
        self.on_session_outcome = on_session_outcome
        self.callbacks = callbacks

    async def publish(self, sess: ComputeSession, event: str, reason: str | None, exit_code: int | None = None,
                      **extra: Any) -> None:
        ev = session_event(event, session_id=sess.id, session_name=sess.name, access_key=sess.access_key,
                           user_id=sess.user_id, reason=reason, exit_code=exit_code, **extra)
        await self.ctx.events.publish(ev)
        if self.callbacks is not None:
            self.callbacks.notify(sess.callback_url, ev)

    async def publish_kernel(self, sess: ComputeSession, kernel: Kernel, event: str, reason: str | None,
                             exit_code: int | None = None) -> None:
        """kernel_* events (§2.6) carry the kernel's id and cluster position."""
        await self.publish(sess, event, reason, exit_code, kernel_id=kernel.id,
                           cluster_role=kernel.cluster_role, cluster_idx=kernel.cluster_idx)

    async def apply(self, agent_id: str, events: list[dict[str, Any]]) -> None:
        for ev in events:
            try:
                kernel_id = uuid.UUID(str(ev.get("kernel_id")))
            except ValueError:
                log.warning("agent %s sent an event for an unknown kernel id %r", agent_id, ev.get("kernel_id"))
                continue
            name = ev.get("name")
            if name == "kernel_terminated":
                await self.kernel_terminated(kernel_id, ev.get("reason") or "terminated", ev.get("exit_code"),
                                             ev.get("msg"), ev.get("stats"))
            elif name == "kernel_started":
                await self.kernel_started(kernel_id, ev)
            elif name in ("kernel_preparing", "kernel_pulling", "kernel_restarting"):
                await self._kernel_progress(kernel_id, {"kernel_preparing": "PREPARING", "kernel_pulling": "PULLING",
                                                        "kernel_restarting": "RESTARTING"}[name])

    async def _kernel_progress(self, kernel_id: uuid.UUID, status: str) -> None:
        async with self.ctx.db.begin() as s:
            kernel = await s.get(Kernel, kernel_id)
            if kernel is None or kernel.status in DEAD_STATUSES:
                return
            changed = set_status(kernel, status)
            sess = await _session_of(s, kernel)
            if status == "PULLING" and sess.status in ("SCHEDULED", "PREPARING"):
                set_status(sess, "PULLING", "pulling image")
            elif status == "PREPARING" and sess.status == "SCHEDULED":
                set_status(sess, "PREPARING", "preparing")
        if changed:
            await self.publish_kernel(sess, kernel, f"kernel_{status.lower()}", status.lower())

    async def kernel_started(self, kernel_id: uuid.UUID, ev: dict[str, Any]) -> None:
        started = None
        async with self.ctx.db.begin() as s:
            kernel = await s.get(Kernel, kernel_id)
            if kernel is None or kernel.status in DEAD_STATUSES:
                return
            if kernel.status == "RESTARTING" and not ev.get("restarted"):
                return  # a late delivery of the first start's event, not the restart's
            kernel_changed = set_status(kernel, "RUNNING", "started")
            if ev.get("container_id"):
                kernel.container_id = ev["container_id"]
            ports = ev.get("service_ports")
            if ports is not None:
                host = ev.get("kernel_host")
                kernel.service_ports = [{**p, "kernel_host": host} if host else p for p in ports]
            sess = await _session_of(s, kernel)
            siblings = (await s.execute(select(Kernel).where(Kernel.session_id == sess.id))).scalars().all()
            if sess.status in ("SCHEDULED", "PREPARING", "PULLING", "RESTARTING") and all(
                    k.status == "RUNNING" for k in siblings):
                set_status(sess, "RUNNING", "restarted" if sess.status == "RESTARTING" else "started")
                started = sess
        if kernel_changed:
            await self.publish_kernel(sess, kernel, "kernel_started", "started")
        if started is not None:
            await self.publish(started, "session_started", "started")

    async def kernel_terminated(self, kernel_id: uuid.UUID, reason: str, exit_code: int | None,
                                msg: str | None = None, stats: dict[str, Any] | None = None) -> None:
        outcome: tuple[ComputeSession, str, str | None] | None = None
        remaining = False
        async with self.ctx.db.begin() as s:
            kernel = await s.get(Kernel, kernel_id)
            if kernel is None or kernel.status in DEAD_STATUSES:
                return
            set_status(kernel, "TERMINATED", reason)
            kernel.exit_code = exit_code
            if stats:
                kernel.last_stat = stats
            sess = await _session_of(s, kernel)
            siblings = (await s.execute(select(Kernel).where(Kernel.session_id == sess.id))).scalars().all()
            remaining = any(k.status not in DEAD_STATUSES for k in siblings)
            if sess.status in DEAD_STATUSES:
                return
            if sess.status != "TERMINATING":
                if kernel.cluster_role == "main" and reason in BATCH_REASONS:
                    sess.result, sess.exit_code = BATCH_REASONS[reason], exit_code
                    outcome = (sess, "TERMINATED", reason)
                elif reason in ERROR_REASONS:
                    sess.status_data = {**(sess.status_data or {}), "error": {
                        "type": reason, "agent": kernel.agent_id, "message": msg or reason}}
                    outcome = (sess, "ERROR", reason)
                else:
                    if kernel.cluster_role == "main" and exit_code is not None:
                        sess.exit_code = exit_code
                    outcome = (sess, "TERMINATED", reason)
                if remaining:
                    set_status(sess, "TERMINATING", outcome[2])
                else:
                    set_status(sess, outcome[1], outcome[2])
            elif not remaining:
                # The last kernel of a terminating session: it ends as the termination began
                # (a kernel that failed to start makes the whole session an ERROR).
                final = "ERROR" if (sess.status_info or "") in ERROR_REASONS else "TERMINATED"
                set_status(sess, final, sess.status_info)
                outcome = (sess, final, sess.status_info)
            sess.status_data = {**(sess.status_data or {}), "kernels_exit_codes": {
                **(sess.status_data or {}).get("kernels_exit_codes", {}), kernel.cluster_hostname: exit_code}}
        await self.publish_kernel(sess, kernel, "kernel_terminated", reason, exit_code)
        if outcome is None:
            return
        sess, status, why = outcome
        if remaining:
            await self.on_session_outcome(sess.id, why or "terminated")
            return
        if sess.result == "SUCCESS":
            await self.publish(sess, "session_success", why, sess.exit_code)
        elif sess.result == "FAILURE":
            await self.publish(sess, "session_failure", why, sess.exit_code)
        await self.publish(sess, "session_terminated" if status == "TERMINATED" else "session_failure",
                           why, sess.exit_code)

    async def finish_terminating(self, session_id: uuid.UUID) -> None:
        """A TERMINATING session whose kernels are all dead becomes TERMINATED (or ERROR)."""
        async with self.ctx.db.begin() as s:
            sess = await s.get(ComputeSession, session_id)
            if sess is None or sess.status != "TERMINATING":
                return
            kernels = (await s.execute(select(Kernel).where(Kernel.session_id == session_id))).scalars().all()
            if any(k.status not in DEAD_STATUSES for k in kernels):
                return
            final = "ERROR" if (sess.status_info or "") in ERROR_REASONS else "TERMINATED"
            set_status(sess, final, sess.status_info)
        await self.publish(sess, "session_terminated" if final == "TERMINATED" else "session_failure",
                           sess.status_info, sess.exit_code)
