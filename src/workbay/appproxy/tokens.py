"""Tokens of the app-proxy: the manager signs short-lived links that open a circuit (and longer
ones for TCP tunnels); the proxy turns an opening link into a cookie scoped to that circuit."""

from __future__ import annotations

import hashlib
import hmac
import time

import jwt

ALGORITHM = "HS256"


class TokenError(Exception):
    pass


def issue(secret: str, circuit_id: str, user_id: str, purpose: str, ttl: float) -> str:
    claims = {"cid": circuit_id, "uid": user_id, "use": purpose, "exp": int(time.time() + ttl)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str, circuit_id: str, purpose: str) -> str:
    """The user id the token was issued to, if it is valid for this circuit and purpose."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "cid", "uid"]})
    except jwt.PyJWTError as e:
        raise TokenError(str(e)) from e
    if claims.get("cid") != circuit_id or claims.get("use") != purpose:
        raise TokenError("the token is for another circuit")
    return str(claims["uid"])


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
