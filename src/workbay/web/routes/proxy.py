"""``/func/{path}``: any method, forwarded to the manager and signed with the session's keypair.

The body, query string and X-BackendAI-Version go through unchanged; the answer (SSE included)
streams back as it arrives.  Without a login only the anonymous ``GET /func/`` is served.
WebSockets (the stream API under ``/func/stream/``) are relayed by ``proxy_ws``."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection

from workbay.common.errors import GenericForbidden
from workbay.common.http import problem_response

from ..context import current_session, web_state
from ..errors import BadGateway, unauthorized

router = APIRouter(tags=["webserver"])
PREFIX = "/func"
FORWARDED_REQUEST_HEADERS = ("content-type", "content-length", "accept", "accept-encoding",
                             "x-backendai-version", "x-backendai-domain", "range", "if-range")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade"})
# Logging in goes through /server/login, where failed attempts are counted.
REFUSED_PATHS = frozenset({"/auth/authorize"})


def manager_path(conn: HTTPConnection) -> str:
    """The manager's path and query for a request (or WebSocket handshake) under ``/func``, as
    the client wrote them (the signature covers the exact bytes)."""
    raw = conn.scope.get("raw_path") or conn.url.path.encode()
    path = raw.decode("latin-1")[len(PREFIX):] or "/"
    query = conn.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def forwarded_headers(conn: HTTPConnection, names: tuple[str, ...] = FORWARDED_REQUEST_HEADERS
                      ) -> dict[str, str]:
    headers = {name: conn.headers[name] for name in names if name in conn.headers}
    if conn.client:
        headers["x-forwarded-for"] = conn.client.host
    return headers


@router.api_route(PREFIX, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                  include_in_schema=False)
@router.api_route(PREFIX + "/{path:path}", include_in_schema=False,
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def forward(request: Request) -> Response:
    st = web_state(request)
    target = manager_path(request)
    anonymous_root = request.method == "GET" and target.split("?")[0] == "/"
    session = None if anonymous_root else await current_session(request)
    if session is None and not anonymous_root:
        return problem_response(unauthorized())
    if target.split("?")[0].rstrip("/") in REFUSED_PATHS:
        return problem_response(GenericForbidden("Log in through /server/login."))
    has_body = request.method not in ("GET", "HEAD") or int(request.headers.get("content-length") or 0) > 0
    try:
        upstream = await st.gateway.forward(session, request.method, target, forwarded_headers(request),
                                            request.stream() if has_body else None)
    except httpx.TransportError:
        return problem_response(BadGateway())
    headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
    return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=headers,
                             background=BackgroundTask(upstream.aclose))
