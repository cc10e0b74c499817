"""The user menu's dialogs: My account (ID-8: full name, password, 2FA with QR code; ID-7) and
About."""

from __future__ import annotations

import base64

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError

from ..context import LoggedIn, PageContext
from ..forms import read_form
from ..manager import LOGIN_EPOCH_HEADER
from ..responses import api_error_text, field_errors, notify

router = APIRouter(tags=["pages"])
PASSWORD_FIELDS = {"old_password", "new_password", "new_password2"}


def _render(request: Request, ctx: PageContext, template: str, **context) -> Response:
    return ctx.state.renderer.render(request, template, **context)


@router.get("/account")
async def account_dialog(request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        me = await api.get("/user/me")
    return _render(request, ctx, "dialogs/account.html", me=me, errors={}, general=None,
                   totp_enabled=bool(me.get("totp_activated")))


@router.post("/account/full-name")
async def update_full_name(request: Request, ctx: LoggedIn) -> Response:
    full_name = (await read_form(request)).text("full_name")
    errors: dict[str, str] = {}
    general = None
    if len(full_name) > 64:
        errors["full_name"] = ctx._("At most 64 characters.")
    else:
        try:
            async with ctx.state.gateway.client(ctx.session) as api:
                await api.post("/auth/update-full-name", json={"full_name": full_name})
        except APIError as err:
            errors, general = field_errors(err, {"full_name"})
        else:
            response = _render(request, ctx, "forms/full_name.html", full_name=full_name, errors={},
                               general=None)
            return notify(response, toast=ctx._("Your name was updated."))
    return _render(request, ctx, "forms/full_name.html", full_name=full_name, errors=errors,
                   general=general)


@router.post("/account/password")
async def change_password(request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    old, new, again = form.raw("old_password"), form.raw("new_password"), form.raw("new_password2")
    errors: dict[str, str] = {}
    general = None
    if not old:
        errors["old_password"] = ctx._("Enter your current password.")
    if not new:
        errors["new_password"] = ctx._("Enter a new password.")
    elif new != again:
        errors["new_password2"] = ctx._("The passwords do not match.")
    if not errors:
        try:
            async with ctx.state.gateway.client(ctx.session) as api:
                answer = await api.post("/auth/update-password", raw=True, json={
                    "old_password": old, "new_password": new, "new_password2": again})
        except APIError as err:
            if err.status == 401:  # the manager's "Old password mismatch"
                errors["old_password"] = ctx._("The current password is not correct.")
            else:
                errors, general = field_errors(err, PASSWORD_FIELDS)
        else:
            ctx.session.need_password_change = False
            # this login carries over to the new password; the user's other logins end
            ctx.session.login_epoch = answer.headers.get(LOGIN_EPOCH_HEADER) or ctx.session.login_epoch
            await ctx.state.sessions.save(ctx.session)
            response = _render(request, ctx, "forms/password.html", errors={}, general=None)
            return notify(response, toast=ctx._("Your password was changed."))
    return _render(request, ctx, "forms/password.html", errors=errors, general=general)


# -- two-factor authentication ------------------------------------------------------------------
async def _totp_enabled(ctx: PageContext) -> bool:
    async with ctx.state.gateway.client(ctx.session) as api:
        return bool((await api.get("/auth/totp"))["enabled"])


@router.get("/account/totp")
async def totp_section(request: Request, ctx: LoggedIn) -> Response:
    return _render(request, ctx, "forms/totp.html", mode="status", enabled=await _totp_enabled(ctx))


@router.post("/account/totp")
async def totp_start(request: Request, ctx: LoggedIn) -> Response:
    """Register a pending secret and show its QR code and the confirmation field."""
    try:
        async with ctx.state.gateway.client(ctx.session) as api:
            pending = await api.post("/auth/totp")
    except APIError as err:
        return _render(request, ctx, "forms/totp.html", mode="status", enabled=await _totp_enabled(ctx),
                       general=api_error_text(err))
    qr = _svg_data_url(pending["qr_svg"])
    return _render(request, ctx, "forms/totp.html", mode="setup", enabled=False, qr_data_url=qr,
                   secret=pending["secret"], errors={})


def _svg_data_url(svg: str) -> str:
    """The manager's inline SVG as an <img> source (a standalone SVG needs its namespace)."""
    if "xmlns=" not in svg:
        svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@router.post("/account/totp/confirm")
async def totp_confirm(request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    otp, secret, qr = form.text("otp"), form.text("secret"), form.text("qr_data_url")
    try:
        async with ctx.state.gateway.client(ctx.session) as api:
            await api.post("/auth/totp/confirm", json={"otp": otp})
    except APIError as err:
        return _render(request, ctx, "forms/totp.html", mode="setup", enabled=False, secret=secret,
                       qr_data_url=qr if qr.startswith("data:image/svg+xml;base64,") else "",
                       errors={"otp": _otp_error(ctx, err)})
    response = _render(request, ctx, "forms/totp.html", mode="status", enabled=True)
    return notify(response, toast=ctx._("Two-factor authentication is on."))


@router.get("/account/totp/disable")
async def totp_disable_form(request: Request, ctx: LoggedIn) -> Response:
    return _render(request, ctx, "forms/totp.html", mode="disable", enabled=True, errors={})


@router.post("/account/totp/disable")
async def totp_disable(request: Request, ctx: LoggedIn) -> Response:
    otp = (await read_form(request)).text("otp")
    try:
        async with ctx.state.gateway.client(ctx.session) as api:
            await api.delete("/auth/totp", json={"otp": otp})
    except APIError as err:
        return _render(request, ctx, "forms/totp.html", mode="disable", enabled=True,
                       errors={"otp": _otp_error(ctx, err)})
    response = _render(request, ctx, "forms/totp.html", mode="status", enabled=False)
    return notify(response, toast=ctx._("Two-factor authentication is off."))


def _otp_error(ctx: PageContext, err: APIError) -> str:
    if err.status == 400 and (err.message == "Invalid OTP" or err.type.endswith("invalid-api-params")):
        return ctx._("The code is not correct. Enter the current 6-digit code.")
    title, message = api_error_text(err)
    return message or title


# -- about --------------------------------------------------------------------------------------
@router.get("/about")
async def about_dialog(request: Request, ctx: LoggedIn) -> Response:
    try:
        async with ctx.state.gateway.client() as api:
            root = await api.get("/")
    except (APIError, httpx.TransportError):
        root = {}
    return _render(request, ctx, "dialogs/about.html", manager_version=root.get("manager", "-"),
                   manager_api_version=root.get("version", "-"))
