"""The login page, the sign-up dialog and logging out of the WebUI."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError

from .. import nav
from ..context import AnyVisitor, PageContext
from ..cookies import (
    LANGUAGE_COOKIE,
    PREFERENCE_COOKIE_AGE,
    SESSION_COOKIE,
    THEME_COOKIE,
    clear_cookie,
    set_cookie,
)
from ..forms import FormData, read_form
from ..forwarding import client_address
from ..i18n import LANGUAGES, N_
from ..lockout import Lock
from ..login import LoginResult, Outcome
from ..responses import error_headers, events, field_errors, redirect

router = APIRouter(tags=["pages"])

# What the manager says → what the login page shows (translated).
LOGIN_MESSAGES = {
    "User credential mismatch.": N_("Incorrect email or password."),
    "Invalid OTP": N_("The one-time password is not correct."),
    "The account is inactive.": N_("This account is inactive. Contact your administrator."),
    "The account is before-verification.": N_("This account is not verified yet."),
    "OTP already used": N_("This one-time password was used already. Wait for the next one."),
}
SIGNUP_FIELDS = {"email", "username", "password", "password2", "invitation_token", "agree"}


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site may follow a login: one leading ``/``, no ``//`` and no
    backslash anywhere (browsers read ``/\\host`` and ``/<tab>/host`` as ``//host``), no
    whitespace or control character anywhere (browsers drop tabs and newlines from URLs, and a
    newline cannot go into a header), nothing that parses as a scheme or a host (issue 10,
    findings 9 and 13).  Anything else: the default page."""
    if not target or not target.startswith("/") or "//" in target or "\\" in target:
        return None
    if any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or not ch.isprintable()
           for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@router.get("/")
async def home(ctx: AnyVisitor) -> Response:
    if ctx.session is None:
        return redirect(ctx, "/login")
    return redirect(ctx, nav.landing_url(ctx.session.role))


@router.get("/login")
async def login_page(request: Request, ctx: AnyVisitor) -> Response:
    if ctx.session is not None:
        target = _safe_next(request.query_params.get("next"))
        return redirect(ctx, target or nav.landing_url(ctx.session.role))
    return ctx.state.renderer.render(request, "pages/login.html",
                                     next=_safe_next(request.query_params.get("next")) or "",
                                     values={}, feedback=None, show_otp=False)


def _lock_message(ctx: PageContext, lock: Lock) -> str:
    minutes = max(1, round(lock.seconds_left() / 60))
    until = datetime.fromtimestamp(lock.until, UTC).strftime("%H:%M UTC")
    return ctx._("Too many failed login attempts. Try again in %(minutes)s minutes (after %(time)s).",
                 minutes=minutes, time=until)


def _failure_message(ctx: PageContext, result: LoginResult) -> str:
    if result.outcome is Outcome.LOCKED and result.lock:
        return _lock_message(ctx, result.lock)
    if result.outcome is Outcome.UNAVAILABLE:
        return ctx._("The manager is unreachable. Try again in a moment.")
    if result.outcome is Outcome.OTP_REQUIRED:
        return ctx._("Enter the 6-digit one-time password from your authenticator app.")
    details = str((result.error or {}).get("details") or "")
    known = LOGIN_MESSAGES.get(details)
    return ctx._(known) if known else (details or ctx._("Login failed."))


@router.post("/login")
async def login_submit(request: Request, ctx: AnyVisitor) -> Response:
    form = await read_form(request)
    username, password, otp = form.text("username"), form.raw("password"), form.text("otp")
    if not username or not password:
        return _login_feedback(request, ctx, ctx._("Enter your email and password."), otp_shown=bool(otp),
                               status="error")
    if ctx.session is not None:
        await ctx.state.logins.logout(ctx.session)
    result = await ctx.state.logins.login(username, password, otp or None, client=client_address(request))
    if result.outcome is not Outcome.OK or result.session is None:
        status = "info" if result.outcome is Outcome.OTP_REQUIRED else "error"
        otp_shown = result.outcome is Outcome.OTP_REQUIRED or bool(otp)
        return _login_feedback(request, ctx, _failure_message(ctx, result), otp_shown, status,
                               locked=result.outcome is Outcome.LOCKED)
    session = result.session
    response = redirect(ctx, _safe_next(form.text("next")) or nav.landing_url(session.role))
    set_cookie(response, request, SESSION_COOKIE, ctx.state.signer.sign(session.id))
    for cookie, key in ((LANGUAGE_COOKIE, "language"), (THEME_COOKIE, "theme")):
        if session.preferences.get(key):
            set_cookie(response, request, cookie, session.preferences[key], PREFERENCE_COOKIE_AGE)
    return response


def _login_feedback(request: Request, ctx: PageContext, message: str, otp_shown: bool, status: str,
                    locked: bool = False) -> Response:
    headers = error_headers(ctx._("Login failed."), message) if status == "error" else None
    return ctx.state.renderer.render(request, "components/login_feedback.html", headers=headers,
                                     message=message, level=status, show_otp=otp_shown, locked=locked)


@router.post("/logout")
async def logout(request: Request, ctx: AnyVisitor) -> Response:
    await ctx.state.logins.logout(ctx.session)
    response = redirect(ctx, "/login")
    clear_cookie(response, request, SESSION_COOKIE)
    return response


@router.post("/language")
async def choose_language(request: Request, ctx: AnyVisitor) -> Response:
    """The login page's language switch (before login; logged-in users use /preferences)."""
    language = (await read_form(request)).text("language")
    response = Response(status_code=200, headers={"HX-Refresh": "true"})
    if language in LANGUAGES:
        set_cookie(response, request, LANGUAGE_COOKIE, language, PREFERENCE_COOKIE_AGE)
    return response


# -- sign-up (ID-2) -----------------------------------------------------------------------------
def _signup_enabled(ctx: PageContext) -> bool:
    return ctx.state.config.webserver.signup_enabled


@router.get("/signup")
async def signup_dialog(request: Request, ctx: AnyVisitor) -> Response:
    if not _signup_enabled(ctx):
        return events(ctx, toast=ctx._("Sign-up is disabled on this server."), level="warning")
    return ctx.state.renderer.render(request, "dialogs/signup.html", values={}, errors={}, general=None)


@router.post("/signup")
async def signup_submit(request: Request, ctx: AnyVisitor) -> Response:
    if not _signup_enabled(ctx):
        return events(ctx, toast=ctx._("Sign-up is disabled on this server."), level="warning")
    form = await read_form(request)
    values = form.values(SIGNUP_FIELDS - {"password", "password2"})
    errors = _signup_problems(ctx, form)
    general = None
    if not errors:
        body = {"domain": "default", "email": form.text("email"), "password": form.raw("password"),
                "username": form.text("username") or None,
                "invitation_token": form.text("invitation_token") or None}
        try:
            async with ctx.state.gateway.client() as api:
                await api.post("/auth/signup", json=body)
        except APIError as err:
            errors, general = field_errors(err, SIGNUP_FIELDS)
        else:
            return events(ctx, toast=ctx._("Your account is ready. Log in with your email and password."),
                          close_modal=True)
    return ctx.state.renderer.render(request, "forms/signup.html", values=values, errors=errors,
                                     general=general)


def _signup_problems(ctx: PageContext, form: FormData) -> dict[str, str]:
    errors = {}
    if not form.text("email"):
        errors["email"] = ctx._("Email address is required.")
    if not form.raw("password"):
        errors["password"] = ctx._("Password is required.")
    elif form.raw("password") != form.raw("password2"):
        errors["password2"] = ctx._("The passwords do not match.")
    if not form.flag("agree"):
        errors["agree"] = ctx._("Accept the terms of service and the privacy policy to sign up.")
    return errors
