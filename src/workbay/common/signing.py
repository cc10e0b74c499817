"""Backend.AI request signing (HMAC-SHA256 over a seven-line string-to-sign)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

EMPTY_BODY_HASH = hashlib.sha256(b"").hexdigest()
SUPPORTED_VERSIONS = frozenset({
    "v4.20181215", "v4.20190115", "v4.20190315", "v4.20190615", "v5.20191215", "v6.20200815",
    "v6.20210815", "v6.20220315", "v6.20220615", "v6.20230315", "v7.20230615",
})
MAX_CLOCK_SKEW_SECONDS = 15 * 60


def parse_date(value: str) -> datetime:
    """Parse the Date header: ISO 8601 (what the SDK sends) or RFC 1123; naive means UTC."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        try:
            dt = parsedate_to_datetime(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"unparsable date: {value!r}") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def bare_mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def string_to_sign(method: str, path_and_query: str, date_header: str, host: str,
                   content_type: str, api_version: str) -> str:
    return "\n".join([
        method.upper(),
        path_and_query,
        date_header,
        f"host:{host}",
        f"content-type:{bare_mime(content_type)}",
        f"x-backendai-version:{api_version}",
        EMPTY_BODY_HASH,
    ])


def derive_key(secret_key: str, date: datetime, host: str) -> bytes:
    k1 = hmac.new(secret_key.encode(), date.astimezone(timezone.utc).strftime("%Y%m%d").encode(),
                  hashlib.sha256).digest()
    return hmac.new(k1, host.encode(), hashlib.sha256).digest()


def signature(secret_key: str, method: str, path_and_query: str, date_header: str, host: str,
              content_type: str, api_version: str, hash_name: str = "sha256") -> str:
    key = derive_key(secret_key, parse_date(date_header), host)
    sts = string_to_sign(method, path_and_query, date_header, host, content_type, api_version)
    return hmac.new(key, sts.encode(), getattr(hashlib, hash_name)).hexdigest()


def sign_headers(access_key: str, secret_key: str, method: str, path_and_query: str, host: str,
                 content_type: str, api_version: str, now: datetime | None = None) -> dict[str, str]:
    """Headers a client sends for a signed request."""
    date_header = (now or datetime.now(timezone.utc)).isoformat()
    sig = signature(secret_key, method, path_and_query, date_header, host, content_type, api_version)
    return {
        "Date": date_header,
        "X-BackendAI-Version": api_version,
        "Content-Type": content_type,
        "Authorization": f"BackendAI signMethod=HMAC-SHA256, credential={access_key}:{sig}",
    }


def parse_authorization(value: str) -> tuple[str, str, str]:
    """Return (hash_name, access_key, signature) or raise ValueError."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme not in ("BackendAI", "Sorna") or not rest:
        raise ValueError("unknown authorization scheme")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            raise ValueError("malformed authorization parameter")
        fields[key.strip()] = val.strip()
    mac, _, hash_name = fields.get("signMethod", "").lower().partition("-")
    if mac != "hmac" or hash_name not in hashlib.algorithms_guaranteed:
        raise ValueError("unsupported signMethod")
    access_key, sep, sig = fields.get("credential", "").partition(":")
    if not sep or not access_key or not sig:
        raise ValueError("malformed credential")
    return hash_name, access_key, sig


def within_skew(date: datetime, now: datetime | None = None) -> bool:
    now = now or datetime.now(timezone.utc)
    return abs((now - date).total_seconds()) <= MAX_CLOCK_SKEW_SECONDS
