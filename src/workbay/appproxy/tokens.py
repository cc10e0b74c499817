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


# --- Model-service tokens (docs/serving.md, "Tokens") -------------------------------------------
# Requests to a non-public service carry ``Authorization: BackendAI <token>``.  The token is a JWT
# signed with a key of its own (derived from the app-proxy secret, so a circuit token is never a
# service token), naming the service (``sid``) and its id (``jti``, the row in endpoint_tokens: the
# manager tells the proxy which ids are revoked).
SERVICE_TOKEN_USE = "service"


def _service_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"workbay-service-token", hashlib.sha256).digest()


def issue_service_token(secret: str, service_id: str, token_id: str, expires_at: float) -> str:
    claims = {"sid": service_id, "jti": token_id, "use": SERVICE_TOKEN_USE, "exp": int(expires_at),
              "iat": int(time.time())}
    return jwt.encode(claims, _service_key(secret), algorithm=ALGORITHM)


def verify_service_token(secret: str, token: str, service_id: str, revoked: frozenset[str] | set[str] = frozenset()
                         ) -> dict:
    """The claims of a valid, unexpired, unrevoked token of this service; TokenError says why not."""
    try:
        claims = jwt.decode(token, _service_key(secret), algorithms=[ALGORITHM],
                            options={"require": ["exp", "sid", "jti"]})
    except jwt.ExpiredSignatureError as e:
        raise TokenError("the token has expired") from e
    except jwt.PyJWTError as e:
        raise TokenError("not a token of this service") from e
    if claims.get("sid") != service_id or claims.get("use") != SERVICE_TOKEN_USE:
        raise TokenError("not a token of this service")
    if claims.get("jti") in revoked:
        raise TokenError("the token has been revoked")
    return claims
