"""Signature verification (docs/backendai-api.md §1.3) and the per-keypair rate limit."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Match

from workbay.common import signing
from workbay.common.errors import (
    AuthFailed,
    BackendError,
    GenericBadRequest,
    InvalidAuthParameters,
    RateLimitExceeded,
)
from workbay.common.forwarded import client_ip, networks, parse_ip
from workbay.common.http import problem_response
from workbay.common.ratelimit import WINDOW_SECONDS
from workbay.manager.services.access import Actor
from workbay.manager.services.agent_registry import check_cluster_secret
from workbay.manager.services.auth import LOGIN_EPOCH_HEADER, LOGIN_REVOKED_HEADER, login_epoch

log = logging.getLogger(__name__)
ANONYMOUS_LIMIT = 1000
# Served without authentication, even when the request is signed (the signature is not looked at).
UNPROTECTED_PATHS = frozenset({
    "/", "/manager/announcement", "/auth/authorize", "/auth/signup",
    "/auth/update-password-no-auth", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect",
    "/redoc",
})
# Bodies of the public paths (login, sign-up): anyone may send them, so they are kept small.
PUBLIC_MAX_BODY = 64 * 1024
# Peers whose X-Forwarded-For is believed (the webserver's /func proxy in the embedded default).
DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")


_networks = networks  # the names tests and callers use
_parse_ip = parse_ip


def ip_allowed(ip: str | None, allowed: list[str] | None) -> bool:
    if not allowed:
        return True
    addr = _parse_ip(ip) if ip else None
    if addr is None:
        return False
    for net in allowed:
        try:
            if addr in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def _limit_headers(limit: int, remaining: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Window": str(WINDOW_SECONDS)}


@dataclass
class Admission:
    """Who a request (HTTP or WebSocket handshake) comes from, and the rate-limit headers to send."""
    actor: Actor | None
    limit_headers: dict[str, str]


async def admit(conn: HTTPConnection, state) -> Admission:
    """Verify a request's signature, the account's IP allow-list and the keypair's rate limit.

    One check for HTTP requests (``AuthMiddleware``) and WebSocket handshakes (the /stream routes,
    which Starlette's HTTP middleware never sees).  Unsigned requests are anonymous
    (``actor`` None); a bad signature raises a ``BackendError`` that carries the rate-limit
    headers known by then."""
    limit_headers = _limit_headers(ANONYMOUS_LIMIT, ANONYMOUS_LIMIT)
    try:
        version = conn.headers.get("x-backendai-version")
        if version is not None and version not in signing.SUPPORTED_VERSIONS:
            raise GenericBadRequest("Unsupported API version.", title="Unsupported API version.")
        authz = conn.headers.get("authorization")
        if not authz or conn.url.path in UNPROTECTED_PATHS:
            return Admission(None, limit_headers)
        actor, rate_limit = await _verify(conn, state, authz, version)
        decision = await state.rate_limiter.hit(actor.access_key, rate_limit)
        limit_headers = _limit_headers(decision.limit, decision.remaining)
        if not decision.allowed:
            raise RateLimitExceeded(
                f"At most {decision.limit} requests per {WINDOW_SECONDS // 60} minutes; "
                f"retry in {decision.retry_after} s.",
                headers={**limit_headers, "Retry-After": str(decision.retry_after)})
        await state.auth.touch_keypair(actor.access_key)
        return Admission(actor, limit_headers)
    except BackendError as err:
        err.headers = {**limit_headers, **err.headers}
        raise


INTERNAL_PREFIX = "/internal/agents/"


def anonymous_refusal(conn: HTTPConnection, state) -> BackendError | None:
    """Why an unsigned request may not go on (None: it may): only the public paths take one, and
    the agents' internal API takes the cluster secret instead."""
    path = conn.url.path
    if path in UNPROTECTED_PATHS:
        return None
    if path.startswith(INTERNAL_PREFIX):
        try:
            check_cluster_secret(state.ctx.config.secrets.cluster, conn.headers.get("x-workbay-secret"))
        except BackendError as err:
            return err
        return None
    if not _routed(conn):
        return None  # the router answers 404 (and reads no body)
    return AuthFailed("Unauthorized access", title="Unauthorized access")


def _routed(conn: HTTPConnection) -> bool:
    app = conn.scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", None)
    if routes is None:
        return True
    return any(route.matches(conn.scope)[0] is not Match.NONE for route in routes)


CLIENT_CLOSED_REQUEST = 499  # nobody reads it: the client is gone


class AuthMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            admission = await admit(request, request.app.state.manager)
        except BackendError as err:
            return problem_response(err)
        if admission.actor is not None:
            request.state.actor = admission.actor
        else:
            # Refused before the body is read at all: strangers cannot make us buffer or parse.
            refusal = anonymous_refusal(request, request.app.state.manager)
            if refusal is not None:
                refusal.headers = {**admission.limit_headers, **refusal.headers}
                return problem_response(refusal)
        try:
            response = await call_next(request)
        except RuntimeError as e:
            # Starlette's answer when the client left before the route answered: nothing to log.
            if str(e) == "No response returned." and await request.is_disconnected():
                return Response(status_code=CLIENT_CLOSED_REQUEST)
            raise
        response.headers.update(admission.limit_headers)
        return response


async def _verify(conn: HTTPConnection, state, authz: str, version: str | None) -> tuple[Actor, int]:
    date_header = conn.headers.get("date") or conn.headers.get("x-backendai-date")
    if not date_header:
        raise InvalidAuthParameters("Date header is required.")
    try:
        date = signing.parse_date(date_header)
    except ValueError as e:
        raise InvalidAuthParameters("Malformed Date header.") from e
    if not signing.within_skew(date):
        raise InvalidAuthParameters("Date/time sync error")
    if version is None:
        raise InvalidAuthParameters("API version missing in request headers")
    try:
        hash_name, access_key, sig = signing.parse_authorization(authz)
    except ValueError as e:
        raise InvalidAuthParameters(f"Malformed Authorization header: {e}") from e
    found = await state.auth.resolve_access_key(access_key)
    if found is None:
        raise AuthFailed("Access key not found")
    keypair, user = found
    path = conn.scope.get("raw_path") or conn.url.path.encode()
    path = path.decode("latin-1")
    query = conn.scope.get("query_string", b"").decode("latin-1")
    path_and_query = f"{path}?{query}" if query else path
    host = conn.headers.get("host", "")
    # A WebSocket handshake is a GET; clients sign it (and SSE) as application/octet-stream
    # without sending a Content-Type.
    method = conn.scope.get("method", "GET")
    ctype = conn.headers.get("content-type") or "application/octet-stream"
    expected = signing.signature(keypair.secret_key, method, path_and_query, date_header,
                                 host, ctype, version, hash_name)
    if not signing.signatures_match(expected, sig):
        raise AuthFailed("Signature mismatch")
    # Only a correctly signed request learns anything about the account behind the key.
    if user.status != "active":
        raise AuthFailed("Unauthorized access", title="Unauthorized access")
    # A webserver login names the password it was made with; a changed password ends it.
    epoch = conn.headers.get(LOGIN_EPOCH_HEADER)
    if epoch is not None and not signing.signatures_match(login_epoch(user.password), epoch):
        raise AuthFailed("The password was changed since this login; log in again.",
                         title="Login expired.", headers={LOGIN_REVOKED_HEADER: "1"})
    trusted = _networks(getattr(state.ctx.config.manager, "trusted_proxies", DEFAULT_TRUSTED_PROXIES))
    ip = client_ip(conn.client.host if conn.client else None,
                   conn.headers.get("x-forwarded-for"), trusted)
    if not ip_allowed(ip, user.allowed_client_ip):
        raise AuthFailed(f"Requests from {ip} are not allowed for this account.",
                         title="Unauthorized access")
    actor = Actor(user_id=user.uuid, email=user.email, role=user.role,
                  domain_name=user.domain_name, access_key=keypair.access_key)
    return actor, keypair.rate_limit
