"""The webserver: the WebUI (server-rendered pages), login sessions, the ``/server/*`` login API
and the ``/func/*`` proxy that signs requests to the manager with the user's keypair."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workbay import __version__
from workbay.client.sdk import APIError
from workbay.common.config import WorkbayConfig
from workbay.common.errors import GenericForbidden, InternalServerError, URLNotFound
from workbay.common.http import problem_response

from .context import CSRFRejected, NotLoggedIn, PageForbidden, build_page_context
from .cookies import SESSION_COOKIE, clear_cookie
from .csrf import OriginGuard
from .errors import BadGateway
from .rendering import STATIC_DIR
from .responses import api_error_text, error_headers, events, redirect
from .routes import (
    account, auth_pages, credentials, policies, preferences, proxy, server_api, settings, users,
)
from .state import WebState, build_state

log = logging.getLogger(__name__)
API_PREFIXES = ("/server/", "/func", "/healthz")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
     b"base-uri 'self'; form-action 'self'"),
]


class SecurityHeaders:
    """Adds browser hardening headers to every answer (pure ASGI: streams pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def install_page_error_handlers(app: FastAPI) -> None:
    """Errors of page routes become a redirect, a toast or an error page — never a traceback."""

    def _error_page(request: Request, status: int, title: str, message: str) -> Response:
        ctx = request.state.page
        if ctx.is_htmx:
            return events(ctx, toast=f"{title} {message}".strip(), level="danger", status_code=status)
        return ctx.state.renderer.render(request, "pages/error.html", status_code=status,
                                         headers=error_headers(title, message),
                                         error_title=title, error_message=message)

    @app.exception_handler(NotLoggedIn)
    async def _not_logged_in(request: Request, _: NotLoggedIn) -> Response:
        ctx = await build_page_context(request)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = "/login" if request.url.path in ("/", "/login") else f"/login?next={quote(target)}"
        return redirect(ctx, url)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, _: PageForbidden) -> Response:
        ctx = await build_page_context(request)
        return _error_page(request, 403, ctx._("Insufficient privilege."),
                           ctx._("Your role cannot open this page."))

    @app.exception_handler(CSRFRejected)
    async def _csrf(request: Request, _: CSRFRejected) -> Response:
        if not hasattr(request.state, "page"):
            return problem_response(GenericForbidden("Missing or invalid CSRF token."))
        ctx = request.state.page
        return _error_page(request, 403, ctx._("The form has expired."),
                           ctx._("Reload the page and try again."))

    @app.exception_handler(APIError)
    async def _api_error(request: Request, err: APIError) -> Response:
        if _is_api(request):  # the manager's own answer
            return JSONResponse(err.body, status_code=err.status, media_type="application/problem+json")
        ctx = await build_page_context(request)
        if err.status == 401 and ctx.session is not None:
            # the keypair was deactivated or the user disabled: the login is no longer valid
            await ctx.state.logins.logout(ctx.session)
            response = redirect(ctx, "/login")
            clear_cookie(response, request, SESSION_COOKIE)
            return response
        title, message = api_error_text(err)
        return _error_page(request, err.status, title, message)

    @app.exception_handler(httpx.TransportError)
    async def _unreachable(request: Request, err: httpx.TransportError) -> Response:
        log.warning("manager unreachable: %s", err)
        if _is_api(request):
            return problem_response(BadGateway())
        ctx = await build_page_context(request)
        return _error_page(request, 502, ctx._("The manager is unreachable."),
                           ctx._("Try again in a moment."))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if _is_api(request):
            return problem_response(InternalServerError())
        ctx = await build_page_context(request)
        return _error_page(request, 500, ctx._("Something went wrong."),
                           ctx._("The error was logged. Try again, or tell your administrator."))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or exc.status_code != 404:
            err = URLNotFound() if exc.status_code == 404 else GenericForbidden(str(exc.detail))
            if exc.status_code not in (403, 404):
                return JSONResponse({"type": "about:blank", "title": str(exc.detail)},
                                    status_code=exc.status_code)
            return problem_response(err)
        ctx = await build_page_context(request)
        return _error_page(request, 404, ctx._("Page not found."),
                           ctx._("The address does not name a page of this console."))


def create_app(config: WorkbayConfig, *, manager_transport: httpx.AsyncBaseTransport | None = None
               ) -> FastAPI:
    """The webserver app.  ``manager_transport`` replaces the HTTP hop to the manager (tests)."""
    web: WebState = build_state(config, manager_transport)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        web.started = True
        try:
            yield
        finally:
            web.started = False
            await web.close()

    app = FastAPI(title="Workbay webserver", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = web
    install_page_error_handlers(app)
    app.add_middleware(OriginGuard)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (server_api, proxy, auth_pages, account, preferences, settings, users, credentials,
                   policies):
        app.include_router(module.router)
    return app
