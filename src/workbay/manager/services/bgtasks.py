"""Background tasks: long work (recalculating usage, cloning a folder) that answers at once with a
task id and reports progress as ``bgtask_*`` events (docs/backendai-api.md §2.6).

Task states live in the manager process that runs them; progress travels on the event bus, so
any replica's SSE stream sees the events of a task that started before it subscribed only if it
is the one running it (a REST poll answers from the same process)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from workbay.common.errors import ObjectNotFound

from .access import Actor
from .context import ServiceContext

log = logging.getLogger(__name__)
KEEP_FINISHED = 200  # finished tasks remembered per process (for late pollers)


@dataclass
class TaskState:
    task_id: str
    kind: str
    user_id: str
    status: str = "running"  # running | done | failed | cancelled
    message: str = ""
    current_progress: float = 0
    total_progress: float = 0
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "user_id"}


class Progress:
    """What a task uses to report how far it got."""

    def __init__(self, tasks: BackgroundTasks, state: TaskState) -> None:
        self._tasks, self.state = tasks, state

    async def update(self, current: float, total: float | None = None, message: str = "") -> None:
        self.state.current_progress = current
        if total is not None:
            self.state.total_progress = total
        if message:
            self.state.message = message
        await self._tasks.publish(self.state, "bgtask_updated")


class BackgroundTasks:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.tasks: dict[str, TaskState] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def publish(self, state: TaskState, name: str) -> None:
        await self.ctx.events.publish({
            "name": name, "task_id": state.task_id, "user_id": state.user_id, "message": state.message,
            "current_progress": state.current_progress, "total_progress": state.total_progress})

    def start(self, actor: Actor, kind: str, work: Callable[[Progress], Awaitable[str | None]]) -> str:
        state = TaskState(task_id=str(uuid.uuid4()), kind=kind, user_id=str(actor.user_id))
        self.tasks[state.task_id] = state
        self._forget_old()
        task = asyncio.create_task(self._run(state, work), name=f"bgtask-{kind}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return state.task_id

    async def _run(self, state: TaskState, work: Callable[[Progress], Awaitable[str | None]]) -> None:
        try:
            message = await work(Progress(self, state))
            state.status, state.message = "done", message or state.message or "done"
            if state.total_progress:
                state.current_progress = state.total_progress
        except asyncio.CancelledError:
            state.status, state.message = "cancelled", "cancelled"
        except Exception as e:  # the task's failure is its result, reported to whoever waits
            log.warning("background task %s (%s) failed: %s", state.task_id, state.kind, e)
            state.status, state.message = "failed", getattr(e, "msg", None) or str(e) or e.__class__.__name__
        state.finished_at = time.time()
        await self.publish(state, f"bgtask_{state.status}")

    def _forget_old(self) -> None:
        finished = sorted((s for s in self.tasks.values() if s.finished_at), key=lambda s: s.finished_at or 0)
        for s in finished[:-KEEP_FINISHED] if len(finished) > KEEP_FINISHED else []:
            self.tasks.pop(s.task_id, None)

    def get(self, actor: Actor, task_id: str) -> TaskState:
        state = self.tasks.get(task_id)
        if state is None or (state.user_id != str(actor.user_id) and not actor.is_superadmin):
            raise ObjectNotFound(f"No such background task: {task_id}", object_name="background task")
        return state

    def list(self, actor: Actor) -> list[dict[str, Any]]:
        mine = [s for s in self.tasks.values() if s.user_id == str(actor.user_id)]
        return [s.public() for s in sorted(mine, key=lambda s: s.created_at, reverse=True)[:50]]

    async def close(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
