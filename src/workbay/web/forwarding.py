"""What the webserver believes of forwarded headers: ``X-Forwarded-For/-Host/-Proto`` count only
when the peer is one of ``webserver.trusted_proxies`` (default none), so a client cannot claim
another host to pass the CSRF origin check, HTTPS for the cookie flags, or another address for
the manager's login throttling (issue 10, finding 16)."""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import Scope

from workbay.common.forwarded import Network, client_ip, first_value, is_trusted


def _trusted(scope: Scope) -> list[Network]:
    app = scope.get("app")
    web = getattr(getattr(app, "state", None), "web", None)
    return getattr(web, "trusted_proxies", None) or []


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def from_trusted_proxy(scope: Scope) -> bool:
    return is_trusted(_peer(scope), _trusted(scope))


def client_address(conn: HTTPConnection) -> str | None:
    """The browser's address: the peer, or what a trusted proxy says it is."""
    return client_ip(_peer(conn.scope), conn.headers.get("x-forwarded-for"), _trusted(conn.scope))


def request_host(headers: dict[str, str], from_proxy: bool) -> str:
    """The host the client addressed: Host, or (``from_proxy``: the peer is a trusted proxy)
    the proxy's X-Forwarded-Host."""
    forwarded = first_value(headers.get("x-forwarded-host")) if from_proxy else ""
    return (forwarded or headers.get("host", "")).lower()


def request_scheme(conn: HTTPConnection) -> str:
    forwarded = first_value(conn.headers.get("x-forwarded-proto")).lower() if from_trusted_proxy(conn.scope) else ""
    return forwarded or conn.url.scheme
