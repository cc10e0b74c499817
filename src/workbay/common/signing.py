"""Backend.AI request signing (HMAC over a seven-line string-to-sign, docs/backendai-api.md §1.2).

The hash named by ``signMethod=HMAC-<HASH>`` is used everywhere: for the body hash line, for both
steps of the key chain and for the final HMAC (that is what the official client and server do).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

SUPPORTED_VERSIONS = frozenset({
    "v4.20181215", "v4.20190115", "v4.20190315", "v4.20190615", "v5.20191215", "v6.20200815",
    "v6.20210815", "v6.20220315", "v6.20220615", "v6.20230315", "v7.20230615",
})
MAX_CLOCK_SKEW_SECONDS = 15 * 60
# Every hashlib-guaranteed algorithm with a fixed-size digest (SHAKE needs a length: not usable).
SIGN_HASHES = frozenset(h for h in hashlib.algorithms_guaranteed if not h.startswith("shake_"))


def body_hash(hash_name: str = "sha256") -> str:
    """Hex hash of the empty body: the body is never hashed for API versions >= v4.20181215."""
    return hashlib.new(hash_name, b"").hexdigest()


EMPTY_BODY_HASH = body_hash("sha256")


def parse_date(value: str) -> datetime:
    """Parse the Date header: ISO 8601 (what the SDK sends) or RFC 1123; naive means UTC.
    Returns an aware UTC datetime; raises ValueError for anything else."""
    value = value.strip()
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        try:
            dt = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError) as e:
            raise ValueError(f"unparsable date: {value!r}") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError as e:  # e.g. 0001-01-01T00:00:00+01:00
        raise ValueError(f"date out of range: {value!r}") from e


def bare_mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def string_to_sign(method: str, path_and_query: str, date_header: str, host: str,
                   content_type: str, api_version: str, hash_name: str = "sha256") -> str:
    return "\n".join([
        method.upper(),
        path_and_query,
        date_header,
        f"host:{host}",
        f"content-type:{bare_mime(content_type)}",
        f"x-backendai-version:{api_version}",
        body_hash(hash_name),
    ])


def derive_key(secret_key: str, date: datetime, host: str, hash_name: str = "sha256") -> bytes:
    """k1 = HMAC(secret, UTC date as YYYYMMDD); k2 = HMAC(k1, host)."""
    day = date.astimezone(UTC).strftime("%Y%m%d")
    k1 = hmac.new(secret_key.encode(), day.encode(), hash_name).digest()
    return hmac.new(k1, host.encode(), hash_name).digest()


def signature(secret_key: str, method: str, path_and_query: str, date_header: str, host: str,
              content_type: str, api_version: str, hash_name: str = "sha256") -> str:
    if hash_name not in SIGN_HASHES:
        raise ValueError(f"unsupported hash: {hash_name}")
    key = derive_key(secret_key, parse_date(date_header), host, hash_name)
    sts = string_to_sign(method, path_and_query, date_header, host, content_type, api_version,
                         hash_name)
    return hmac.new(key, sts.encode(), hash_name).hexdigest()


def signatures_match(expected: str, given: str) -> bool:
    """Constant-time comparison that never raises (header values may hold any latin-1 text)."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def sign_headers(access_key: str, secret_key: str, method: str, path_and_query: str, host: str,
                 content_type: str, api_version: str, now: datetime | None = None,
                 hash_name: str = "sha256") -> dict[str, str]:
    """Headers a client sends for a signed request."""
    date_header = (now or datetime.now(UTC)).isoformat()
    sig = signature(secret_key, method, path_and_query, date_header, host, content_type,
                    api_version, hash_name)
    return {
        "Date": date_header,
        "X-BackendAI-Version": api_version,
        "Content-Type": content_type,
        "Authorization": f"BackendAI signMethod=HMAC-{hash_name.upper()}, "
                         f"credential={access_key}:{sig}",
    }


def parse_authorization(value: str) -> tuple[str, str, str]:
    """Return (hash_name, access_key, signature) or raise ValueError.

    ``<scheme> key=value, key=value``: scheme ``BackendAI`` (legacy ``Sorna``), parameter names
    case-insensitive, ``signMethod=HMAC-<hash>`` and ``credential=<access key>:<signature>``.
    """
    scheme, _, rest = value.strip().partition(" ")
    if scheme not in ("BackendAI", "Sorna"):
        raise ValueError("unknown authorization scheme")
    if not rest.strip():
        raise ValueError("missing authorization parameters")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or not key.strip():
            raise ValueError("malformed authorization parameter")
        fields[key.strip().lower()] = val.strip()
    mac, _, hash_name = fields.get("signmethod", "").lower().partition("-")
    if mac != "hmac" or hash_name not in SIGN_HASHES:
        raise ValueError("unsupported signMethod")
    access_key, sep, sig = fields.get("credential", "").partition(":")
    if not sep or not access_key or not sig:
        raise ValueError("malformed credential")
    return hash_name, access_key, sig


def within_skew(date: datetime, now: datetime | None = None) -> bool:
    """True when ``date`` is at most 15 minutes before or after ``now`` (boundaries included)."""
    now = now or datetime.now(UTC)
    return abs((now - date).total_seconds()) <= MAX_CLOCK_SKEW_SECONDS
