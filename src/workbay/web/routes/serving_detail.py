"""A model service's page (MS-3, MS-4, MS-6): its routes with live figures (an htmx fragment polled
every few seconds), scale control, tokens and the example call, autoscaling rules, replica errors
with "clear errors and retry".  Each panel is a fragment re-rendered after its own actions; every
call is the manager's ``/services/{id}/…`` (docs/serving.md) with the user's keypair."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError, Client

from .. import serving_form as sf
from ..context import LoggedIn, PageContext, UserPage
from ..forms import read_form
from ..responses import api_error_text, events, notify
from .serving import error_toast, service_row, status_tone

router = APIRouter(tags=["pages"])


async def _service(api: Client, sid: str) -> dict[str, Any]:
    s = await api.get(f"/services/{quote(sid)}")
    s.setdefault("id", s.get("endpoint_id") or sid)
    return service_row(s)


def route_rows(service: dict[str, Any]) -> list[dict[str, Any]]:
    routes = service.get("routes") or service.get("active_routes") or []
    out = []
    for r in routes:
        status = str(r.get("status") or "")
        out.append({**r, "tone": status_tone(status), "status": status,
                    "ratio": r.get("traffic_ratio"), "session_short": str(r.get("session_id") or "")[:8]})
    return out


def _stats(service: dict[str, Any]) -> dict[str, Any]:
    stats = service.get("stats") or {}
    return {k: stats.get(k) for k in ("rps", "in_flight", "requests", "errors", "p50_ms", "p95_ms")}


def _render_live(ctx: PageContext, request: Request, service: dict[str, Any], template: str) -> Response:
    return ctx.state.renderer.render(request, template, s=service, routes=route_rows(service),
                                     stats=_stats(service))


@router.get("/serving/{sid}")
async def service_page(sid: str, request: Request, ctx: UserPage) -> Response:
    ctx.section = "serving"
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            service = await _service(api, sid)
        except APIError as err:
            title, message = api_error_text(err)
            return ctx.state.renderer.render(request, "pages/error.html", status_code=err.status,
                                             error_title=title, error_message=message, status_code_shown=err.status)
    return ctx.state.renderer.render(request, "serving/detail.html", s=service, routes=route_rows(service),
                                     stats=_stats(service))


@router.get("/serving/{sid}/live")
async def live_fragment(sid: str, request: Request, ctx: LoggedIn) -> Response:
    """The status, figures and routes; the page polls it every few seconds."""
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            service = await _service(api, sid)
        except APIError as err:
            return error_toast(ctx, err)
    return _render_live(ctx, request, service, "serving/live.html")


@router.post("/serving/{sid}/scale")
async def scale(sid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    try:
        to = int(form.text("to"))
    except ValueError:
        return events(ctx, toast=ctx._("Enter a whole number of replicas."), level="danger", status_code=422)
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            await api.post(f"/services/{quote(sid)}/scale", json={"to": to})
        except APIError as err:
            return error_toast(ctx, err)
    return events(ctx, toast=ctx._("Scaling to %(count)s replicas.", count=to), changed=True)


# -- tokens (MS-6) -------------------------------------------------------------------------------------
def _token_status(t: dict[str, Any], now: datetime) -> str:
    status = str(t.get("status") or "")
    if status:
        return status
    try:
        expires = datetime.fromisoformat(str(t.get("expires_at")))
    except ValueError:
        return "valid"
    return "expired" if (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) <= now else "valid"


async def _render_tokens(ctx: PageContext, request: Request, api: Client, sid: str, *, new_token: str | None = None,
                         error: str | None = None, headers: dict[str, str] | None = None) -> Response:
    service = await _service(api, sid)
    now = datetime.now(UTC)
    try:
        got = await api.get(f"/services/{quote(sid)}/tokens")
        tokens, list_error = got.get("items") or [], None
    except APIError as err:
        tokens, list_error = [], " ".join(api_error_text(err)).strip()
    for t in tokens:
        t["status"] = _token_status(t, now)
    tokens.sort(key=lambda t: str(t.get("created_at") or ""), reverse=True)
    example_token = new_token or next((t.get("token") for t in tokens if t["status"] == "valid"), None)
    return ctx.state.renderer.render(
        request, "serving/tokens.html", headers=headers, s=service, tokens=tokens, new_token=new_token,
        token_error=error or list_error, durations=[k for k, _ in sf.TOKEN_DURATIONS],
        curl=sf.curl_example(service["url"], example_token if new_token else None, service["public"]))


@router.get("/serving/{sid}/tokens")
async def tokens_panel(sid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            return await _render_tokens(ctx, request, api, sid)
        except APIError as err:
            return error_toast(ctx, err)


@router.post("/serving/{sid}/tokens")
async def generate_token(sid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    body, problem = sf.token_request(form.text("expiry") or "24h", form.text("valid_until"), datetime.now(UTC), ctx._)
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            if body is None:
                return await _render_tokens(ctx, request, api, sid, error=problem)
            try:
                got = await api.post(f"/services/{quote(sid)}/token", json=body)
            except APIError as err:
                title, message = api_error_text(err)
                return await _render_tokens(ctx, request, api, sid, error=f"{title} {message}".strip())
            response = await _render_tokens(ctx, request, api, sid, new_token=str(got.get("token") or ""))
            return notify(response, toast=ctx._("A new token was generated."))
        except APIError as err:
            return error_toast(ctx, err)


@router.post("/serving/{sid}/tokens/{tid}/revoke")
async def revoke_token(sid: str, tid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            try:
                await api.delete(f"/services/{quote(sid)}/tokens/{quote(tid)}")
            except APIError as err:
                title, message = api_error_text(err)
                return await _render_tokens(ctx, request, api, sid, error=f"{title} {message}".strip())
            return await _render_tokens(ctx, request, api, sid)
        except APIError as err:
            return error_toast(ctx, err)


# -- autoscaling rules (MS-4) ------------------------------------------------------------------------
async def _render_rules(ctx: PageContext, request: Request, api: Client, sid: str) -> Response:
    try:
        got = await api.get(f"/services/{quote(sid)}/auto-scaling-rules")
        rules, error = (got.get("items") if isinstance(got, dict) else got) or [], None
    except APIError as err:
        rules, error = [], " ".join(api_error_text(err)).strip()
    return ctx.state.renderer.render(request, "serving/rules.html", sid=sid, rules=rules, rules_error=error,
                                     comparators=dict(sf.COMPARATORS))


@router.get("/serving/{sid}/rules")
async def rules_panel(sid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        return await _render_rules(ctx, request, api, sid)


def _rule_dialog(ctx: PageContext, request: Request, sid: str, values: dict[str, str], rule_id: str | None,
                 errors: dict[str, str], general: str | None = None) -> Response:
    return ctx.state.renderer.render(
        request, "serving/rule_dialog.html", sid=sid, values=values, rule_id=rule_id, errors=errors,
        general=general, sources=sf.METRIC_SOURCES, comparators=sf.COMPARATORS)


NEW_RULE = {"metric_source": "kernel", "metric_name": "", "comparator": "gt", "threshold": "", "step_size": "1",
            "cooldown_seconds": "300", "min_replicas": "", "max_replicas": ""}


@router.get("/serving/{sid}/rules/new")
async def new_rule(sid: str, request: Request, ctx: LoggedIn) -> Response:
    return _rule_dialog(ctx, request, sid, dict(NEW_RULE), None, {})


async def _rule(api: Client, sid: str, rid: str) -> dict[str, Any] | None:
    got = await api.get(f"/services/{quote(sid)}/auto-scaling-rules")
    rules = (got.get("items") if isinstance(got, dict) else got) or []
    return next((r for r in rules if str(r.get("id")) == rid), None)


@router.get("/serving/{sid}/rules/{rid}/edit")
async def edit_rule(sid: str, rid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            rule = await _rule(api, sid, rid)
        except APIError as err:
            return error_toast(ctx, err)
    if rule is None:
        return events(ctx, toast=ctx._("The rule no longer exists."), level="warning", changed=True)
    return _rule_dialog(ctx, request, sid, sf.rule_values(rule), rid, {})


async def _save_rule(ctx: PageContext, request: Request, sid: str, rid: str | None) -> Response:
    form = await read_form(request)
    problems, body = sf.rule_body(form.text, ctx._)
    values = {k: form.text(k) for k in NEW_RULE}
    if problems:
        return _rule_dialog(ctx, request, sid, values, rid, problems)
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            if rid:
                await api.patch(f"/services/{quote(sid)}/auto-scaling-rules/{quote(rid)}", json=body)
            else:
                await api.post(f"/services/{quote(sid)}/auto-scaling-rules", json=body)
        except APIError as err:
            placed, unplaced = sf.split_field_errors(err.body, sf.RULE_FIELD_OF)
            general = None
            if unplaced or not placed:
                title, message = api_error_text(err)
                general = f"{title} {'; '.join(unplaced) or message}".strip()
            return _rule_dialog(ctx, request, sid, values, rid, placed, general)
    return events(ctx, toast=ctx._("The rule was saved."), close_modal=True, extra={"wb:rules-changed": True})


@router.post("/serving/{sid}/rules")
async def create_rule(sid: str, request: Request, ctx: LoggedIn) -> Response:
    return await _save_rule(ctx, request, sid, None)


@router.post("/serving/{sid}/rules/{rid}")
async def update_rule(sid: str, rid: str, request: Request, ctx: LoggedIn) -> Response:
    return await _save_rule(ctx, request, sid, rid)


@router.post("/serving/{sid}/rules/{rid}/delete")
async def delete_rule(sid: str, rid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            await api.delete(f"/services/{quote(sid)}/auto-scaling-rules/{quote(rid)}")
        except APIError as err:
            return error_toast(ctx, err)
        return await _render_rules(ctx, request, api, sid)


# -- errors (MS-3): each replica's failure, "clear errors and retry" -----------------------------------
async def _render_errors(ctx: PageContext, request: Request, api: Client, sid: str,
                         headers: dict[str, str] | None = None) -> Response:
    try:
        got = await api.get(f"/services/{quote(sid)}/errors")
        errors, retries, error = got.get("errors") or [], got.get("retries") or 0, None
    except APIError as err:
        errors, retries, error = [], 0, " ".join(api_error_text(err)).strip()
    return ctx.state.renderer.render(request, "serving/errors.html", headers=headers, sid=sid, errors=errors,
                                     retries=retries, errors_error=error)


@router.get("/serving/{sid}/errors")
async def errors_panel(sid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        return await _render_errors(ctx, request, api, sid)


@router.post("/serving/{sid}/errors/clear")
async def clear_errors(sid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            await api.post(f"/services/{quote(sid)}/errors/clear")
        except APIError as err:
            return error_toast(ctx, err)
        response = await _render_errors(ctx, request, api, sid)
    return notify(response, toast=ctx._("Errors cleared; a new replica starts shortly."), changed=True)

