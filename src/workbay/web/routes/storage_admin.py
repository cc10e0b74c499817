"""Admin Resources page, Storage tab (VF-12): volumes with usage and capabilities, and quota
settings per user and per project (limit, usage, edit, unset → back to the policy's default).
The page has tabs so that later issues can add Agents and Resource Groups."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError, Client

from ..context import Admin, AdminPage, PageContext
from ..forms import read_form
from ..i18n import N_
from ..responses import api_error_text, events
from ..tables import Column

router = APIRouter(tags=["pages"])
RESOURCE_TABS = ("storage", "agents", "resource-groups")  # agents, resource groups: admin_resources.py
RESOURCE_TAB_LABELS = {"storage": N_("Storage"), "agents": N_("Agents"), "resource-groups": N_("Resource Groups")}
RESOURCE_TAB_ICONS = {"storage": "hdd-stack", "agents": "cpu", "resource-groups": "diagram-3"}
VOLUME_COLUMNS = (Column("host", N_("Host")), Column("backend", N_("Backend")),
                  Column("usage", N_("Usage")), Column("capabilities", N_("Capabilities")))
GIB = 2**30


async def _volumes(api: Client) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    try:
        listing = await api.get("/folders/_/volumes")
        return list(listing.get("volumes") or []), None
    except APIError as err:
        if err.status != 403:
            return [], api_error_text(err)
    # domain admins: the hosts they may use, with what the manager tells about them
    hosts = await api.get("/folders/_/hosts")
    info = hosts.get("volume_info") or {}
    return [{"host": h, "backend": (info.get(h) or {}).get("backend", ""),
             "capabilities": (info.get(h) or {}).get("capabilities", []),
             "quota_supported": "quota" in ((info.get(h) or {}).get("capabilities") or []),
             "usage": (info.get(h) or {}).get("usage") or {}} for h in hosts.get("allowed") or []], None


async def _scope(api: Client, scope: str, target: str) -> tuple[str | None, str, str | None]:
    """(quota_scope_id, label, error) of the chosen user (by email) or project (by id)."""
    if not target:
        return None, "", None
    if scope == "user":
        try:
            user = await api.get(f"/admin/users/{target}")
        except APIError as err:
            return None, target, api_error_text(err)[0]
        return f"user:{user['uuid']}", user.get("email", target), None
    try:
        project = await api.get(f"/admin/projects/{target}")
    except APIError as err:
        return None, target, api_error_text(err)[0]
    return f"project:{project['id']}", project.get("name", target), None


async def _choices(api: Client, scope: str) -> list[dict[str, Any]]:
    try:
        if scope == "user":
            return list((await api.get("/admin/users", params={"limit": 200, "status": "active"}))["items"])
        return list((await api.get("/admin/projects", params={"limit": 1000}))["items"])
    except APIError:
        return []


async def _quota(api: Client, host: str, scope_id: str | None) -> tuple[dict | None, tuple[str, str] | None]:
    if not host or not scope_id:
        return None, None
    try:
        return await api.get("/folders/_/quota", params={"host": host, "quota_scope_id": scope_id}), None
    except APIError as err:
        return None, api_error_text(err)


@router.get("/resources")
async def resources_page(request: Request, ctx: AdminPage) -> Response:
    q = request.query_params
    tab = q.get("tab") if q.get("tab") in RESOURCE_TABS else "storage"
    if tab != "storage":
        from .admin_resources import render_tab

        return await render_tab(request, ctx, tab)
    scope = "project" if q.get("scope") == "project" else "user"
    target = q.get("target", "").strip()
    async with ctx.state.gateway.client(ctx.session) as api:
        volumes, volumes_error = await _volumes(api)
        host = q.get("host") if q.get("host") in [v["host"] for v in volumes] else (
            volumes[0]["host"] if volumes else "")
        scope_id, scope_label, scope_error = await _scope(api, scope, target)
        quota, quota_error = await _quota(api, host, scope_id)
        choices = await _choices(api, scope)
    ctx.section = "resources"
    volume = next((v for v in volumes if v["host"] == host), None)
    return ctx.state.renderer.render(
        request, "pages/resources.html", tab=tab, tabs=RESOURCE_TABS, tab_labels=RESOURCE_TAB_LABELS,
        tab_icons=RESOURCE_TAB_ICONS, volumes=volumes, volumes_error=volumes_error, columns=VOLUME_COLUMNS,
        host=host, volume=volume, scope=scope, target=target, scope_id=scope_id, scope_label=scope_label,
        scope_error=scope_error, quota=quota, quota_error=quota_error, choices=choices)


def _quota_form(ctx: PageContext, request: Request, template: str, *, host: str, scope_id: str, label: str,
                value: str, error: str | None = None, general=None) -> Response:
    return ctx.state.renderer.render(request, template, host=host, scope_id=scope_id, label=label,
                                     value=value, errors={"limit_gib": error} if error else {},
                                     general=general)


@router.get("/resources/quota/edit")
async def edit_quota_dialog(request: Request, ctx: Admin) -> Response:
    q = request.query_params
    host, scope_id = q.get("host", ""), q.get("quota_scope_id", "")
    async with ctx.state.gateway.client(ctx.session) as api:
        quota = await api.get("/folders/_/quota", params={"host": host, "quota_scope_id": scope_id})
    limit = quota.get("limit_bytes") if quota.get("explicit") else None
    value = "" if limit is None else format((Decimal(limit) / GIB).normalize(), "f")
    return _quota_form(ctx, request, "dialogs/folder_quota.html", host=host, scope_id=scope_id,
                       label=q.get("label", scope_id), value=value)


@router.post("/resources/quota")
async def set_quota(request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    host, scope_id, label = form.text("host"), form.text("quota_scope_id"), form.text("label")
    raw = form.text("limit_gib")
    try:
        gib = Decimal(raw)
        if not gib.is_finite() or gib <= 0:
            raise InvalidOperation
    except InvalidOperation:
        return _quota_form(ctx, request, "dialogs/folder_quota_form.html", host=host, scope_id=scope_id,
                           label=label, value=raw, error=ctx._("Enter a size in GiB greater than 0."))
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            await api.request("PUT", "/folders/_/quota", json={
                "host": host, "quota_scope_id": scope_id, "limit_bytes": int(gib * GIB)})
        except APIError as err:
            return _quota_form(ctx, request, "dialogs/folder_quota_form.html", host=host, scope_id=scope_id,
                               label=label, value=raw, general=api_error_text(err))
    return events(ctx, toast=ctx._("The quota of %(name)s on %(host)s was set.", name=label, host=host),
                  close_modal=True, changed=True)


@router.get("/resources/quota/unset")
async def unset_quota_dialog(request: Request, ctx: Admin) -> Response:
    q = request.query_params
    host, scope_id, label = q.get("host", ""), q.get("quota_scope_id", ""), q.get("label", "")
    return ctx.state.renderer.render(
        request, "dialogs/confirm.html", title=ctx._("Unset quota"),
        message=ctx._("Unset the quota of %(name)s on %(host)s? The resource policy's limit applies again.",
                      name=label or scope_id, host=host),
        action="/resources/quota/unset", button=ctx._("Unset"), danger=True,
        fields={"host": host, "quota_scope_id": scope_id, "label": label})


@router.post("/resources/quota/unset")
async def unset_quota(request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    host, scope_id, label = form.text("host"), form.text("quota_scope_id"), form.text("label")
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            await api.delete("/folders/_/quota", params={"host": host, "quota_scope_id": scope_id})
        except APIError as err:
            title, message = api_error_text(err)
            return ctx.state.renderer.render(
                request, "forms/confirm.html", error=f"{title} {message}".strip(),
                message=ctx._("Unset the quota of %(name)s on %(host)s? The resource policy's limit applies again.",
                              name=label or scope_id, host=host),
                action="/resources/quota/unset", button=ctx._("Unset"), danger=True,
                fields={"host": host, "quota_scope_id": scope_id, "label": label})
    return events(ctx, toast=ctx._("The quota of %(name)s on %(host)s was unset.", name=label or scope_id, host=host),
                  close_modal=True, changed=True)
