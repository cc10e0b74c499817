"""Agent Summary (AS-1, everyone): the agents of the resource groups the user may use, connected or
terminated, with their allocation bars and whether they take new sessions — no addresses.

Also the slot helpers the admin Agents tab and the Summary page share (allocation bars: what is
occupied of what an agent or a resource group holds, per resource slot)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError

from ..context import LoggedIn, PageContext
from ..i18n import N_
from ..responses import api_error_text
from ..tables import Column, Pager, requested_page

router = APIRouter(tags=["pages"])
AGENT_SUMMARY_COLUMNS = (
    Column("id", N_("ID")), Column("architecture", N_("Architecture")), Column("allocation", N_("Allocation")),
    Column("resource_group", N_("Resource group")), Column("started", N_("Started")),
    Column("schedulable", N_("Schedulable"), "text-center"),
)
# How slots are named and counted (UI conventions: CPU in cores, memory binary, GPU / fGPU).
SLOT_LABELS = {"cpu": N_("CPU"), "mem": N_("Memory"), "cuda.device": N_("GPU"), "cuda.shares": N_("fGPU"),
               "rocm.device": N_("ROCm GPU"), "tpu.device": N_("TPU"), "ipu.device": N_("IPU")}
SLOT_UNITS = {"cpu": N_("Core"), "cuda.device": "GPU", "cuda.shares": "fGPU"}
CONNECTED = ("ALIVE",)


def dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def slot_names(*maps: dict[str, Any] | None) -> list[str]:
    """cpu, mem, then the accelerators (sorted) that any of the maps names."""
    extra = sorted({k for m in maps for k in (m or {}) if k not in ("cpu", "mem")})
    return ["cpu", "mem", *extra]


def slot_bars(capacity: dict[str, Any] | None, used: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per slot: used of capacity (percent), for the allocation bars."""
    bars = []
    for name in slot_names(capacity, used):
        total = dec((capacity or {}).get(name))
        amount = dec((used or {}).get(name)) or Decimal(0)
        if name not in ("cpu", "mem") and not total and not amount:
            continue
        pct = float(amount / total * 100) if total else 0.0
        bars.append({"slot": name, "label": SLOT_LABELS.get(name, name), "unit": SLOT_UNITS.get(name, ""),
                     "used": amount, "total": total, "pct": pct, "bytes": name == "mem"})
    return bars


def project_of(ctx: PageContext) -> str | None:
    """The project chosen in the top bar (the manager defaults to "default")."""
    prefs = ctx.preferences or {}
    if prefs.get("project"):
        return str(prefs["project"])
    projects = (ctx.me or {}).get("projects") or []
    return str(projects[0]["id"]) if projects else None


def summary_params(ctx: PageContext, resource_group: str | None) -> dict[str, str]:
    """The query of Workbay's own ``/resource/summary`` and ``/resource/agent-summary`` (Workbay's
    names: ``project``, ``resource_group``)."""
    params: dict[str, str] = {}
    project = project_of(ctx)
    if project:
        params["project"] = project
    if resource_group:
        params["resource_group"] = resource_group
    return params


async def _load(request: Request, ctx: PageContext) -> dict[str, Any]:
    q = request.query_params
    status = "terminated" if q.get("status") == "terminated" else "connected"
    search = q.get("q", "").strip()
    group = q.get("resource_group", "").strip()
    page, size = requested_page(request)
    error, items, groups = None, [], []
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            listing = await api.get("/resource/agent-summary", params=summary_params(ctx, group or None))
            items = list(listing.get("items") or [])
            summary = await api.get("/resource/summary", params=summary_params(ctx, None))
            groups = list(summary.get("resource_groups") or [])
        except APIError as err:
            error = api_error_text(err)
    connected = [a for a in items if a.get("status") in CONNECTED]
    terminated = [a for a in items if a.get("status") not in CONNECTED]
    chosen = connected if status == "connected" else terminated
    if search:
        chosen = [a for a in chosen if search.lower() in str(a.get("id", "")).lower()]
    pager = Pager(len(chosen), page, size)
    rows = [{**a, "bars": slot_bars(a.get("available_slots"), a.get("occupied_slots"))}
            for a in chosen[pager.offset:pager.offset + size]]
    return {"status": status, "search": search, "resource_group": group, "resource_groups": groups,
            "agents": rows, "pager": pager, "error": error, "columns": AGENT_SUMMARY_COLUMNS,
            "counts": {"connected": len(connected), "terminated": len(terminated)}}


@router.get("/agent-summary")
async def agent_summary_page(request: Request, ctx: LoggedIn) -> Response:
    from ..context import with_user

    if not ctx.state.config.webserver.agent_summary_enabled:
        raise HTTPException(status_code=404)  # switched off: as if the page did not exist
    if not ctx.is_htmx:
        ctx = await with_user(ctx)
    data = await _load(request, ctx)
    ctx.section = "agent-summary"
    return ctx.state.renderer.render(request, "pages/agent_summary.html", **data)
