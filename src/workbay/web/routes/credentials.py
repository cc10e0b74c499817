"""The Users page's Credentials tab dialogs (ID-9): keypair info, edit, (de)activate, delete, add."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError, Client

from ..context import Admin, PageContext
from ..forms import FieldError, FormData, integer, read_form
from ..responses import events, field_errors

router = APIRouter(tags=["pages"])
KEYPAIR_FIELDS = {"user_email", "resource_policy", "rate_limit", "access_key", "secret_key"}
MAX_RATE_LIMIT = 2**31 - 1


async def _policies(api: Client) -> list[str]:
    return [p["name"] for p in (await api.get("/admin/resource-policies/keypair"))["items"]]


def _render_form(request: Request, ctx: PageContext, template: str, **context: Any) -> Response:
    context.setdefault("errors", {})
    context.setdefault("general", None)
    return ctx.state.renderer.render(request, template, **context)


def _rate_limit(ctx: PageContext, form: FormData) -> int:
    return integer(form, "rate_limit", ctx._("Enter a whole number of requests (1 or more)."),
                   minimum=1, maximum=MAX_RATE_LIMIT)


@router.get("/credentials/new")
async def new_keypair_dialog(request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        policies = await _policies(api)
    return _render_form(request, ctx, "dialogs/keypair_form.html", keypair=None, policies=policies,
                        values={"resource_policy": "default", "rate_limit": "10000"})


@router.post("/credentials")
async def create_keypair(request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    errors: dict[str, str] = {}
    general = None
    body: dict[str, Any] = {"user_email": form.text("user_email"),
                            "resource_policy": form.text("resource_policy") or "default"}
    if not body["user_email"]:
        errors["user_email"] = ctx._("Email address is required.")
    try:
        body["rate_limit"] = _rate_limit(ctx, form)
    except FieldError as e:
        errors[e.field] = e.message
    access_key, secret_key = form.text("access_key"), form.text("secret_key")
    if bool(access_key) != bool(secret_key):
        errors["secret_key" if access_key else "access_key"] = ctx._(
            "Give both the access key and the secret key, or neither.")
    if access_key and secret_key:
        body.update(access_key=access_key, secret_key=secret_key)
    async with ctx.state.gateway.client(ctx.session) as api:
        if not errors:
            try:
                created = await api.post("/admin/keypairs", json=body)
            except APIError as err:
                errors, general = field_errors(err, KEYPAIR_FIELDS)
            else:
                return events(ctx, toast=ctx._("Keypair %(key)s was added.", key=created["access_key"]),
                              close_modal=True, changed=True)
        policies = await _policies(api)
    return _render_form(request, ctx, "forms/keypair.html", keypair=None, policies=policies,
                        values={**form.values(KEYPAIR_FIELDS - {"secret_key"}), "advanced": bool(access_key)},
                        errors=errors, general=general)


@router.get("/credentials/{access_key}/detail")
async def keypair_detail(access_key: str, request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        keypair = await api.get(f"/admin/keypairs/{access_key}")
    return ctx.state.renderer.render(request, "dialogs/keypair_detail.html", keypair=keypair)


@router.get("/credentials/{access_key}/edit")
async def edit_keypair_dialog(access_key: str, request: Request,
                              ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        keypair = await api.get(f"/admin/keypairs/{access_key}")
        policies = await _policies(api)
    return _render_form(request, ctx, "dialogs/keypair_form.html", keypair=keypair, policies=policies,
                        values=keypair)


@router.post("/credentials/{access_key}")
async def update_keypair(access_key: str, request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    errors: dict[str, str] = {}
    general = None
    async with ctx.state.gateway.client(ctx.session) as api:
        keypair = await api.get(f"/admin/keypairs/{access_key}")
        try:
            patch = {"resource_policy": form.text("resource_policy"), "rate_limit": _rate_limit(ctx, form)}
        except FieldError as e:
            errors[e.field] = e.message
        if not errors:
            try:
                await api.patch(f"/admin/keypairs/{access_key}", json=patch)
            except APIError as err:
                errors, general = field_errors(err, KEYPAIR_FIELDS)
            else:
                return events(ctx, toast=ctx._("Keypair %(key)s was updated.", key=access_key),
                              close_modal=True, changed=True)
        policies = await _policies(api)
    return _render_form(request, ctx, "forms/keypair.html", keypair=keypair, policies=policies,
                        values={**keypair, **form.values(KEYPAIR_FIELDS)}, errors=errors, general=general)


@router.get("/credentials/{access_key}/status")
async def confirm_keypair_status(access_key: str, request: Request,
                                 ctx: Admin) -> Response:
    activate = request.query_params.get("to") == "active"
    async with ctx.state.gateway.client(ctx.session) as api:
        keypair = await api.get(f"/admin/keypairs/{access_key}")
    values = {"key": access_key, "email": keypair["user_email"]}
    if activate:
        title, button = ctx._("Reactivate keypair"), ctx._("Reactivate")
        message = ctx._("Reactivate keypair %(key)s of %(email)s?", **values)
    else:
        title, button = ctx._("Deactivate keypair"), ctx._("Deactivate")
        message = ctx._("Deactivate keypair %(key)s of %(email)s? Requests signed with it will be "
                        "refused.", **values)
    return ctx.state.renderer.render(request, "dialogs/confirm.html", title=title, message=message,
                                     action=f"/credentials/{access_key}/status", button=button,
                                     danger=not activate,
                                     fields={"is_active": "true" if activate else "false"})


@router.post("/credentials/{access_key}/status")
async def change_keypair_status(access_key: str, request: Request,
                                ctx: Admin) -> Response:
    active = (await read_form(request)).flag("is_active")
    async with ctx.state.gateway.client(ctx.session) as api:
        await api.patch(f"/admin/keypairs/{access_key}", json={"is_active": active})
    toast = (ctx._("Keypair %(key)s was reactivated.", key=access_key) if active
             else ctx._("Keypair %(key)s was deactivated.", key=access_key))
    return events(ctx, toast=toast, close_modal=True, changed=True)


@router.get("/credentials/{access_key}/delete")
async def confirm_keypair_delete(access_key: str, request: Request,
                                 ctx: Admin) -> Response:
    return ctx.state.renderer.render(
        request, "dialogs/confirm.html", title=ctx._("Delete keypair"),
        message=ctx._("Delete keypair %(key)s permanently? This cannot be undone.", key=access_key),
        action=f"/credentials/{access_key}/delete", button=ctx._("Delete"), danger=True,
        fields={}, type_to_confirm=access_key)


@router.post("/credentials/{access_key}/delete")
async def delete_keypair(access_key: str, request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    if form.text("confirm") != access_key:
        return _confirm_again(request, ctx, access_key, ctx._("Type the access key exactly to confirm."))
    try:
        async with ctx.state.gateway.client(ctx.session) as api:
            await api.delete(f"/admin/keypairs/{access_key}")
    except APIError as err:
        if err.status == 401:
            raise
        return _confirm_again(request, ctx, access_key, str(err.msg or err.title))
    return events(ctx, toast=ctx._("Keypair %(key)s was deleted.", key=access_key), close_modal=True,
                  changed=True)


def _confirm_again(request: Request, ctx: PageContext, access_key: str, error: str) -> Response:
    return ctx.state.renderer.render(
        request, "forms/confirm.html",
        message=ctx._("Delete keypair %(key)s permanently? This cannot be undone.", key=access_key),
        action=f"/credentials/{access_key}/delete", button=ctx._("Delete"), danger=True, fields={},
        type_to_confirm=access_key, error=error)
