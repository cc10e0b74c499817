"""Compute sessions page (CS-12…CS-18, CS-24): the session list with its tabs, live usage, status
details, logs, rename, terminate (one or many), the detail drawer and the admins' CSV export.

Not to be confused with ``web/sessions.py`` (the webserver's login sessions).  Everything here
goes through the manager's API with the user's keypair: ``GET /sessions`` (filtered and paged by
the manager), ``/session/{id}/…`` for one session, ``/resource/check-presets`` and
``/resource/summary`` for the resource bars.  Sessions are addressed by id, never by name, so
admins act on other users' sessions too.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from workbay.client.sdk import APIError, Client
from workbay.common.domain import DEAD_STATUSES, SessionStatus, parse_bytes_or_none

from ..context import LoggedIn, PageContext, with_user
from ..forms import read_form
from ..i18n import N_
from ..responses import TOAST_EVENT, api_error_text, events
from ..tables import Column, Pager, requested_page

router = APIRouter(tags=["pages"])


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    icon: str
    status: str  # the manager's status group
    type: str | None = None


TABS = (
    Tab("running", N_("Running"), "play-circle", "live"),
    Tab("interactive", N_("Interactive"), "terminal", "live", "interactive"),
    Tab("batch", N_("Batch"), "list-task", "live", "batch"),
    Tab("inference", N_("Inference"), "cpu", "live", "inference"),
    Tab("upload", N_("Upload sessions"), "cloud-upload", "live", "system"),
    Tab("finished", N_("Finished"), "archive", "finished"),
)
TAB_BY_KEY = {t.key: t for t in TABS}
# The status filter within a tab: "" = every status of the tab's group.
LIVE_FILTERS = (("", N_("All active")), ("running", N_("Running")), ("pending", N_("Pending")))
FINISHED_FILTERS = (("", N_("All finished")), ("TERMINATED", N_("Terminated")), ("ERROR", N_("Error")),
                    ("CANCELLED", N_("Cancelled")))
COLUMNS = (
    Column("owner", N_("Owner")), Column("info", N_("Session info")), Column("status", N_("Status")),
    Column("controls", N_("Controls")), Column("config", N_("Configuration")), Column("usage", N_("Usage")),
    Column("reserved", N_("Reservation")), Column("elapsed", N_("Elapsed time")), Column("type", N_("Type")),
    Column("agents", N_("Agents")),
)
READER_ROLES = ("superadmin", "admin", "monitor")
# Statuses whose "why" the status dialog explains (waiting, or ended).
STATUS_HELP: tuple[str, ...] = (SessionStatus.PENDING, *DEAD_STATUSES)
CSV_NAME_MAX = 255
CSV_FIELDS = ("id", "name", "owner_email", "status", "status_info", "type", "image", "resource_group",
              "cluster_size", "cpu", "mem", "agents", "created_at", "started_at", "terminated_at",
              "result", "exit_code")


# -- view helpers -----------------------------------------------------------------------------------
def _dec(value: Any) -> Decimal | None:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return d if d.is_finite() else None


def _when(iso: str | None) -> datetime | None:
    if not iso:
        return None
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def elapsed_seconds(s: dict[str, Any], now: datetime | None = None) -> int:
    start = _when(s.get("created_at"))
    if start is None:
        return 0
    end = _when(s.get("terminated_at")) or now or datetime.now(UTC)
    return max(0, int((end - start).total_seconds()))


def short_image(image: str) -> tuple[str, str]:
    """(name, tag) of an image reference, without the registry."""
    last = (image or "").rsplit("/", 1)[-1]
    name, _, tag = last.partition(":")
    return name, tag


def accelerators(slots: dict[str, Any]) -> list[tuple[str, str]]:
    """Accelerator slots as (amount, unit): ``cuda.shares`` is fGPU, ``*.device`` a whole device."""
    out = []
    for key, value in sorted((slots or {}).items()):
        if key in ("cpu", "mem") or not _dec(value):
            continue
        unit = "fGPU" if key.endswith(".shares") else ("GPU" if key.startswith("cuda") else key.split(".")[0].upper())
        out.append((format(_dec(value).normalize(), "f"), unit))
    return out


def usage(s: dict[str, Any]) -> dict[str, Any]:
    """Live usage summed over the session's containers (the main one alone when kernels are absent)."""
    stats = [k.get("last_stat") or {} for k in s.get("kernels") or []] or [s.get("last_stat") or {}]
    total: dict[str, Decimal] = {}
    capacity: dict[str, Decimal] = {}
    seen = set()
    for st in stats:
        for metric, value in st.items():
            if not isinstance(value, dict):
                continue
            cur, cap = _dec(value.get("current")), _dec(value.get("capacity"))
            if cur is not None:
                total[metric] = total.get(metric, Decimal(0)) + cur
                seen.add(metric)
            if cap is not None:
                capacity[metric] = capacity.get(metric, Decimal(0)) + cap
    if not seen:
        return {}
    mem_cap = capacity.get("mem") or _dec((s.get("occupying_slots") or {}).get("mem"))
    mem = total.get("mem")
    return {
        "cpu_pct": float(total["cpu_util"]) if "cpu_util" in total else None,
        "mem": int(mem) if mem is not None else None, "mem_cap": int(mem_cap) if mem_cap else None,
        "mem_pct": float(mem / mem_cap * 100) if mem is not None and mem_cap else None,
        "io_read": int(total.get("io_read", 0)), "io_write": int(total.get("io_write", 0)),
        "net_rx": int(total.get("net_rx", 0)), "net_tx": int(total.get("net_tx", 0)),
    }


def mounts(s: dict[str, Any]) -> list[str] | None:
    """Mounted folder names; None when the API does not say (the list omits mounts)."""
    if "mounts" not in s:
        return None
    return [m.get("name") if isinstance(m, dict) else str(m) for m in s.get("mounts") or []]


def row(s: dict[str, Any]) -> dict[str, Any]:
    """What the templates show of one session."""
    slots = s.get("occupying_slots") or s.get("requested_slots") or {}
    name, tag = short_image(s.get("image") or "")
    status = s.get("status") or ""
    actions = set(s.get("allowed_actions") or ())  # the manager decides (docs/api.md "For the WebUI")
    return {
        **s, "image_name": name, "image_tag": tag, "cpu": _dec(slots.get("cpu")),
        "mem": _dec(slots.get("mem")), "shmem": (s.get("resource_opts") or {}).get("shmem"),
        "accelerators": accelerators(slots), "usage": usage(s), "elapsed": elapsed_seconds(s),
        "mount_names": mounts(s), "agent_ids": sorted({k.get("agent_id") for k in s.get("kernels") or []
                                                      if k.get("agent_id")}) or s.get("agents") or [],
        "live": status not in DEAD_STATUSES, "can_rename": "rename" in actions,
        "can_terminate": "terminate" in actions, "can_open_app": "open_app" in actions,
        "status_help": status in STATUS_HELP,
        "tone": status_tone(status),
        "result_text": str(s["result"]).lower() if s.get("result") and str(s["result"]).upper() != "UNDEFINED" else None,
    }


def status_tone(status: str) -> str:
    if status in ("RUNNING", "RUNNING_DEGRADED"):
        return "ok"
    if status == "ERROR":
        return "error"
    if status in ("TERMINATED", "CANCELLED", "TERMINATING"):
        return "off"
    return "busy"


# -- the list -----------------------------------------------------------------------------------------
def can_read_all(ctx: PageContext) -> bool:
    return bool(ctx.session and ctx.session.role in READER_ROLES)


@dataclass
class Query:
    tab: Tab
    status: str
    search: str
    scope: str  # "all" (admins, monitors) or "mine"
    page: int
    size: int

    def params(self, limit: int | None = None, offset: int | None = None) -> dict[str, Any]:
        status = self.status or self.tab.status
        return {"status": status, "type": self.tab.type, "q": self.search or None,
                "all": "true" if self.scope == "all" else None,
                "limit": limit if limit is not None else self.size,
                "offset": offset if offset is not None else (self.page - 1) * self.size}


def read_query(request: Request, ctx: PageContext) -> Query:
    q = request.query_params
    tab = TAB_BY_KEY.get(q.get("tab") or "running", TABS[0])
    allowed = {k for k, _ in (FINISHED_FILTERS if tab.key == "finished" else LIVE_FILTERS)}
    status = q.get("status", "") if q.get("status", "") in allowed else ""
    default_scope = "all" if can_read_all(ctx) else "mine"
    scope = q.get("scope", default_scope) if can_read_all(ctx) else "mine"
    scope = scope if scope in ("all", "mine") else default_scope
    page, size = requested_page(request)
    return Query(tab, status, q.get("q", "").strip()[:64], scope, page, size)


async def _counts(api: Client, query: Query) -> dict[str, int]:
    """How many sessions each tab holds (the search and scope apply; the status filter does not):
    one ``GET /sessions/counts``."""
    got = await api.get("/sessions/counts", params={"q": query.search or None,
                                                     "all": "true" if query.scope == "all" else None})
    groups, types = got.get("status_groups") or {}, got.get("live_by_type") or {}
    return {t.key: int((types.get(t.type) if t.type else groups.get(t.status)) or 0) for t in TABS}


async def _listing(api: Client, query: Query) -> tuple[dict[str, Any], dict[str, int]]:
    listing, counts = await asyncio.gather(api.get("/sessions", params=query.params()), _counts(api, query))
    return listing, counts


def _render_list(request: Request, ctx: PageContext, query: Query, listing: dict[str, Any],
                 counts: dict[str, int], template: str = "pages/sessions.html") -> Response:
    rows = [row(s) for s in listing.get("items") or []]
    show_owner = query.scope == "all"
    return ctx.state.renderer.render(
        request, template, query=query, tabs=TABS, counts=counts, rows=rows, show_owner=show_owner,
        columns=COLUMNS if show_owner else tuple(c for c in COLUMNS if c.key != "owner"),
        pager=Pager(int(listing.get("total_count") or 0), query.page, query.size),
        status_filters=FINISHED_FILTERS if query.tab.key == "finished" else LIVE_FILTERS,
        chooser_columns=COLUMNS if can_read_all(ctx) else tuple(c for c in COLUMNS if c.key != "owner"),
        can_read_all=can_read_all(ctx), is_admin=bool(ctx.session and ctx.session.is_admin),
        csv_max=CSV_NAME_MAX)


@router.get("/sessions")
async def sessions_page(request: Request, ctx: LoggedIn) -> Response:
    """The page; an htmx request aimed at the list (polling, tabs, filters, pages) gets the list
    alone, without the shell (no /user/me call: the refresh every few seconds stays cheap)."""
    query = read_query(request, ctx)
    fragment = ctx.is_htmx and request.headers.get("hx-target") == "sessions-list"
    if not fragment:
        ctx = await with_user(ctx)
    async with ctx.state.gateway.client(ctx.session) as api:
        listing, counts = await _listing(api, query)
    ctx.section = "sessions"
    return _render_list(request, ctx, query, listing, counts,
                        "components/session_list.html" if fragment else "pages/sessions.html")


# -- resource statistics (CS-14) ----------------------------------------------------------------------
def _project(ctx: PageContext) -> str | None:
    prefs = ctx.session.preferences if ctx.session else {}
    return prefs.get("project") or None


def resource_bars(presets: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per slot: the current resource group (used / used + what is free to the user there) and
    the total (used / the keypair's limit)."""
    group = summary.get("resource_group")
    sg = (presets.get("scaling_groups") or {}).get(group) or {}
    key_limits = presets.get("keypair_limits") or {}
    key_using = presets.get("keypair_using") or {}
    key_remaining = presets.get("keypair_remaining") or {}
    capacity = summary.get("capacity") or {}
    names = ["cpu", "mem", *sorted(k for k in capacity if k not in ("cpu", "mem"))]
    bars = []
    for name in names:
        used_rg = _dec((sg.get("using") or {}).get(name)) or Decimal(0)
        free_rg = _dec((sg.get("remaining") or {}).get(name))
        free_key = _dec(key_remaining.get(name))
        free = min(x for x in (free_rg, free_key) if x is not None) if (free_rg is not None or free_key is not None) else None
        limit = _dec(key_limits.get(name))
        bars.append({
            "slot": name, "rg_used": used_rg, "rg_total": used_rg + free if free is not None else None,
            "used": _dec(key_using.get(name)) or Decimal(0), "limit": limit,
        })
    return bars


@router.get("/sessions/stats")
async def resource_stats(request: Request, ctx: LoggedIn) -> Response:
    project = _project(ctx)
    error = None
    bars: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            summary = await api.get("/resource/summary", params={"project": project} if project else None)
            presets = await api.post("/resource/check-presets", json={
                "group": summary.get("project", {}).get("id") or project or "default",
                "scaling_group": summary.get("resource_group")})
            bars = resource_bars(presets, summary)
        except APIError as err:
            error = api_error_text(err)
    return ctx.state.renderer.render(request, "components/session_stats.html", bars=bars, summary=summary,
                                     stats_error=error)


# -- one session ---------------------------------------------------------------------------------------
async def _session(api: Client, sid: str) -> dict[str, Any]:
    return await api.get(f"/session/{quote(sid)}")


async def _owner_email(ctx: PageContext, api: Client, s: dict[str, Any]) -> str | None:
    """The owner's e-mail (``GET /session/{id}`` carries it)."""
    return s.get("owner_email")


def _error_toast(ctx: PageContext, err: APIError) -> Response:
    title, message = api_error_text(err)
    return events(ctx, toast=f"{title} {message}".strip(), level="danger", status_code=err.status)


@router.get("/sessions/{sid}/detail")
async def session_detail(sid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            s = await _session(api, sid)
        except APIError as err:
            return _error_toast(ctx, err)
        s["owner_email"] = await _owner_email(ctx, api, s)
    s = row(s)
    s["shmem_bytes"] = parse_bytes_or_none(s.get("shmem"))
    template = "dialogs/session_detail_body.html" if request.query_params.get("refresh") else "dialogs/session_detail.html"
    return ctx.state.renderer.render(request, template, s=s)


@router.get("/sessions/{sid}/status")
async def status_details(sid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            s = await _session(api, sid)
            history = await api.get(f"/session/{quote(sid)}/status-history")
        except APIError as err:
            return _error_toast(ctx, err)
    scheduling = history.get("scheduling") or {}
    predicates = scheduling.get("predicates") or []
    failed = [p for p in predicates if not p.get("passed")]
    data = s.get("status_data") or {}
    return ctx.state.renderer.render(
        request, "dialogs/session_status.html", s=row(s), history=history.get("result") or [],
        scheduling=scheduling, predicates=predicates, failed=failed,
        passed=[p for p in predicates if p.get("passed")], error=data.get("error") or {},
        exit_codes=data.get("kernels_exit_codes") or {})


# The app launcher (GET /sessions/{sid}/apps) and the SSH dialog live in routes/apps.py.


@router.get("/sessions/{sid}/logs")
async def logs_dialog(sid: str, request: Request, ctx: LoggedIn) -> Response:
    """The logs viewer (CS-18); ``?kernel=`` (a kernel id or hostname) with ``HX-Target: session-log``
    answers the log text alone (container switch, refresh)."""
    kernel = request.query_params.get("kernel") or None
    body_only = ctx.is_htmx and request.headers.get("hx-target") == "session-log"
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            s = await _session(api, sid)
        except APIError as err:
            return _error_toast(ctx, err)
        params: dict[str, str] = {"kernel_id": kernel} if kernel else {}
        if s.get("access_key") and ctx.session and s["access_key"] != ctx.session.access_key:
            params["owner_access_key"] = s["access_key"]
        try:
            got, log_error = await api.get(f"/session/{quote(sid)}/logs", params=params or None), None
        except APIError as err:
            got, log_error = {}, api_error_text(err)
    result = got.get("result") or {}
    text = result.get("logs") or ""
    lines = text.splitlines()
    kernels = s.get("kernels") or []
    chosen = result.get("kernel_id") or (kernels[0]["id"] if kernels else None)
    template = "dialogs/session_log_text.html" if body_only else "dialogs/session_logs.html"
    return ctx.state.renderer.render(request, template, s=row(s), lines=lines, kernels=kernels,
                                     chosen=chosen, log_error=log_error)


@router.get("/sessions/{sid}/rename")
async def rename_form(sid: str, request: Request, ctx: LoggedIn) -> Response:
    """The name cell as an inline form (CS-16)."""
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            s = await _session(api, sid)
        except APIError as err:
            return _error_toast(ctx, err)
    if request.query_params.get("cancel"):
        return ctx.state.renderer.render(request, "dialogs/session_name_cell.html", s=row(s))
    return ctx.state.renderer.render(request, "dialogs/session_rename.html", s=row(s), value=s.get("name"),
                                     error=None)


@router.post("/sessions/{sid}/rename")
async def rename_session(sid: str, request: Request, ctx: LoggedIn) -> Response:
    name = (await read_form(request)).text("name")
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            s = await _session(api, sid)
        except APIError as err:
            return _error_toast(ctx, err)
        if name == s.get("name"):
            return ctx.state.renderer.render(request, "dialogs/session_name_cell.html", s=row(s))
        try:  # the manager holds the name rule (common.domain.session_name_problem)
            await api.post(f"/session/{quote(sid)}/rename", params={"name": name})
        except APIError as err:
            title, message = api_error_text(err)
            fields = err.body.get("field_errors") if isinstance(err.body, dict) else None
            error = str((fields or {}).get("name") or message or title)
        else:
            s = await _session(api, sid)
            response = ctx.state.renderer.render(request, "dialogs/session_name_cell.html", s=row(s))
            # after the swap: the list refreshes once the form is gone (it pauses while editing)
            response.headers["HX-Trigger-After-Settle"] = json.dumps({
                TOAST_EVENT: {"message": ctx._("The session was renamed to %(name)s.", name=name),
                              "level": "success"}, "wb:sessions-refresh": True})
            return response
    return ctx.state.renderer.render(request, "dialogs/session_rename.html", s=row(s), value=name, error=error)


# -- terminate (CS-17), one or many ------------------------------------------------------------------
def _ids(values: list[str]) -> list[str]:
    return [v for v in dict.fromkeys(values) if re.fullmatch(r"[0-9a-fA-F-]{32,36}", v)]


@router.get("/sessions/terminate")
async def terminate_dialog(request: Request, ctx: LoggedIn) -> Response:
    ids = _ids(request.query_params.getlist("id"))
    if not ids:
        return events(ctx, toast=ctx._("Select the sessions to terminate first."), level="warning")
    found = []
    async with ctx.state.gateway.client(ctx.session) as api:
        for sid in ids[:100]:
            try:
                found.append(await _session(api, sid))
            except APIError:
                continue
    found = [s for s in found if "terminate" in (s.get("allowed_actions") or ())]
    if not found:
        return events(ctx, toast=ctx._("The selected sessions have ended already."), level="warning", changed=True)
    return ctx.state.renderer.render(request, "dialogs/session_terminate.html", sessions=found, error=None)


@router.post("/sessions/terminate")
async def terminate_sessions(request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    ids = _ids(form.all("id"))
    done, failed = [], []
    async with ctx.state.gateway.client(ctx.session) as api:
        for sid in ids:
            try:
                s = await _session(api, sid)
                await api.delete(f"/session/{quote(sid)}")
                done.append(s.get("name") or sid)
            except APIError as err:
                title, message = api_error_text(err)
                failed.append(f"{sid[:8]}: {message or title}")
    if failed:
        message = ctx._("Some sessions could not be terminated: %(errors)s", errors="; ".join(failed))
        return events(ctx, toast=message, level="danger", close_modal=True, changed=True)
    if len(done) == 1:
        toast = ctx._("Session %(name)s is terminating.", name=done[0])
    else:
        toast = ctx._("%(count)s sessions are terminating.", count=len(done))
    return events(ctx, toast=toast, close_modal=True, changed=True, extra={"wb:sessions-cleared": True})


# -- CSV export (CS-24) --------------------------------------------------------------------------------
def csv_filename(raw: str) -> str:
    name = re.sub(r"[^\w.\- ]", "_", raw.strip())[:CSV_NAME_MAX - 4].strip(" .") or "sessions"
    return name if name.lower().endswith(".csv") else f"{name}.csv"


def csv_value(s: dict[str, Any], field: str) -> Any:
    slots = s.get("occupying_slots") or s.get("requested_slots") or {}
    if field in ("cpu", "mem"):
        return slots.get(field, "")
    if field == "agents":
        return " ".join(sorted({k.get("agent_id") for k in s.get("kernels") or [] if k.get("agent_id")}))
    value = s.get(field)
    return "" if value is None else value


@router.get("/sessions/export.csv")
async def export_csv(request: Request, ctx: LoggedIn) -> Response:
    """The filtered list (every page of it) as CSV; admins only, as in Backend.AI."""
    if not (ctx.session and ctx.session.is_admin):
        return events(ctx, toast=ctx._("Only administrators can export the session list."), level="danger",
                      status_code=403)
    query = read_query(request, ctx)
    items: list[dict[str, Any]] = []
    async with ctx.state.gateway.client(ctx.session) as api:
        offset = 0
        while True:
            got = await api.get("/sessions", params=query.params(limit=1000, offset=offset))
            batch = got.get("items") or []
            items.extend(batch)
            offset += len(batch)
            if not batch or offset >= int(got.get("total_count") or 0):
                break
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for s in items:
        writer.writerow([csv_value(s, f) for f in CSV_FIELDS])
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = csv_filename(request.query_params.get("filename") or f"sessions-{stamp}")
    disposition = f"attachment; filename=\"{name.encode('ascii', 'replace').decode()}\"; filename*=UTF-8''{quote(name)}"
    return StreamingResponse(iter(["\ufeff" + out.getvalue()]), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": disposition})


@router.get("/sessions/export")
async def export_dialog(request: Request, ctx: LoggedIn) -> Response:
    if not (ctx.session and ctx.session.is_admin):
        return events(ctx, toast=ctx._("Only administrators can export the session list."), level="danger",
                      status_code=403)
    query = read_query(request, ctx)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return ctx.state.renderer.render(request, "dialogs/session_export.html", query=query,
                                     filename=f"sessions-{query.tab.key}-{stamp}", csv_max=CSV_NAME_MAX)
