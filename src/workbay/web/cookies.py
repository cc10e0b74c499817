"""The login cookie: a random session id signed with the session secret; HttpOnly, SameSite=Lax,
Secure when the request came over HTTPS (directly or through a trusted proxy that says so)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from starlette.requests import HTTPConnection
from starlette.responses import Response

from .forwarding import request_scheme

SESSION_COOKIE = "workbay_session"
ANON_CSRF_COOKIE = "workbay_csrf"   # double-submit token of the login and sign-up forms
LANGUAGE_COOKIE = "workbay_lang"    # the login page's language before anyone logs in
THEME_COOKIE = "workbay_theme"      # the login page's theme
PREFERENCE_COOKIE_AGE = 365 * 24 * 3600


def is_https(conn: HTTPConnection) -> bool:
    """X-Forwarded-Proto counts only from a trusted proxy (``webserver.trusted_proxies``)."""
    return request_scheme(conn) in ("https", "wss")


class CookieSigner:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("workbay-web-cookie:" + secret).encode()).digest()

    def _mac(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    def sign(self, value: str) -> str:
        return f"{value}.{self._mac(value)}"

    def unsign(self, signed: str | None) -> str | None:
        if not signed or "." not in signed:
            return None
        value, _, mac = signed.rpartition(".")
        return value if hmac.compare_digest(mac, self._mac(value)) else None


def set_cookie(response: Response, conn: HTTPConnection, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=is_https(conn))


def clear_cookie(response: Response, conn: HTTPConnection, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_https(conn))
