"""Per-user preferences kept by the manager (``/user/preferences``): language, theme, compact
sidebar and the current project.  The session caches them so dialogs render without a lookup."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError

from ..context import THEMES, LoggedIn, PageContext
from ..cookies import LANGUAGE_COOKIE, PREFERENCE_COOKIE_AGE, THEME_COOKIE, clear_cookie, set_cookie
from ..forms import FormData, read_form
from ..i18n import LANGUAGES
from ..responses import api_error_text, events

router = APIRouter(tags=["pages"])
RESET = {"language": None, "theme": None, "compact_sidebar": False, "preferred_ssh_port": None}
SSH_PORT_MIN, SSH_PORT_MAX = 1024, 65535


def _patch_from(form: FormData) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    if form.text("language") in LANGUAGES:
        patch["language"] = form.text("language")
    if form.text("theme") in THEMES:
        patch["theme"] = form.text("theme")
    if form.has("compact_sidebar"):
        patch["compact_sidebar"] = form.flag("compact_sidebar")
    if form.text("project"):
        patch["project"] = form.text("project")
    if form.has("preferred_ssh_port"):  # empty: no preference (apps.py reads it for SSH / SFTP)
        text = form.text("preferred_ssh_port")
        patch["preferred_ssh_port"] = int(text) if text.isdigit() else (None if not text else text)
    return patch


def ssh_port_problem(ctx: PageContext, patch: dict[str, Any]) -> str | None:
    port = patch.get("preferred_ssh_port")
    if port is None or (isinstance(port, int) and SSH_PORT_MIN <= port <= SSH_PORT_MAX):
        return None
    return ctx._("Enter a port from %(min)s to %(max)s, or leave it empty.", min=SSH_PORT_MIN, max=SSH_PORT_MAX)


async def _save(ctx: PageContext, patch: dict[str, Any]) -> dict[str, Any]:
    async with ctx.state.gateway.client(ctx.session) as api:
        prefs = await api.patch("/user/preferences", json=patch)
    ctx.session.preferences = dict(prefs)
    await ctx.state.sessions.save(ctx.session)
    return prefs


@router.post("/preferences")
async def update_preferences(request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    patch = _patch_from(form)
    if not patch:
        return events(ctx, toast=ctx._("Nothing to change."), level="warning", status_code=400)
    problem = ssh_port_problem(ctx, patch)
    if problem:
        return events(ctx, toast=problem, level="danger", status_code=400)
    try:
        await _save(ctx, patch)
    except APIError as err:
        title, message = api_error_text(err)
        return events(ctx, toast=f"{title} {message}".strip(), level="danger", status_code=err.status)
    if "language" in patch:
        response = Response(status_code=200, headers={"HX-Refresh": "true"})
        set_cookie(response, request, LANGUAGE_COOKIE, patch["language"], PREFERENCE_COOKIE_AGE)
        return response
    toast = ctx._("The current project was changed.") if "project" in patch else ctx._("Saved.")
    response = events(ctx, toast=toast, extra={"wb:preferences": patch})
    if "theme" in patch:
        set_cookie(response, request, THEME_COOKIE, patch["theme"], PREFERENCE_COOKIE_AGE)
    return response


@router.post("/preferences/reset")
async def reset_preferences(request: Request, ctx: LoggedIn) -> Response:
    await _save(ctx, dict(RESET))
    response = Response(status_code=200, headers={"HX-Refresh": "true"})
    clear_cookie(response, request, LANGUAGE_COOKIE)
    clear_cookie(response, request, THEME_COOKIE)
    return response
