"""Tokens of the app-proxy: the manager signs short-lived links that open a circuit (and longer
ones for TCP tunnels); the proxy turns an opening link into a cookie scoped to that circuit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import jwt

ALGORITHM = "HS256"


class TokenError(Exception):
    pass


def issue(secret: str, circuit_id: str, user_id: str, purpose: str, ttl: float) -> str:
    # jti: a name of its own, so that an opening link can be used once (SingleUse)
    claims = {"cid": circuit_id, "uid": user_id, "use": purpose, "exp": int(time.time() + ttl),
              "jti": secrets.token_urlsafe(12)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_claims(secret: str, token: str, circuit_id: str, purpose: str) -> dict:
    """The token's claims, if it is valid for this circuit and purpose."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "cid", "uid"]})
    except jwt.PyJWTError as e:
        raise TokenError(str(e)) from e
    if claims.get("cid") != circuit_id or claims.get("use") != purpose:
        raise TokenError("the token is for another circuit")
    return claims


def verify(secret: str, token: str, circuit_id: str, purpose: str) -> str:
    """The user id the token was issued to, if it is valid for this circuit and purpose."""
    return str(verify_claims(secret, token, circuit_id, purpose)["uid"])


class SingleUse:
    """Token ids already used, kept until the token expires: an opening link works once (a
    replay within its TTL, from a browser history, a proxy log or a shoulder, is refused).
    In-process: a circuit lives on one app-proxy, and so do its opening links."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self._used: dict[str, float] = {}

    def claim(self, claims: dict) -> bool:
        """True the first time a token (by its ``jti``) is presented before it expires."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return False  # a link without a name cannot be used once: refused
        now = self.clock()
        if len(self._used) > 1024:
            for key in [k for k, exp in self._used.items() if exp < now]:
                del self._used[key]
        if jti in self._used:
            return False
        self._used[jti] = float(claims.get("exp") or now) + 1
        return True


def cookie_name(circuit_id: str) -> str:
    return f"wbapp_{circuit_id}"


def cookie_value(secret: str, circuit_id: str, user_id: str) -> str:
    mac = hmac.new(secret.encode(), f"{circuit_id}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"{user_id}.{mac}"


def cookie_user(secret: str, circuit_id: str, value: str | None) -> str | None:
    if not value or "." not in value:
        return None
    user_id, _, _ = value.rpartition(".")
    expected = cookie_value(secret, circuit_id, user_id)
    return user_id if hmac.compare_digest(expected, value) else None
