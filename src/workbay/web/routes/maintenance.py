"""Admin Maintenance page (AD-8, superadmins): "Recalculate usage" rebuilds the agents' occupied
resources from their live containers as a background task (progress on the page and in the bell);
"Rescan images" asks every agent for its images.  Recent background tasks are listed."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError

from .. import context as web_context
from ..context import AdminPage, LoggedIn, PageContext
from ..i18n import N_
from ..responses import api_error_text, events, notify

router = APIRouter(tags=["pages"])
TASK_TITLES = {"recalculate-usage": N_("Recalculate usage"), "clone-folder": N_("Clone folder")}


def _require_superadmin(ctx: PageContext) -> None:
    if not (ctx.session and ctx.session.is_superadmin):
        raise web_context.PageForbidden()


def task_view(task: dict[str, Any]) -> dict[str, Any]:
    total = float(task.get("total_progress") or 0)
    current = float(task.get("current_progress") or 0)
    pct = (current / total * 100) if total else (100.0 if task.get("status") == "done" else 0.0)
    return {**task, "pct": max(0.0, min(100.0, pct)), "title": TASK_TITLES.get(task.get("kind", ""), task.get("kind", "")),
            "finished": task.get("status") in ("done", "failed", "cancelled")}


async def _tasks(ctx: PageContext) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            listing = await api.get("/background-tasks")
        except APIError as err:
            return [], api_error_text(err)
    items = sorted(listing.get("items") or [], key=lambda t: t.get("created_at") or 0, reverse=True)
    return [task_view(t) for t in items[:10]], None


@router.get("/maintenance")
async def maintenance_page(request: Request, ctx: AdminPage) -> Response:
    _require_superadmin(ctx)
    tasks, error = await _tasks(ctx)
    ctx.section = "maintenance"
    return ctx.state.renderer.render(request, "pages/maintenance.html", tasks=tasks, tasks_error=error)


@router.get("/maintenance/tasks")
async def task_list(request: Request, ctx: LoggedIn) -> Response:
    _require_superadmin(ctx)
    tasks, error = await _tasks(ctx)
    return ctx.state.renderer.render(request, "components/task_list.html", tasks=tasks, tasks_error=error)


@router.get("/maintenance/tasks/{task_id}")
async def task_progress(task_id: str, request: Request, ctx: LoggedIn) -> Response:
    _require_superadmin(ctx)
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            task = task_view(await api.get(f"/background-tasks/{quote(task_id, safe='')}"))
        except APIError as err:
            title, message = api_error_text(err)
            task = {"task_id": task_id, "status": "failed", "message": f"{title} {message}".strip(), "pct": 0,
                    "title": "", "finished": True}
    response = ctx.state.renderer.render(request, "components/task_progress.html", task=task)
    return notify(response, changed=True) if task["finished"] else response


@router.post("/maintenance/recalculate")
async def recalculate(request: Request, ctx: LoggedIn) -> Response:
    _require_superadmin(ctx)
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            started = await api.post("/resource/recalculate-usage", json={"background": True})
        except APIError as err:
            title, message = api_error_text(err)
            return events(ctx, toast=f"{title} {message}".strip(), level="danger")
    task_id = started.get("task_id") if isinstance(started, dict) else None
    title = ctx._("Recalculate usage")
    if not task_id:  # a manager without background tasks answers {} when done
        return events(ctx, toast=ctx._("The usage was recalculated."))
    task = {"task_id": task_id, "status": "running", "message": "", "pct": 0, "title": title, "finished": False}
    response = ctx.state.renderer.render(request, "components/task_progress.html", task=task)
    return notify(response, toast=ctx._("Recalculating the usage started. Its progress is in the notifications."),
                  level="info", extra={"wb:bgtask": {"task_id": task_id, "title": title, "href": "/maintenance"}})


@router.post("/maintenance/rescan-images")
async def rescan_images(request: Request, ctx: LoggedIn) -> Response:
    _require_superadmin(ctx)
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            result = await api.post("/admin/images/rescan")
        except APIError as err:
            title, message = api_error_text(err)
            return events(ctx, toast=f"{title} {message}".strip(), level="danger")
    failed = result.get("failed") or []
    scanned = result.get("scanned_agents") or []
    images = result.get("images") or []
    if failed:
        return events(ctx, level="warning", changed=True, toast=ctx._(
            "Images rescanned. Agents: %(count)s; no answer from: %(agents)s.", count=len(scanned),
            agents=", ".join(str(f.get("agent")) for f in failed)))
    return events(ctx, changed=True, toast=ctx._("Images rescanned. Agents: %(count)s, images: %(images)s.",
                                                 count=len(scanned), images=len(images)))
