"""Cross-site request forgery defences.

1. Every state-changing request (POST/PUT/PATCH/DELETE) whose Origin — or, without one, Referer —
   names another host is refused.  Clients that send neither (the CLI, the official Backend.AI
   client posting with only the cookie) keep working.
2. The WebUI's own forms and htmx requests also carry a per-session token (header
   ``X-CSRF-Token`` or form field ``csrf_token``); before login, a double-submit cookie.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from workbay.common.errors import PROBLEM_BASE

from .forwarding import from_trusted_proxy, request_host

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_HEADER = "x-csrf-token"
TOKEN_FIELD = "csrf_token"


def _origin_host(headers: dict[str, str]) -> str | None:
    """The host the request says it came from; None when the client said nothing."""
    origin = headers.get("origin")
    if origin is not None:
        return "" if origin.strip() == "null" else urlsplit(origin.strip()).netloc.lower()
    referer = headers.get("referer")
    if referer:
        return urlsplit(referer.strip()).netloc.lower()
    return None


def is_cross_site(headers: dict[str, str], from_proxy: bool = False) -> bool:
    """X-Forwarded-Host counts only when ``from_proxy``: the peer is one of
    ``webserver.trusted_proxies`` (``forwarding.from_trusted_proxy``)."""
    claimed = _origin_host(headers)
    return claimed is not None and claimed != request_host(headers, from_proxy)


class OriginGuard:
    """Pure ASGI middleware (it must not buffer streamed responses such as SSE)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            if is_cross_site(headers, from_trusted_proxy(scope)):
                await _refuse(send)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send) -> None:
    body = json.dumps({"type": PROBLEM_BASE + "generic-forbidden",
                       "title": "Cross-site request refused.",
                       "msg": "The request's Origin does not match this server."}).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def submitted_token(request: Request) -> str:
    token = request.headers.get(TOKEN_HEADER)
    if token:
        return token
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(TOKEN_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def tokens_match(expected: str | None, submitted: str | None) -> bool:
    return bool(expected) and bool(submitted) and hmac.compare_digest(expected, submitted)
