"""Per-request context: the login session, language, theme, CSRF token and, for full pages, the
logged-in user as the manager sees them.  FastAPI dependencies for the page routes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request

from . import nav
from .cookies import ANON_CSRF_COOKIE, LANGUAGE_COOKIE, SESSION_COOKIE, THEME_COOKIE
from .csrf import UNSAFE_METHODS, submitted_token, tokens_match
from .i18n import DEFAULT_LANGUAGE, LANGUAGES, Translator, negotiate
from .sessions import LoginSession
from .state import WebState
from .tables import url_with

THEMES = ("light", "dark")


class NotLoggedIn(Exception):
    """Raised by page routes that need a login; answered with a redirect to /login."""


class PageForbidden(Exception):
    """The logged-in role may not see this page."""


class CSRFRejected(Exception):
    """A WebUI form or htmx request without the right CSRF token."""


def web_state(request: Request) -> WebState:
    return request.app.state.web


async def current_session(request: Request) -> LoginSession | None:
    if hasattr(request.state, "login_session"):
        return request.state.login_session
    st = web_state(request)
    session_id = st.signer.unsign(request.cookies.get(SESSION_COOKIE))
    session = await st.sessions.get(session_id) if session_id else None
    request.state.login_session = session
    return session


@dataclass
class PageContext:
    request: Request
    state: WebState
    session: LoginSession | None
    translator: Translator
    theme: str
    csrf_token: str
    me: dict[str, Any] | None = None
    section: str = ""
    pending_cookies: list[tuple[str, str, int | None]] = field(default_factory=list)

    @property
    def language(self) -> str:
        return self.translator.language

    def _(self, message: str, **values: Any) -> str:
        return self.translator.gettext(message, **values)

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    def template_context(self) -> dict[str, Any]:
        web = self.state.config.webserver
        role = self.session.role if self.session else ""
        hidden = frozenset() if web.agent_summary_enabled else frozenset({"agent-summary"})
        return {
            "_": self.translator.gettext, "lang": self.language, "theme": self.theme,
            "csrf_token": self.csrf_token, "session": self.session, "me": self.me,
            "section": self.section, "request": self.request,
            "nav_main": nav.items_for(role, admin_section=False, hidden=hidden),
            "nav_admin": nav.items_for(role, admin_section=True, hidden=hidden),
            "agent_summary_enabled": web.agent_summary_enabled,
            "help_url": nav.guide_url(web.guide_url, self.section, self.language),
            "signup_enabled": web.signup_enabled, "manager_endpoint": str(self.request.base_url).rstrip("/"),
            "compact_sidebar": bool(self.preferences.get("compact_sidebar")),
            "url_with": partial(url_with, self.request),
        }

    @property
    def preferences(self) -> dict[str, Any]:
        if self.me is not None:
            return self.me.get("preferences") or {}
        return self.session.preferences if self.session else {}


def _language(request: Request, session: LoginSession | None) -> str:
    chosen = ((session.preferences.get("language") if session else None)
              or request.cookies.get(LANGUAGE_COOKIE))
    return chosen if chosen in LANGUAGES else negotiate(request.headers.get("accept-language"))


def _translator(st: WebState, request: Request, session: LoginSession | None) -> Translator:
    return st.translators.get(_language(request, session), st.translators[DEFAULT_LANGUAGE])


def _theme(request: Request, session: LoginSession | None) -> str:
    chosen = ((session.preferences.get("theme") if session else None)
              or request.cookies.get(THEME_COOKIE))
    return chosen if chosen in THEMES else "light"


async def build_page_context(request: Request) -> PageContext:
    """Context for any page, logged in or not (no CSRF check: error pages use it too)."""
    if hasattr(request.state, "page"):
        return request.state.page
    st = web_state(request)
    session = await current_session(request)
    ctx = PageContext(request, st, session, _translator(st, request, session), _theme(request, session), "")
    if session is not None:
        ctx.csrf_token = session.csrf_token
    else:
        token = request.cookies.get(ANON_CSRF_COOKIE)
        if not token:
            token = secrets.token_urlsafe(32)
            ctx.pending_cookies.append((ANON_CSRF_COOKIE, token, None))
        ctx.csrf_token = token
    request.state.page = ctx
    return ctx


async def page_context(request: Request) -> PageContext:
    """The dependency of every page route: the context, and the CSRF token check on writes."""
    ctx = await build_page_context(request)
    await _check_csrf(request, ctx)
    return ctx


async def _check_csrf(request: Request, ctx: PageContext) -> None:
    if request.method in UNSAFE_METHODS and not tokens_match(ctx.csrf_token, await submitted_token(request)):
        raise CSRFRejected()


async def login_required(ctx: PageContext = Depends(page_context)) -> PageContext:
    if ctx.session is None:
        raise NotLoggedIn()
    return ctx


async def with_user(ctx: PageContext = Depends(login_required)) -> PageContext:
    """A full page of the shell: load the user (name, projects, preferences) from the manager."""
    async with ctx.state.gateway.client(ctx.session) as api:
        ctx.me = await api.get("/user/me")
    prefs = ctx.me.get("preferences") or {}
    session = ctx.session
    if session is not None and (prefs != session.preferences or ctx.me.get("role") != session.role):
        # changed elsewhere (another browser, the API): follow the manager
        session.preferences, session.role = dict(prefs), ctx.me.get("role", session.role)
        await ctx.state.sessions.save(session)
        ctx.translator = _translator(ctx.state, ctx.request, session)
        ctx.theme = _theme(ctx.request, session)
    return ctx


async def admin_required(ctx: PageContext = Depends(login_required)) -> PageContext:
    if ctx.session is None or not ctx.session.is_admin:
        raise PageForbidden()
    return ctx


async def admin_page(ctx: PageContext = Depends(admin_required)) -> PageContext:
    return await with_user(ctx)


# What a route asks for: ``ctx: Admin`` …
AnyVisitor = Annotated[PageContext, Depends(page_context)]
LoggedIn = Annotated[PageContext, Depends(login_required)]
UserPage = Annotated[PageContext, Depends(with_user)]
Admin = Annotated[PageContext, Depends(admin_required)]
AdminPage = Annotated[PageContext, Depends(admin_page)]
