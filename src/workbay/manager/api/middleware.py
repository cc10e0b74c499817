"""Signature verification (docs/backendai-api.md §1.3) and the per-keypair rate limit."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

from workbay.common import signing
from workbay.common.errors import (
    AuthFailed, BackendError, GenericBadRequest, InvalidAuthParameters, RateLimitExceeded,
)
from workbay.common.http import problem_response
from workbay.common.ratelimit import WINDOW_SECONDS
from workbay.manager.services.access import Actor

log = logging.getLogger(__name__)
ANONYMOUS_LIMIT = 1000


def _client_ip(request: Request) -> str | None:
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[0].strip()
    return request.client.host if request.client else None


def _ip_allowed(ip: str | None, allowed: list[str] | None) -> bool:
    if not allowed:
        return True
    if ip is None:
        return False
    try:
        addr = ipaddress.ip_address(ip)
        return any(addr in ipaddress.ip_network(net, strict=False) for net in allowed)
    except ValueError:
        return False


class AuthMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        state = request.app.state.manager
        limit_headers = {"X-RateLimit-Limit": str(ANONYMOUS_LIMIT),
                         "X-RateLimit-Remaining": str(ANONYMOUS_LIMIT),
                         "X-RateLimit-Window": str(WINDOW_SECONDS)}
        try:
            version = request.headers.get("x-backendai-version")
            if version is not None and version not in signing.SUPPORTED_VERSIONS:
                raise GenericBadRequest("Unsupported API version.", title="Unsupported API version.")
            authz = request.headers.get("authorization")
            if authz:
                actor, rate_limit = await self._verify(request, state, authz, version or "")
                decision = await state.rate_limiter.hit(actor.access_key, rate_limit)
                limit_headers = {"X-RateLimit-Limit": str(decision.limit),
                                 "X-RateLimit-Remaining": str(decision.remaining),
                                 "X-RateLimit-Window": str(WINDOW_SECONDS)}
                if not decision.allowed:
                    raise RateLimitExceeded(headers={**limit_headers, "Retry-After": "60"})
                request.state.actor = actor
                await state.auth.touch_keypair(actor.access_key)
        except BackendError as err:
            resp = problem_response(err)
            resp.headers.update(limit_headers)
            return resp
        response = await call_next(request)
        response.headers.update(limit_headers)
        return response

    async def _verify(self, request: Request, state, authz: str, version: str) -> tuple[Actor, int]:
        date_header = request.headers.get("date") or request.headers.get("x-backendai-date")
        if not date_header:
            raise InvalidAuthParameters("Date header is required.")
        try:
            date = signing.parse_date(date_header)
        except ValueError as e:
            raise InvalidAuthParameters("Malformed Date header.") from e
        if not signing.within_skew(date):
            raise InvalidAuthParameters("Date/time sync error")
        try:
            hash_name, access_key, sig = signing.parse_authorization(authz)
        except ValueError as e:
            raise InvalidAuthParameters(f"Malformed Authorization header: {e}") from e
        found = await state.auth.resolve_access_key(access_key)
        if found is None:
            raise AuthFailed("Access key not found")
        keypair, user = found
        if user.status != "active":
            raise AuthFailed("Unauthorized access", title="Unauthorized access")
        path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        path_and_query = f"{path}?{query}" if query else path
        host = request.headers.get("host", "")
        ctype = request.headers.get("content-type") or "application/octet-stream"
        expected = signing.signature(keypair.secret_key, request.method, path_and_query, date_header,
                                     host, ctype, version, hash_name)
        if not hmac.compare_digest(expected, sig):
            raise AuthFailed()
        if not _ip_allowed(_client_ip(request), user.allowed_client_ip):
            raise AuthFailed("Not allowed from this IP address.", title="Unauthorized access")
        actor = Actor(user_id=user.uuid, email=user.email, role=user.role,
                      domain_name=user.domain_name, access_key=keypair.access_key)
        return actor, keypair.rate_limit
