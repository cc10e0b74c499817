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

from workbay.common.errors import GenericForbidden, InvalidAPIParameters
from workbay.common.http import problem_response

from ..context import current_session, web_state
from ..errors import BadGateway, unauthorized
from ..forwarding import client_address
from ..manager import LOGIN_EPOCH_HEADER, LOGIN_REVOKED_HEADER
from ..sessions import LoginSession

router = APIRouter(tags=["webserver"])
PREFIX = "/func"
FORWARDED_REQUEST_HEADERS = ("content-type", "content-length", "accept", "accept-encoding",
                             "x-backendai-version", "x-backendai-domain", "range", "if-range")
INTERNAL_HEADERS = frozenset({LOGIN_EPOCH_HEADER.lower(), LOGIN_REVOKED_HEADER.lower()})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade"})
# Logging in goes through /server/login, where failed attempts are counted.
REFUSED_PATHS = frozenset({"/auth/authorize"})
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
HEX = frozenset(b"0123456789abcdefABCDEF")


def path_problem(path: str) -> str | None:
    r"""Why a manager path is not in normal form, or None.  Every path has exactly one spelling
    here, so the allow/deny decisions below (and the manager's routing) see what the client
    means: no dot segments, no empty segments (``//``), no backslashes, no control characters
    or spaces, no percent-encoded unreserved characters, ``/`` or ``\`` (issue 10, finding 8)."""
    raw = path.encode("latin-1", "replace")
    if not raw.startswith(b"/"):
        return "The path must start with /."
    if b"\\" in raw:
        return "The path must not contain backslashes."
    if any(c <= 0x20 or c >= 0x7F for c in raw):
        return "The path must not contain spaces or control characters."
    i = raw.find(b"%")
    while i != -1:
        code = raw[i + 1:i + 3]
        if len(code) != 2 or not all(c in HEX for c in code):
            return "The path has a malformed percent-escape."
        char = int(code, 16)
        if char in UNRESERVED or char in b"/\\":
            return "The path percent-encodes a character that must be written as it is."
        i = raw.find(b"%", i + 3)
    segments = raw.split(b"/")[1:]
    if any(seg == b"" for seg in segments[:-1]):
        return "The path must not contain empty segments (//)."
    if any(seg in (b".", b"..") for seg in segments):
        return "The path must not contain . or .. segments."
    return None


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
    client = client_address(conn)  # the peer, or what a trusted proxy says
    if client:
        headers["x-forwarded-for"] = client
    return headers


async def follow_login_epoch(st, session: LoginSession | None, upstream_headers) -> None:
    """The manager's word on the login: a changed password ends other logins (revoked: the
    session is dropped here too); the caller's own change carries this login over."""
    if session is None:
        return
    if upstream_headers.get(LOGIN_REVOKED_HEADER):
        await st.sessions.delete(session.id)
        return
    epoch = upstream_headers.get(LOGIN_EPOCH_HEADER)
    if epoch and epoch != session.login_epoch:
        session.login_epoch = epoch
        await st.sessions.save(session)


@router.api_route(PREFIX, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                  include_in_schema=False)
@router.api_route(PREFIX + "/{path:path}", include_in_schema=False,
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def forward(request: Request) -> Response:
    st = web_state(request)
    target = manager_path(request)
    problem = path_problem(target.split("?")[0])
    if problem is not None:  # before any decision on what the path names
        return problem_response(InvalidAPIParameters(problem, title="Non-normalised path."))
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
    await follow_login_epoch(st, session, upstream.headers)
    headers = {k: v for k, v in upstream.headers.items()
               if k.lower() not in HOP_BY_HOP and k.lower() not in INTERNAL_HEADERS}
    return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=headers,
                             background=BackgroundTask(upstream.aclose))
