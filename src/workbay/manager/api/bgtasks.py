"""Background tasks: Backend.AI's SSE stream and Workbay's REST reads (for the WebUI's bell)."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from workbay.manager.services.access import Actor
from workbay.manager.state import ManagerState

from .deps import actor, state
from .wire import Number, WireModel, WireRoute, event_stream, query_schema

router = APIRouter(tags=["background tasks"], route_class=WireRoute)
FINAL = ("bgtask_done", "bgtask_failed", "bgtask_cancelled")


class TaskOut(WireModel):
    task_id: str
    kind: str
    status: str  # running | done | failed | cancelled
    message: str
    current_progress: Number
    total_progress: Number
    created_at: Number
    finished_at: Number | None


class TaskList(WireModel):
    items: list[TaskOut]


class TaskQuery(BaseModel):
    task_id: str | None = None
    taskId: str | None = None  # the official client's spelling


def _wire(ev: dict) -> str:
    return json.dumps({k: ev[k] for k in ("task_id", "message", "current_progress", "total_progress") if k in ev})


@router.get("/events/background-task", response_class=EventSourceResponse, openapi_extra=query_schema(TaskQuery),
            responses=event_stream("Progress of one background task (Server-Sent Events)."))
async def background_task_events(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)):
    task_id = request.query_params.get("task_id") or request.query_params.get("taskId") or ""
    task = st.bgtasks.get(who, task_id)  # 404 before the stream starts

    async def stream():
        async with st.ctx.events.subscribe() as events:
            if task.status != "running":  # finished before the caller came: one event, then close
                yield {"event": f"bgtask_{task.status}", "data": json.dumps(
                    {"task_id": task.task_id, "message": task.message})}
                yield {"event": "server_close", "data": "{}"}
                return
            while not await request.is_disconnected():
                try:
                    ev = await asyncio.wait_for(events.get(), 15)
                except TimeoutError:
                    continue
                if ev.get("task_id") != task_id or not str(ev.get("name", "")).startswith("bgtask_"):
                    continue
                if ev["name"] in FINAL:
                    yield {"event": ev["name"], "data": json.dumps({"task_id": task_id, "message": ev.get("message", "")})}
                    yield {"event": "server_close", "data": "{}"}
                    return
                yield {"event": ev["name"], "data": _wire(ev)}

    return EventSourceResponse(stream(), ping=15)


@router.get("/background-tasks", response_model=TaskList)
async def list_tasks(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return {"items": st.bgtasks.list(who)}


@router.get("/background-tasks/{task_id}", response_model=TaskOut)
async def get_task(task_id: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return st.bgtasks.get(who, task_id).public()
