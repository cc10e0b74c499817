"""Model serving pages (MS-2, MS-8): the service list, the Start service / Edit form, its Validate
log relayed from the manager, and deletion.  The detail page and its panels are in
``serving_detail``.

Everything goes through the manager's ``/services`` API (docs/serving.md) with the user's keypair;
the form is read by ``web.serving_form`` and every rule is the manager's (its ``field_errors``
show at their fields).  Validate posts the form here and the manager's ``text/event-stream``
answer is relayed to the browser as it comes (``static/js/serving.js`` shows it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from workbay.client.sdk import APIError, Client
from workbay.common.domain import LIVE_SERVICE_STATUSES, ServiceStatus

from .. import serving_form as sf
from ..context import LoggedIn, PageContext, UserPage, with_user
from ..forms import read_form
from ..i18n import N_
from ..responses import api_error_text, events, redirect
from ..tables import Column, Pager, requested_page
from .launcher import Choices, LaunchForm, _resources, environment_shown, load_choices

router = APIRouter(tags=["pages"])

SERVING_URL = "/serving"
STATUS_FILTERS = (("", N_("Active")), *((s.value, s.value) for s in ServiceStatus), ("all", N_("All")))
COLUMNS = (
    Column("name", N_("Service name")), Column("status", N_("Status")), Column("endpoint", N_("Endpoint")),
    Column("replicas", N_("Replicas"), "text-end"), Column("owner", N_("Owner")),
    Column("model", N_("Model folder")), Column("image", N_("Image"), "d-none d-xxl-table-cell"), Column("created", N_("Created at")),
    Column("controls", N_("Controls")),
)
# The variant defaults the form shows (GET /services/_/runtimes), in this order.
DEFAULT_KEYS = ("start_command", "port", "health_path")
DEFAULT_LABELS = {"start_command": N_("Start command"), "port": N_("Port"), "health_path": N_("Health check path")}
RUNTIME_LABELS = {"custom": N_("Custom (default)"), "command": N_("Predefined image command"),
                  "vllm": N_("vLLM"), "nim": N_("NVIDIA NIM"), "llama-cpp": N_("llama.cpp")}


def status_tone(status: str) -> str:
    """Status colours of the house: healthy green, starting/degraded amber, failing red, gone grey."""
    if status == ServiceStatus.HEALTHY:
        return "ok"
    if status == ServiceStatus.UNHEALTHY or status in ("FAILED", "ERROR"):
        return "error"
    if status in (ServiceStatus.TERMINATING, ServiceStatus.DESTROYED):
        return "off"
    return "busy"


def items_of(got: Any) -> list[dict[str, Any]]:
    """``GET /services`` answers a list (Backend.AI's wire); accept ``{"items": […]}`` too."""
    items = got.get("items") if isinstance(got, dict) else got
    return [i for i in items or [] if isinstance(i, dict)]


def service_row(s: dict[str, Any]) -> dict[str, Any]:
    """What the list and the detail page show of one service."""
    status = str(s.get("status") or "")
    folder = s.get("model_folder") or {}
    image = str(s.get("image") or "")
    return {
        **s, "id": str(s.get("id") or s.get("endpoint_id") or ""), "status": status, "tone": status_tone(status),
        "url": s.get("service_endpoint") or s.get("url") or "",
        "public": bool(s.get("open_to_public", s.get("is_public"))),
        "desired": int(s.get("desired_session_count") or s.get("replicas") or 0),
        "healthy": int(s.get("healthy_route_count") or 0),
        "model_name": folder.get("name") if isinstance(folder, dict) else str(folder or ""),
        "image_short": image.rsplit("/", 1)[-1], "runtime_label": RUNTIME_LABELS.get(str(s.get("runtime_variant")),
                                                                                  str(s.get("runtime_variant") or "")),
        "actions": set(s.get("allowed_actions") or ()),  # the manager decides (edit, scale, delete, token, …)
    }


# -- the list (MS list) ------------------------------------------------------------------------------
@dataclass
class ListQuery:
    status: str
    scope: str
    page: int
    size: int


def read_list_query(request: Request, ctx: PageContext) -> ListQuery:
    q = request.query_params
    status = q.get("status", "")
    status = status if status in {v for v, _ in STATUS_FILTERS} else ""
    admin = bool(ctx.session and ctx.session.is_admin)
    scope = q.get("scope", "all") if admin else "mine"
    page, size = requested_page(request)
    return ListQuery(status, scope if scope in ("all", "mine") else "all", page, size)


def filter_services(items: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    """The status filter: "" the live ones and those terminating, "all" every one, else one status."""
    if status == "all":
        return items
    if status:
        return [s for s in items if s.get("status") == status]
    shown = (*LIVE_SERVICE_STATUSES, ServiceStatus.TERMINATING)
    return [s for s in items if s.get("status") in shown]


@router.get("/serving")
async def serving_page(request: Request, ctx: LoggedIn) -> Response:
    """The list; an htmx request aimed at the list (polling, filters, pages) gets the list alone."""
    query = read_list_query(request, ctx)
    fragment = ctx.is_htmx and request.headers.get("hx-target") == "serving-list"
    if not fragment:
        ctx = await with_user(ctx)
    params = {"all": "true" if query.scope == "all" else None,
              "status": query.status if query.status not in ("", "all") else None}
    error = None
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            items = items_of(await api.get("/services", params=params))
        except APIError as err:
            items, error = [], api_error_text(err)
    items = sorted(filter_services(items, query.status), key=lambda s: str(s.get("created_at") or ""), reverse=True)
    pager = Pager(len(items), query.page, query.size)
    rows = [service_row(s) for s in items[pager.offset:pager.offset + pager.size]]
    ctx.section = "serving"
    is_admin = bool(ctx.session and ctx.session.is_admin)
    columns = COLUMNS if query.scope == "all" else tuple(c for c in COLUMNS if c.key != "owner")
    return ctx.state.renderer.render(
        request, "serving/list.html" if fragment else "serving/page.html", rows=rows, query=query, pager=pager,
        columns=columns, status_filters=STATUS_FILTERS, is_admin=is_admin, list_error=error)


# -- the form (MS-2, MS-8) -----------------------------------------------------------------------------
@dataclass
class FormChoices:
    base: Choices
    model_folders: list[dict[str, Any]]
    mount_folders: list[dict[str, Any]]
    runtimes: list[dict[str, Any]]


def runtime_list(got: Any) -> list[dict[str, Any]]:
    """``GET /services/_/runtimes`` as [{name, label, defaults}] in the variants' order."""
    items = got.get("runtimes") or got.get("items") if isinstance(got, dict) else got
    if isinstance(items, dict):
        items = [{"name": k, **(v if isinstance(v, dict) else {"defaults": v})} for k, v in items.items()]
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name") or item.get("variant") or item.get("runtime_variant") or "")
        if name:
            defaults = item.get("defaults") or {k: item.get(k) for k in DEFAULT_KEYS}
            defaults = {k: v for k, v in defaults.items() if v not in (None, "", [], {})}
            out[name] = {"name": name, "label": RUNTIME_LABELS.get(name, item.get("label") or item.get("title") or name),
                         "description": item.get("description") or "", "defaults": defaults}
    for name in sf.RUNTIME_VARIANTS:
        out.setdefault(name, {"name": name, "label": RUNTIME_LABELS.get(name, name), "description": "", "defaults": {}})
    order = {n: i for i, n in enumerate(sf.RUNTIME_VARIANTS)}
    return sorted(out.values(), key=lambda r: order.get(r["name"], 99))


async def load_form_choices(ctx: PageContext, api: Client, form: LaunchForm) -> FormChoices:
    base = await load_choices(ctx, api, form)
    try:
        runtimes = runtime_list(await api.get("/services/_/runtimes"))
    except APIError:
        runtimes = runtime_list([])
    for f in base.folders:
        f["id"] = sf.folder_key(f.get("id"))
    model = [f for f in base.folders if f.get("usage_mode") == "model"]
    other = [f for f in base.folders if f.get("usage_mode", "general") in ("general", "data")]
    return FormChoices(base, model, other, runtimes)


def read_service_form(data: Any) -> LaunchForm:
    form = LaunchForm.parse(data)
    form.values.setdefault("replicas", "1")
    form.values.setdefault("model_mount_destination", sf.DEFAULT_MOUNT)
    form.values.setdefault("runtime_variant", "custom")
    return form


def build_body(ctx: PageContext, form: LaunchForm, fc: FormChoices) -> tuple[dict[str, str], dict[str, Any]]:
    problems: dict[str, str] = {}
    resources, shm = _resources(form, fc.base, problems, ctx._)
    project = fc.base.project["id"] if fc.base.project else None
    found, body = sf.service_body(form.get, form.env_vars, form.mounts, form.aliases, form.image, resources, shm,
                                  project, ctx._)
    return {**problems, **found}, body


def refusal(ctx: PageContext, err: APIError) -> tuple[dict[str, str], tuple[str, str] | None]:
    """The manager's refusal: messages at their fields, the rest above the form."""
    placed, unplaced = sf.split_field_errors(err.body)
    if placed and not unplaced:
        return placed, None
    title, message = api_error_text(err)
    return placed, (title, "; ".join(unplaced) if unplaced else message)


def render_form(ctx: PageContext, request: Request, form: LaunchForm, fc: FormChoices, *,
                errors: dict[str, str], general: tuple[str, str] | None = None, service: dict[str, Any] | None = None,
                status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    ctx.section = "serving"
    env_repo, version = environment_shown(form, fc.base)
    rg = form.get("rg") or (fc.base.resource_groups[0] if fc.base.resource_groups else "")
    return ctx.state.renderer.render(
        request, "serving/form.html", status_code=status_code, headers=headers, form=form, ch=fc.base, fc=fc,
        errors=errors, general=general, service=service, env_repo=env_repo, version=version, rg=rg,
        default_labels=DEFAULT_LABELS,
        action=f"/serving/{service['id']}/edit" if service else "/serving/start")


@router.get("/serving/start")
async def start_form(request: Request, ctx: UserPage) -> Response:
    form = read_service_form(request.query_params)
    async with ctx.state.gateway.client(ctx.session) as api:
        fc = await load_form_choices(ctx, api, form)
    if not form.get("model_folder") and fc.model_folders:
        form.values["model_folder"] = str(fc.model_folders[0]["id"])
    return render_form(ctx, request, form, fc, errors={}, general=fc.base.errors[0] if fc.base.errors else None)


def _form_swap() -> dict[str, str]:
    """A refused submit re-renders the whole form in place (errors at their fields)."""
    return {"HX-Retarget": "#service-form-page", "HX-Reswap": "outerHTML", "HX-Reselect": "#service-form-page"}


@router.post("/serving/start")
async def create_service(request: Request, ctx: UserPage) -> Response:
    form = read_service_form(await request.form())
    async with ctx.state.gateway.client(ctx.session) as api:
        fc = await load_form_choices(ctx, api, form)
        problems, body = build_body(ctx, form, fc)
        if problems:
            return render_form(ctx, request, form, fc, errors=problems, headers=_form_swap())
        try:
            created = await api.post("/services", json=body)
        except APIError as err:
            errors, general = refusal(ctx, err)
            return render_form(ctx, request, form, fc, errors=errors, general=general, headers=_form_swap())
    sid = str(created.get("endpoint_id") or created.get("id") or "")
    return redirect(ctx, f"/serving/{quote(sid)}" if sid else SERVING_URL)


async def _service(api: Client, sid: str) -> dict[str, Any]:
    s = await api.get(f"/services/{quote(sid)}")
    s.setdefault("id", s.get("endpoint_id") or sid)
    return s


def error_toast(ctx: PageContext, err: APIError) -> Response:
    title, message = api_error_text(err)
    return events(ctx, toast=f"{title} {message}".strip(), level="danger", status_code=err.status)


@router.get("/serving/{sid}/edit")
async def edit_form(sid: str, request: Request, ctx: UserPage) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            service = await _service(api, sid)
        except APIError as err:
            return error_toast(ctx, err)
        values, env, mounts, aliases = sf.form_values(service)
        form = LaunchForm(values, env, mounts, aliases)
        fc = await load_form_choices(ctx, api, form)
    return render_form(ctx, request, form, fc, errors={}, service=service_row(service))


@router.post("/serving/{sid}/edit")
async def update_service(sid: str, request: Request, ctx: UserPage) -> Response:
    form = read_service_form(await request.form())
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            service = service_row(await _service(api, sid))
        except APIError as err:
            return error_toast(ctx, err)
        fc = await load_form_choices(ctx, api, form)
        problems, body = build_body(ctx, form, fc)
        if problems:
            return render_form(ctx, request, form, fc, errors=problems, service=service, headers=_form_swap())
        try:
            await api.patch(f"/services/{quote(sid)}", json=body)
        except APIError as err:
            errors, general = refusal(ctx, err)
            return render_form(ctx, request, form, fc, errors=errors, general=general, service=service,
                               headers=_form_swap())
    return redirect(ctx, f"/serving/{quote(sid)}")


# -- Validate (MS-2): the manager's dry run, relayed as it comes --------------------------------------
def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def _once(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _stream_answer(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/serving/validate")
async def validate(request: Request, ctx: UserPage) -> Response:
    """``text/event-stream``: the manager's ``log``/``step``/``verdict`` events as they come; the form's
    own problems (and a manager refusal before it starts) as ``fields`` then a failed ``verdict``."""
    form = read_service_form(await request.form())
    async with ctx.state.gateway.client(ctx.session) as api:
        fc = await load_form_choices(ctx, api, form)
    problems, body = build_body(ctx, form, fc)
    if problems:
        return _stream_answer(_once(sse("fields", problems), sse("verdict", {
            "ok": False, "step": "form", "message": ctx._("Fix the problems in the form first.")})))
    upstream = await ctx.state.gateway.forward(
        ctx.session, "POST", "/services/_/validate",
        {"Content-Type": "application/json", "Accept": "text/event-stream"}, json.dumps(body).encode())
    if upstream.status_code >= 400:
        raw = await upstream.aread()
        await upstream.aclose()
        try:
            problem = json.loads(raw)
        except ValueError:
            problem = {"title": raw.decode(errors="replace")[:200]}
        err = APIError(upstream.status_code, problem if isinstance(problem, dict) else {})
        placed, general = refusal(ctx, err)
        message = " ".join(general).strip() if general else ctx._("Fix the problems in the form first.")
        return _stream_answer(_once(sse("fields", placed), sse("verdict", {"ok": False, "step": "request",
                                                                            "message": message})))

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except (asyncio.CancelledError, OSError):
            pass
        finally:
            await upstream.aclose()

    return _stream_answer(relay())


# -- delete (MS-8) -------------------------------------------------------------------------------------
@router.get("/serving/{sid}/delete")
async def delete_dialog(sid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            service = await _service(api, sid)
        except APIError as err:
            return error_toast(ctx, err)
    name = str(service.get("name") or sid)
    return ctx.state.renderer.render(
        request, "dialogs/confirm.html", title=ctx._("Delete service"), danger=True,
        message=ctx._("Delete the service %(name)s? Its replicas are terminated and its endpoint stops answering.",
                      name=name),
        action=f"/serving/{quote(sid)}/delete", fields={}, button=ctx._("Delete"), error=None,
        type_to_confirm=name)


@router.post("/serving/{sid}/delete")
async def delete_service(sid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            service = await _service(api, sid)
            name = str(service.get("name") or sid)
            if form.text("confirm") != name:
                return ctx.state.renderer.render(
                    request, "forms/confirm.html", title=ctx._("Delete service"), danger=True,
                    message=ctx._("Delete the service %(name)s? Its replicas are terminated and its endpoint "
                                  "stops answering.", name=name),
                    action=f"/serving/{quote(sid)}/delete", fields={}, button=ctx._("Delete"),
                    error=ctx._("Type the service's name to confirm."), type_to_confirm=name)
            await api.delete(f"/services/{quote(sid)}")
        except APIError as err:
            return error_toast(ctx, err)
    response = events(ctx, toast=ctx._("The service %(name)s is being deleted.", name=name), close_modal=True,
                      changed=True)
    if request.query_params.get("from") == "detail" or "/serving/" in request.headers.get("hx-current-url", ""):
        response.headers["HX-Redirect"] = SERVING_URL
    return response
