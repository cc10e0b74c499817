"""Short-lived HS256 JWTs for the client-facing file API, signed with the storage secret."""

from __future__ import annotations

import time
from typing import Any

import jwt

from .errors import InvalidToken, TokenScopeMismatch

OPS = ("upload", "download", "files")
ALGORITHM = "HS256"


def issue_token(secret: str, op: str, volume: str, vfid: str, relpath: str, ttl: float,
                **extra: Any) -> str:
    """A token for one operation on one folder. ``extra`` adds claims (``size`` for uploads,
    ``session``, ``relpaths`` for multi-file archives)."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}")
    if not secret:
        raise ValueError("the storage secret is empty")
    claims = {**extra, "op": op, "volume": volume, "vfid": vfid, "relpath": relpath,
              "exp": int(time.time() + ttl)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str | None, op: str) -> dict[str, Any]:
    """The token's claims if it is genuine, unexpired and made for ``op``."""
    if not token:
        raise InvalidToken("A token is required.")
    if not secret:  # never accept tokens signed with an empty key
        raise InvalidToken("The storage-proxy has no secret configured.")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["exp", "op", "volume", "vfid", "relpath"]})
    except jwt.ExpiredSignatureError as e:
        raise InvalidToken("The token has expired.") from e
    except jwt.PyJWTError as e:
        raise InvalidToken("The token is invalid.") from e
    if claims.get("op") != op:
        raise TokenScopeMismatch(f"This token is for {claims.get('op')!r}, not {op!r}.")
    for key in ("volume", "vfid", "relpath"):
        if not isinstance(claims.get(key), str):
            raise InvalidToken(f"The token's {key} claim is invalid.")
    if op == "upload" and (not isinstance(claims.get("size"), int) or claims["size"] < 0):
        raise InvalidToken("An upload token needs a non-negative integer size.")
    return claims
