"""Admin Resources page, the Agents tab (AD-5) and the Resource Groups tab (AD-6); the Storage tab
lives in storage_admin.py, which hands these two tabs over to ``render_tab``.

Agents: connected / terminated, address, region, architecture, start, allocation and utilization
bars, resource group, the schedulable switch (superadmins; running sessions keep running) and a
live-usage dialog.  Utilization is the agent's own report when it sends one, else the sum of what
its running containers report.  Resource groups: list, create, edit, delete (superadmins) with the
scheduler and its options."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError, Client
from workbay.common.domain import AgentSelection, SchedulerKind, SessionType

from ..context import Admin, PageContext
from ..forms import FormData, read_form
from ..i18n import N_
from ..responses import api_error_text, events, field_errors
from ..tables import Column, Pager, requested_page
from .agent_summary import dec, slot_bars

router = APIRouter(tags=["pages"])
TABS = ("agents", "resource-groups")
AGENT_COLUMNS = (
    Column("id", N_("ID / Endpoint")), Column("region", N_("Region")), Column("architecture", N_("Architecture")),
    Column("started", N_("Starts")), Column("allocation", N_("Allocation")), Column("utilization", N_("Utilization")),
    Column("resource_group", N_("Resource group")),
    Column("schedulable", N_("Schedulable"), "text-center"),
)
GROUP_COLUMNS = (
    Column("name", N_("Name")), Column("description", N_("Description")), Column("status", N_("Status")),
    Column("scheduler", N_("Scheduler")),
    Column("session_types", N_("Allowed session types")), Column("options", N_("Scheduler options")),
    Column("wsproxy", N_("App-proxy address")),
)
SCHEDULERS: tuple[str, ...] = tuple(k.value for k in SchedulerKind)
# A resource group may allow every session type a user can start (system sessions are Workbay's own).
SESSION_TYPES: tuple[str, ...] = tuple(t.value for t in SessionType if t is not SessionType.SYSTEM)
AGENT_SELECTIONS: tuple[str, ...] = tuple(a.value for a in AgentSelection)
GROUP_FIELDS = {"name", "description", "scheduler", "allowed_session_types", "pending_timeout", "retries_to_skip",
                "agent_selection", "wsproxy_addr", "is_active", "is_public", "domains"}


def _superadmin(ctx: PageContext) -> bool:
    return bool(ctx.session and ctx.session.is_superadmin)


# -- agents ----------------------------------------------------------------------------------------
def _kernel_usage(sessions: list[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    """Per agent: CPU percent (100 per core) and memory bytes its running containers report."""
    out: dict[str, dict[str, Decimal]] = {}
    for s in sessions:
        for k in s.get("kernels") or []:
            agent, stat = k.get("agent_id"), k.get("last_stat") or {}
            if not agent or not isinstance(stat, dict):
                continue
            acc = out.setdefault(agent, {"cpu": Decimal(0), "mem": Decimal(0), "kernels": Decimal(0)})
            acc["kernels"] += 1
            for key, metric in (("cpu", "cpu_util"), ("mem", "mem")):
                value = stat.get(metric)
                amount = dec(value.get("current")) if isinstance(value, dict) else None
                if amount is not None:
                    acc[key] += amount
    return out


def utilization(agent: dict[str, Any], usage: dict[str, Decimal] | None) -> dict[str, Any]:
    """CPU and memory utilization in percent of what the agent holds (None when unknown)."""
    live = agent.get("live_stat") or {}
    node = live.get("node") if isinstance(live, dict) else None
    cpu_cap = dec((agent.get("available_slots") or {}).get("cpu"))
    mem_cap = dec((agent.get("available_slots") or {}).get("mem"))
    if isinstance(node, dict) and node:
        cpu = node.get("cpu_util") or {}
        mem = node.get("mem") or {}
        cpu_pct = dec(cpu.get("pct")) if isinstance(cpu, dict) else None
        mem_pct = dec(mem.get("pct")) if isinstance(mem, dict) else None
        disk = node.get("disk") or {}
        return {"cpu": float(cpu_pct) if cpu_pct is not None else None,
                "mem": float(mem_pct) if mem_pct is not None else None,
                "disk": float(dec(disk.get("pct"))) if isinstance(disk, dict) and dec(disk.get("pct")) is not None else None,
                "mem_bytes": None, "cpu_cores": None, "containers": None, "source": "agent"}
    if agent.get("status") != "ALIVE":
        return {"cpu": None, "mem": None, "disk": None, "mem_bytes": None, "cpu_cores": None, "containers": None,
                "source": None}
    u = usage or {"cpu": Decimal(0), "mem": Decimal(0), "kernels": Decimal(0)}
    return {"cpu": float(u["cpu"] / (cpu_cap * 100) * 100) if cpu_cap else None,
            "mem": float(u["mem"] / mem_cap * 100) if mem_cap else None, "disk": None,
            "mem_bytes": u["mem"], "cpu_cores": u["cpu"] / 100, "containers": int(u["kernels"]),
            "source": "containers"}


async def _running_sessions(api: Client) -> list[dict[str, Any]]:
    try:
        listing = await api.get("/sessions", params={"status": "running", "all": "true", "limit": 1000})
    except APIError:
        return []
    return list(listing.get("items") or [])


async def _agents_tab(request: Request, ctx: PageContext) -> dict[str, Any]:
    q = request.query_params
    status = "terminated" if q.get("status") == "terminated" else "connected"
    search = q.get("q", "").strip()
    page, size = requested_page(request)
    error, agents, sessions = None, [], []
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            agents = list((await api.get("/admin/agents")).get("items") or [])
        except APIError as err:
            error = api_error_text(err)
        if agents:
            sessions = await _running_sessions(api)
    connected = [a for a in agents if a.get("status") == "ALIVE"]
    terminated = [a for a in agents if a.get("status") != "ALIVE"]
    chosen = connected if status == "connected" else terminated
    if search:
        needle = search.lower()
        chosen = [a for a in chosen if needle in str(a.get("id", "")).lower() or needle in str(a.get("addr", "")).lower()]
    pager = Pager(len(chosen), page, size)
    usage = _kernel_usage(sessions)
    rows = [{**a, "bars": slot_bars(a.get("available_slots"), a.get("occupied_slots")),
             "util": utilization(a, usage.get(a["id"]))} for a in chosen[pager.offset:pager.offset + size]]
    return {"status": status, "search": search, "agents": rows, "pager": pager, "agents_error": error,
            "columns": AGENT_COLUMNS, "counts": {"connected": len(connected), "terminated": len(terminated)}}


async def _groups_tab(request: Request, ctx: PageContext) -> dict[str, Any]:
    search = request.query_params.get("q", "").strip()
    page, size = requested_page(request)
    error, groups = None, []
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            groups = list((await api.get("/admin/resource-groups")).get("items") or [])
        except APIError as err:
            error = api_error_text(err)
    if search:
        groups = [g for g in groups if search.lower() in g["name"].lower()
                  or search.lower() in (g.get("description") or "").lower()]
    pager = Pager(len(groups), page, size)
    return {"search": search, "groups": groups[pager.offset:pager.offset + size], "pager": pager,
            "groups_error": error, "columns": GROUP_COLUMNS}


async def render_tab(request: Request, ctx: PageContext, tab: str) -> Response:
    """The Agents or Resource Groups tab of /resources (called by storage_admin.resources_page)."""
    from .storage_admin import RESOURCE_TAB_ICONS, RESOURCE_TAB_LABELS, RESOURCE_TABS

    data = await (_agents_tab(request, ctx) if tab == "agents" else _groups_tab(request, ctx))
    ctx.section = "resources"
    return ctx.state.renderer.render(
        request, "pages/resources.html", tab=tab, tabs=RESOURCE_TABS, tab_labels=RESOURCE_TAB_LABELS,
        tab_icons=RESOURCE_TAB_ICONS, can_edit=_superadmin(ctx), **data)


@router.get("/resources/agents/{agent_id}/detail")
async def agent_detail(agent_id: str, request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        agents = list((await api.get("/admin/agents")).get("items") or [])
        agent = next((a for a in agents if a.get("id") == agent_id), None)
        sessions = await _running_sessions(api) if agent else []
    if agent is None:
        return events(ctx, toast=ctx._("The agent %(id)s is not known.", id=agent_id), level="danger")
    kernels = [{"session": s.get("name"), "owner": s.get("owner_email") or "", "role": k.get("cluster_role"),
                "slots": k.get("occupied_slots") or {}, "stat": k.get("last_stat") or {}}
               for s in sessions for k in s.get("kernels") or [] if k.get("agent_id") == agent_id]
    usage = _kernel_usage(sessions).get(agent_id)
    return ctx.state.renderer.render(
        request, "dialogs/agent_detail.html", agent=agent, kernels=kernels, util=utilization(agent, usage),
        bars=slot_bars(agent.get("available_slots"), agent.get("occupied_slots")),
        live=agent.get("live_stat") or {})


@router.post("/resources/agents/{agent_id}/schedulable")
async def set_schedulable(agent_id: str, request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    wanted = form.flag("schedulable")
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            await api.patch(f"/admin/agents/{quote(agent_id, safe='')}", json={"schedulable": wanted})
        except APIError as err:
            title, message = api_error_text(err)
            return events(ctx, toast=f"{title} {message}".strip(), level="danger", changed=True)
    toast = (ctx._("Agent %(id)s takes new sessions again.", id=agent_id) if wanted
             else ctx._("Agent %(id)s takes no new sessions; its running sessions keep running.", id=agent_id))
    return events(ctx, toast=toast, changed=True)


# -- resource groups --------------------------------------------------------------------------------
async def _domains(api: Client) -> list[str]:
    try:
        return [d["name"] for d in (await api.get("/admin/domains", params={"limit": 1000}))["items"]]
    except APIError:
        return []


def _group_values(group: dict[str, Any] | None) -> dict[str, Any]:
    if group is None:
        return {"scheduler": "fifo", "allowed_session_types": ["interactive", "batch"], "pending_timeout": "0",
                "retries_to_skip": "", "agent_selection": "dispersed", "is_active": True, "is_public": True,
                "domains": ["default"], "description": "", "wsproxy_addr": "", "name": ""}
    return {**group, "pending_timeout": format(Decimal(str(group.get("pending_timeout") or 0)).normalize(), "f"),
            "retries_to_skip": str(group.get("retries_to_skip", ""))}


def _render_group_form(request: Request, ctx: PageContext, template: str, *, group, values, errors, general,
                       domains) -> Response:
    return ctx.state.renderer.render(
        request, template, group=group, values=values, errors=errors, general=general, domains=domains,
        schedulers=SCHEDULERS, session_types=SESSION_TYPES, selections=AGENT_SELECTIONS)


def _group_body(ctx: PageContext, form: FormData, creating: bool) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    body: dict[str, Any] = {
        "description": form.text("description"), "scheduler": form.text("scheduler") or "fifo",
        "allowed_session_types": [t for t in form.all("allowed_session_types") if t in SESSION_TYPES],
        "agent_selection": form.text("agent_selection") or "dispersed",
        "wsproxy_addr": form.text("wsproxy_addr"), "is_active": form.flag("is_active"),
        "is_public": form.flag("is_public"), "domains": form.all("domains"),
    }
    if creating:
        body["name"] = form.text("name")
        if not body["name"]:
            errors["name"] = ctx._("Name is required.")
        elif len(body["name"]) > 64:
            errors["name"] = ctx._("At most 64 characters.")
    if body["scheduler"] not in SCHEDULERS:
        errors["scheduler"] = ctx._("Choose FIFO, LIFO or DRF.")
    if not body["allowed_session_types"]:
        errors["allowed_session_types"] = ctx._("Allow at least one session type.")
    try:
        timeout = Decimal(form.text("pending_timeout") or "0")
        if not timeout.is_finite() or timeout < 0 or timeout > 10**7:
            raise ValueError
        body["pending_timeout"] = float(timeout)
    except (ArithmeticError, ValueError):
        errors["pending_timeout"] = ctx._("Enter a number of seconds (0 means no timeout).")
    if form.text("retries_to_skip"):
        try:
            retries = int(form.text("retries_to_skip"))
            if retries < 0 or retries > 10**6:
                raise ValueError
            body["retries_to_skip"] = retries
        except ValueError:
            errors["retries_to_skip"] = ctx._("Enter a whole number of retries (0 or more).")
    if body["wsproxy_addr"] and not body["wsproxy_addr"].startswith(("http://", "https://")):
        errors["wsproxy_addr"] = ctx._("Start the address with http:// or https://.")
    return body, errors


def _form_values(form: FormData) -> dict[str, Any]:
    return {**form.values(GROUP_FIELDS), "allowed_session_types": form.all("allowed_session_types"),
            "domains": form.all("domains"), "is_active": form.flag("is_active"), "is_public": form.flag("is_public")}


@router.get("/resources/groups/new")
async def new_group_dialog(request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        domains = await _domains(api)
    return _render_group_form(request, ctx, "dialogs/resource_group_form.html", group=None,
                              values=_group_values(None), errors={}, general=None, domains=domains)


@router.post("/resources/groups")
async def create_group(request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    body, errors = _group_body(ctx, form, creating=True)
    general = None
    async with ctx.state.gateway.client(ctx.session) as api:
        if not errors:
            try:
                created = await api.post("/admin/resource-groups", json=body)
            except APIError as err:
                errors, general = field_errors(err, GROUP_FIELDS)
            else:
                return events(ctx, toast=ctx._("Resource group %(name)s was created.", name=created["name"]),
                              close_modal=True, changed=True)
        domains = await _domains(api)
    return _render_group_form(request, ctx, "forms/resource_group.html", group=None, values=_form_values(form),
                              errors=errors, general=general, domains=domains)


@router.get("/resources/groups/{name}/edit")
async def edit_group_dialog(name: str, request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        group = await api.get(f"/admin/resource-groups/{quote(name, safe='')}")
        domains = await _domains(api)
    return _render_group_form(request, ctx, "dialogs/resource_group_form.html", group=group,
                              values=_group_values(group), errors={}, general=None, domains=domains)


@router.post("/resources/groups/{name}")
async def update_group(name: str, request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    body, errors = _group_body(ctx, form, creating=False)
    general = None
    async with ctx.state.gateway.client(ctx.session) as api:
        group = await api.get(f"/admin/resource-groups/{quote(name, safe='')}")
        if not errors:
            try:
                await api.patch(f"/admin/resource-groups/{quote(name, safe='')}", json=body)
            except APIError as err:
                errors, general = field_errors(err, GROUP_FIELDS)
            else:
                return events(ctx, toast=ctx._("Resource group %(name)s was updated.", name=name),
                              close_modal=True, changed=True)
        domains = await _domains(api)
    return _render_group_form(request, ctx, "forms/resource_group.html", group=group,
                              values={**_form_values(form), "name": name}, errors=errors, general=general,
                              domains=domains)


def _delete_message(ctx: PageContext, name: str) -> str:
    return ctx._("Delete the resource group %(name)s? Presets of this group are kept without a group. "
                 "This cannot be undone.", name=name)


@router.get("/resources/groups/{name}/delete")
async def delete_group_dialog(name: str, request: Request, ctx: Admin) -> Response:
    return ctx.state.renderer.render(
        request, "dialogs/confirm.html", title=ctx._("Delete resource group"), message=_delete_message(ctx, name),
        action=f"/resources/groups/{quote(name, safe='')}/delete", button=ctx._("Delete"), danger=True,
        fields={}, type_to_confirm=name)


@router.post("/resources/groups/{name}/delete")
async def delete_group(name: str, request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    error = None
    if form.text("confirm") != name:
        error = ctx._("Type %(name)s to confirm.", name=name)
    else:
        async with ctx.state.gateway.client(ctx.session) as api:
            try:
                await api.delete(f"/admin/resource-groups/{quote(name, safe='')}")
            except APIError as err:
                title, message = api_error_text(err)
                error = f"{title} {message}".strip()
    if error:
        return ctx.state.renderer.render(
            request, "forms/confirm.html", error=error, message=_delete_message(ctx, name),
            action=f"/resources/groups/{quote(name, safe='')}/delete", button=ctx._("Delete"), danger=True,
            fields={}, type_to_confirm=name)
    return events(ctx, toast=ctx._("Resource group %(name)s was deleted.", name=name), close_modal=True,
                  changed=True)
