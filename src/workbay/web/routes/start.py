"""Home (start page, UI-3): shortcuts to what users do most — start an interactive or a batch
session, create a folder, upload files.  And the Summary page's resource cards (UI-4), loaded into
the Summary page: the resource usage of the current resource group against the user's limits
(CPU, memory, accelerators, sessions) with a resource-group switcher, and the system resources
(agents, sessions — a user's own only —, what the group's agents have allocated)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError

from ..context import LoggedIn, UserPage
from ..responses import api_error_text
from .agent_summary import project_of, slot_bars, summary_params
from .sessions import resource_bars

router = APIRouter(tags=["pages"])


@router.get("/start")
async def start_page(request: Request, ctx: UserPage) -> Response:
    ctx.section = "start"
    return ctx.state.renderer.render(request, "pages/start.html",
                                     can_launch=bool(ctx.session and ctx.session.role != "monitor"))


@router.get("/summary/resources")
async def summary_resources(request: Request, ctx: LoggedIn) -> Response:
    """The resource cards of the Summary page (htmx fragment; the switcher reloads it)."""
    chosen = request.query_params.get("resource_group", "").strip() or None
    project = project_of(ctx)
    error, summary, bars, allocation = None, {}, [], []
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            summary = await api.get("/resource/summary", params=summary_params(ctx, chosen))
            presets = await api.post("/resource/check-presets", json={
                "group": (summary.get("project") or {}).get("id") or project or "default",
                "scaling_group": summary.get("resource_group")})
            bars = resource_bars(presets, summary)
            allocation = slot_bars(summary.get("capacity"), summary.get("occupied"))
        except APIError as err:
            error = api_error_text(err)
    return ctx.state.renderer.render(request, "components/summary_resources.html", summary=summary, bars=bars,
                                     allocation=allocation, resources_error=error,
                                     is_admin=bool(ctx.session and ctx.session.role in ("superadmin", "admin", "monitor")))
