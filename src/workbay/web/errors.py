"""Problem-details answers specific to the webserver."""

from __future__ import annotations

from datetime import datetime, timezone

from workbay.common.errors import AuthFailed, BackendError, TooManyRequests

from .lockout import Lock


class BadGateway(BackendError):
    status, kind, title = 502, "bad-gateway", "The manager is unreachable."


def unauthorized() -> AuthFailed:
    return AuthFailed(title="Unauthorized access")


def locked_out(lock: Lock) -> TooManyRequests:
    seconds = lock.seconds_left()
    until = datetime.fromtimestamp(lock.until, timezone.utc).replace(microsecond=0)
    minutes = max(1, round(seconds / 60))
    return TooManyRequests(
        f"Too many failed login attempts. Try again after {until.isoformat()} "
        f"(in about {minutes} minute{'s' if minutes != 1 else ''}).",
        title="Too many failed login attempts.",
        data={"retry_after": seconds, "locked_until": until.isoformat()},
        headers={"Retry-After": str(seconds)})
