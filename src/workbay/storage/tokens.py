"""Short-lived HS256 JWTs for the client-facing file API, signed with the storage secret."""

from __future__ import annotations

import time
from typing import Any

import jwt

from .errors import InvalidToken, TokenScopeMismatch

OPS = ("upload", "download", "files")
ALGORITHM = "HS256"
# What a ``files`` token may do: one of these, named in its ``action`` claim (a list allows
# several).  The manager issues one token per call, for that call's action, so a token that
# leaks (a log line, a proxy's history) cannot be turned into another operation.
FILES_ACTIONS = ("list", "mkdir", "rename", "move", "delete")
# The most seconds a ``files`` token lives, whatever the configured transfer ttl: the manager
# uses it at once, for one request.  Transfers (upload, download) keep ``storage.token_ttl``: a
# resumable upload or a ranged download comes back to its token for a long time, and is bound to
# one folder and one path anyway.
FILES_TOKEN_TTL = 60


def files_action(endpoint: str) -> str:
    """The action of a client-API files endpoint: ``/files`` lists, ``/files/<action>``."""
    tail = endpoint.rstrip("/").rsplit("/", 1)[-1]
    action = "list" if tail == "files" else tail
    if action not in FILES_ACTIONS:
        raise ValueError(f"unknown files endpoint {endpoint!r}")
    return action


def issue_token(secret: str, op: str, volume: str, vfid: str, relpath: str, ttl: float,
                **extra: Any) -> str:
    """A token for one operation on one folder. ``extra`` adds claims (``size`` for uploads,
    ``session``, ``relpaths`` for multi-file archives)."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}")
    if not secret:
        raise ValueError("the storage secret is empty")
    if op == "files":
        ttl = min(ttl, FILES_TOKEN_TTL)
        action = extra.setdefault("action", "list")  # least privilege unless told
        actions = action if isinstance(action, list) else [action]
        if not actions or any(a not in FILES_ACTIONS for a in actions):
            raise ValueError(f"unknown files action {action!r}")
    claims = {**extra, "op": op, "volume": volume, "vfid": vfid, "relpath": relpath,
              "exp": int(time.time() + ttl)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (how the manager sends it)."""
    scheme, _, value = (header or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def check_token(secret: str, token: str) -> None:
    """InvalidToken unless ``token`` is genuine and unexpired (any op): what is checked before a
    request's body is read."""
    _decode(secret, token)


def _decode(secret: str, token: str) -> dict[str, Any]:
    if not secret:  # never accept tokens signed with an empty key
        raise InvalidToken("The storage-proxy has no secret configured.")
    try:
        return jwt.decode(token, secret, algorithms=[ALGORITHM],
                          options={"require": ["exp", "op", "volume", "vfid", "relpath"]})
    except jwt.ExpiredSignatureError as e:
        raise InvalidToken("The token has expired.") from e
    except jwt.PyJWTError as e:
        raise InvalidToken("The token is invalid.") from e


def verify_token(secret: str, token: str | None, op: str, action: str | None = None) -> dict[str, Any]:
    """The token's claims if it is genuine, unexpired and made for ``op`` (and, for ``files``,
    for ``action``)."""
    if not token or not isinstance(token, str):
        raise InvalidToken("A token is required.")
    claims = _decode(secret, token)
    if claims.get("op") != op:
        raise TokenScopeMismatch(f"This token is for {claims.get('op')!r}, not {op!r}.")
    for key in ("volume", "vfid", "relpath"):
        if not isinstance(claims.get(key), str):
            raise InvalidToken(f"The token's {key} claim is invalid.")
    if op == "files":
        allowed = claims.get("action")
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if action not in allowed:
            raise TokenScopeMismatch(f"This token does not allow {action!r}.")
    if op == "upload" and (not isinstance(claims.get("size"), int) or claims["size"] < 0):
        raise InvalidToken("An upload token needs a non-negative integer size.")
    return claims
