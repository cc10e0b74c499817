"""How the webserver answers errors: JSON problem details on the API paths (/server, /func,
/healthz); on pages a redirect to the login, a toast (htmx) or an error page — never a traceback."""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from workbay.client.sdk import APIError
from workbay.common.errors import (
    BackendError,
    GenericForbidden,
    InternalServerError,
    MethodNotAllowed,
    URLNotFound,
)
from workbay.common.http import problem_response

from .context import CSRFRejected, NotLoggedIn, PageForbidden, build_page_context
from .cookies import SESSION_COOKIE, clear_cookie
from .errors import BadGateway
from .responses import api_error_text, error_headers, events, redirect

log = logging.getLogger(__name__)
API_PREFIXES = ("/server/", "/func", "/healthz")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def install_error_handlers(app: FastAPI) -> None:

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
        if exc.status_code == 404 and not _is_api(request):
            ctx = await build_page_context(request)
            return _error_page(request, 404, ctx._("Page not found."),
                               ctx._("The address does not name a page of this console."))
        if exc.status_code == 404:
            return problem_response(URLNotFound())
        if exc.status_code == 405:
            return problem_response(MethodNotAllowed())
        err = BackendError(str(exc.detail))
        err.status = exc.status_code
        return problem_response(err)
