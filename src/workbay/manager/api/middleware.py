"""Signature verification (docs/backendai-api.md §1.3) and the per-keypair rate limit."""

from __future__ import annotations

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
# Served without authentication, even when the request is signed (the signature is not looked at).
UNPROTECTED_PATHS = frozenset({
    "/", "/manager/announcement", "/auth/authorize", "/auth/signup",
    "/auth/update-password-no-auth", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect",
    "/redoc",
})
# Peers whose X-Forwarded-For is believed (the webserver's /func proxy in the embedded default).
DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")


def _networks(specs) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(s, strict=False) for s in specs]


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded_for: str | None, trusted: list) -> str | None:
    """The client's address: the peer, unless the peer is a trusted proxy, in which case the
    right-most X-Forwarded-For entry that is not itself a trusted proxy."""
    if peer is None:
        return None
    addr = _parse_ip(peer)
    if addr is None or not forwarded_for or not any(addr in net for net in trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        hop_addr = _parse_ip(hop)
        if hop_addr is None:
            return hop  # garbage from an untrusted hop: matches no allowed network
        if not any(hop_addr in net for net in trusted):
            return hop
    return hops[0] if hops else peer


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
            if authz and request.url.path not in UNPROTECTED_PATHS:
                actor, rate_limit = await self._verify(request, state, authz, version)
                decision = await state.rate_limiter.hit(actor.access_key, rate_limit)
                limit_headers = {"X-RateLimit-Limit": str(decision.limit),
                                 "X-RateLimit-Remaining": str(decision.remaining),
                                 "X-RateLimit-Window": str(WINDOW_SECONDS)}
                if not decision.allowed:
                    raise RateLimitExceeded(
                        f"At most {decision.limit} requests per {WINDOW_SECONDS // 60} minutes; "
                        f"retry in {decision.retry_after} s.",
                        headers={**limit_headers, "Retry-After": str(decision.retry_after)})
                request.state.actor = actor
                await state.auth.touch_keypair(actor.access_key)
        except BackendError as err:
            resp = problem_response(err)
            resp.headers.update(limit_headers)
            return resp
        response = await call_next(request)
        response.headers.update(limit_headers)
        return response

    async def _verify(self, request: Request, state, authz: str, version: str | None
                      ) -> tuple[Actor, int]:
        date_header = request.headers.get("date") or request.headers.get("x-backendai-date")
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
        path = request.scope.get("raw_path") or request.url.path.encode()
        path = path.decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        path_and_query = f"{path}?{query}" if query else path
        host = request.headers.get("host", "")
        ctype = request.headers.get("content-type") or "application/octet-stream"
        expected = signing.signature(keypair.secret_key, request.method, path_and_query, date_header,
                                     host, ctype, version, hash_name)
        if not signing.signatures_match(expected, sig):
            raise AuthFailed("Signature mismatch")
        # Only a correctly signed request learns anything about the account behind the key.
        if user.status != "active":
            raise AuthFailed("Unauthorized access", title="Unauthorized access")
        trusted = _networks(getattr(state.ctx.config.manager, "trusted_proxies", DEFAULT_TRUSTED_PROXIES))
        ip = client_ip(request.client.host if request.client else None,
                       request.headers.get("x-forwarded-for"), trusted)
        if not ip_allowed(ip, user.allowed_client_ip):
            raise AuthFailed(f"Requests from {ip} are not allowed for this account.",
                             title="Unauthorized access")
        actor = Actor(user_id=user.uuid, email=user.email, role=user.role,
                      domain_name=user.domain_name, access_key=keypair.access_key)
        return actor, keypair.rate_limit
