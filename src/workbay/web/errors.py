"""Problem-details answers specific to the webserver."""

from __future__ import annotations

from workbay.common.errors import AuthFailed, BackendError
from workbay.common.lockout import lock_error

locked_out = lock_error  # one answer for a refused login, here and at the manager


class BadGateway(BackendError):
    status, kind, title = 502, "bad-gateway", "The manager is unreachable."


def unauthorized() -> AuthFailed:
    return AuthFailed(title="Unauthorized access")
