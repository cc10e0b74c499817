"""The validate dry run (MS-3, ``POST /services/_/validate``): start ONE replica of a service that
is not stored (no route, no row), follow it and say whether it would serve.

Events (``(name, data)``):

* ``step`` ``{"step", "status"}``: ``scheduling`` → ``starting`` (image, container) → ``pre-start``
  (the runner's pre-start actions and the start command, until the first health check) →
  ``health-check``; ``status`` is ``running``, ``done`` or ``failed``;
* ``log`` ``{"line"}``: each new line of the container log (polled every :data:`POLL` s);
* ``verdict`` ``{"ok": true, "message"}`` once the health check passes, or ``{"ok": false, "step",
  "message", "log"}`` when the session ends (a start command that exits, even with 0, is a failure:
  "finished" is never success), fails, or the check never passes within its limits.

The replica's session (named ``validate-<name>-<hex>``) is always terminated at the end, also when
the client goes away (the generator is closed: the termination runs in a task of its own).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from sqlalchemy import select

from workbay.common.domain import DEAD_STATUSES, RUNNING_STATUSES
from workbay.common.errors import BackendError
from workbay.manager.models import User
from workbay.manager.models.compute import ComputeSession, Kernel
from workbay.manager.models.serving import ModelService
from workbay.manager.services.compute_ports import KernelOps
from workbay.manager.services.context import ServiceContext
from workbay.manager.services.session_apps import app_secret
from workbay.manager.services.session_request import CreateSession, ReplicaLaunch

from . import serving_probe as probe
from .serving import ReplicaSessions, ReplicaSpecs, health_check_of, owner_actor, replica_request

log = logging.getLogger(__name__)
POLL = 1.0  # seconds between looks at the session, its log and (when due) its health
MAX_WAIT_START = 900.0  # seconds the session may take to run (scheduling, image, container)
LOG_TAIL_LINES = 50
SCHEDULING, STARTING, PRE_START, HEALTH = "scheduling", "starting", "pre-start", "health-check"
Event = tuple[str, dict[str, Any]]


def dry_run_request(svc: ModelService) -> CreateSession:
    """The dry run's session: a replica's, under a name of its own and without the service's
    callback URL (a trial is not the service's lifecycle)."""
    return replica_request(svc, dry_run_name(svc.name)).model_copy(update={"callback_url": None})


def dry_run_name(service_name: str) -> str:
    return f"validate-{service_name[:40].rstrip('-_.')}-{uuid.uuid4().hex[:6]}"


def _step_of(status: str) -> str:
    if status in ("PENDING", "SCHEDULED"):
        return SCHEDULING
    if status in ("PREPARING", "PULLING"):
        return STARTING
    return PRE_START


class DryRun:
    """Implements ``services.compute_ports.ServiceValidator``."""

    def __init__(self, ctx: ServiceContext, sessions: ReplicaSessions, kernels: KernelOps,
                 specs: ReplicaSpecs) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.kernels = kernels
        self.specs = specs
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, svc: ModelService) -> AsyncIterator[Event]:
        session_id: uuid.UUID | None = None
        step = SCHEDULING
        try:
            async for name, data in self._run(svc):
                if name == "_session":
                    session_id = data["id"]
                    continue
                if name == "step":
                    step = data["step"]
                yield name, data
        except Exception as e:  # a dry run always ends with a verdict, never a cut stream
            log.exception("the validate dry run of %s failed", svc.name)
            yield "step", {"step": step, "status": "failed"}
            yield "verdict", {"ok": False, "step": step, "message": f"the dry run failed: {e}"}
        finally:
            if session_id is not None:
                self._spawn(self._terminate(session_id))

    def _terminate_created(self, creating: asyncio.Task[Any]) -> None:
        if not creating.cancelled() and creating.exception() is None:
            self._spawn(self._terminate(creating.result().id))

    async def _terminate(self, session_id: uuid.UUID) -> None:
        try:
            await self.kernels.terminate_session(session_id, "model-service-validated", forced=True)
        except Exception as e:  # the compute reconciler retries stuck terminations
            log.warning("terminating the validate session %s failed: %s", session_id, e)

    async def _run(self, svc: ModelService) -> AsyncIterator[Event]:
        step = SCHEDULING
        yield "step", {"step": step, "status": "running"}
        async with self.ctx.db() as s:
            owner = await s.get(User, svc.owner_user_id)
        if owner is None:
            yield "verdict", {"ok": False, "step": step, "message": "the service's owner no longer exists"}
            return
        try:
            spec = await self.specs.replica_spec(svc)
            creating = asyncio.create_task(self.sessions.create(
                owner_actor(owner, svc.owner_access_key), dry_run_request(svc),
                replica=ReplicaLaunch(model_service=spec.launch(), read_only_folders=frozenset({svc.model_folder_id}))))
            try:
                created = await asyncio.shield(creating)
            except asyncio.CancelledError:  # the client left while the session was being made
                creating.add_done_callback(self._terminate_created)
                raise
        except (BackendError, ValueError) as e:
            yield "step", {"step": step, "status": "failed"}
            yield "verdict", {"ok": False, "step": step, "message": f"the replica could not be created: {e}"}
            return
        session_id: uuid.UUID = created.id
        yield "_session", {"id": session_id}
        hc = health_check_of(spec.launch())
        port = spec.port
        secret = app_secret(self.ctx.config, session_id)
        lines: list[str] = []
        began = time.monotonic()
        running_since: float | None = None
        next_check = 0.0
        last_detail = ""
        while True:
            sess, kernel = await self._load(session_id)
            for line in await self._new_lines(kernel, lines):
                yield "log", {"line": line}
            status = sess.status if sess is not None else "TERMINATED"
            if sess is None or status in DEAD_STATUSES or status == "TERMINATING":
                if sess is not None and sess.started_at is not None and step in (SCHEDULING, STARTING):
                    # it ran and ended between two looks: the start command failed, not scheduling
                    yield "step", {"step": step, "status": "done"}
                    step = PRE_START
                why = (sess.status_info if sess is not None else None) or status.lower()
                code = f", exit code {sess.exit_code}" if sess is not None and sess.exit_code is not None else ""
                yield "step", {"step": step, "status": "failed"}
                yield "verdict", {"ok": False, "step": step,
                                  "message": f"the session ended ({status}: {why}{code}) before the health "
                                             "check passed", "log": "\n".join(lines[-LOG_TAIL_LINES:])}
                return
            now_step = _step_of(status)
            if status in RUNNING_STATUSES and running_since is None:
                running_since = time.monotonic()
                next_check = running_since + hc.initial_delay
            if now_step != step and step != HEALTH:
                yield "step", {"step": step, "status": "done"}
                if now_step == PRE_START and step == SCHEDULING:
                    yield "step", {"step": STARTING, "status": "done"}
                step = now_step
                yield "step", {"step": step, "status": "running"}
            if running_since is None:
                if time.monotonic() - began > MAX_WAIT_START:
                    yield "step", {"step": step, "status": "failed"}
                    yield "verdict", {"ok": False, "step": step, "message": f"the session did not start within "
                                      f"{MAX_WAIT_START:.0f} s ({status})", "log": "\n".join(lines[-LOG_TAIL_LINES:])}
                    return
            elif time.monotonic() >= next_check:
                if step != HEALTH:
                    yield "step", {"step": step, "status": "done"}
                    step = HEALTH
                    yield "step", {"step": step, "status": "running"}
                target = probe.model_target(kernel.service_ports if kernel is not None else None, port)
                if target is None:
                    result = probe.CheckResult(False, "the model port is not published")
                else:
                    result = await probe.health_check(target, secret, hc.path or None, hc.expected_status_code,
                                                      hc.max_wait_time)
                if result.ok:
                    for line in await self._new_lines(kernel, lines):
                        yield "log", {"line": line}
                    yield "step", {"step": step, "status": "done"}
                    yield "verdict", {"ok": True, "message": "the health check passed: the service would serve"}
                    return
                last_detail = result.detail
                next_check = time.monotonic() + hc.interval
                if time.monotonic() > running_since + hc.start_deadline:
                    yield "step", {"step": step, "status": "failed"}
                    yield "verdict", {"ok": False, "step": step, "message": (
                        f"the health check did not pass within {hc.start_deadline:.0f} s: {last_detail}"),
                        "log": "\n".join(lines[-LOG_TAIL_LINES:])}
                    return
            await asyncio.sleep(POLL)

    async def _load(self, session_id: uuid.UUID) -> tuple[ComputeSession | None, Kernel | None]:
        async with self.ctx.db() as s:
            sess = await s.get(ComputeSession, session_id)
            kernel = (await s.execute(select(Kernel).where(Kernel.session_id == session_id,
                                                           Kernel.cluster_role == "main"))).scalars().first()
        return sess, kernel

    async def _new_lines(self, kernel: Kernel | None, seen: list[str]) -> list[str]:
        """The log lines not yet sent (``seen`` grows)."""
        if kernel is None or kernel.agent_addr is None or kernel.status in ("PENDING", "SCHEDULED"):
            return []
        try:
            text = await self.kernels.logs(kernel)
        except Exception:  # no log yet (the container is being created), or the agent is busy
            return []
        current = text.splitlines()
        if current[:len(seen)] != seen:  # the log restarted (or was cut): send it anew
            seen.clear()
        fresh = current[len(seen):]
        seen.extend(fresh)
        return fresh

