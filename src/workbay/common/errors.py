"""Problem-details errors with Backend.AI's type URIs."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://api.backend.ai/probs/"


class BackendError(Exception):
    status = 500
    kind = "internal-server-error"
    title = "Internal server error."

    def __init__(self, msg: str | None = None, *, data: Any = None, title: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(msg or title or self.title)
        self.msg = msg
        self.data = data
        if title:
            self.title = title
        self.headers = headers or {}
        # Extension members at the top level of the problem body, for wire formats Backend.AI
        # fixed outside problem details (e.g. ``error_msg`` of /auth/update-password).
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.extra, "type": PROBLEM_BASE + self.kind, "title": self.title}
        if self.msg:
            out["msg"] = self.msg
        if self.data is not None:
            out["data"] = self.data
        return out


class AuthFailed(BackendError):
    status, kind, title = 401, "auth-failed", "Credential/signature mismatch."


class PasswordExpired(BackendError):
    status, kind, title = 401, "password-expired", "Password has expired."


class InvalidAuthParameters(BackendError):
    status, kind, title = 400, "invalid-auth-params", "Missing or invalid authorization parameters."


class InvalidAPIParameters(BackendError):
    status, kind, title = 400, "invalid-api-params", "Missing or invalid API parameters."


class GenericBadRequest(BackendError):
    status, kind, title = 400, "generic-bad-request", "Bad request."


class AlreadyExists(GenericBadRequest):
    """A create/rename that would duplicate a unique name (Backend.AI answers 400 for these)."""

    title = "The object already exists."


class GenericForbidden(BackendError):
    status, kind, title = 403, "generic-forbidden", "Forbidden operation."


class InsufficientPrivilege(BackendError):
    status, kind, title = 403, "insufficient-privilege", "Insufficient privilege."


class URLNotFound(BackendError):
    status, kind, title = 404, "url-not-found", "Unknown URL path."


class ObjectNotFound(BackendError):
    status, kind, title = 404, "object-not-found", "No such object."

    def __init__(self, msg: str | None = None, *, object_name: str = "object", **kw: Any) -> None:
        kw.setdefault("title", f"No such {object_name}.")
        super().__init__(msg, **kw)


class Conflict(BackendError):
    """A request the current state forbids (still in use, the last one of its kind)."""

    status, kind, title = 409, "generic-bad-request", "The request conflicts with the current state."


class RequestTooLarge(BackendError):
    """A request body over the service's limit, refused before it is parsed."""

    status, kind, title = 413, "request-too-large", "Request body too large."


class MethodNotAllowed(BackendError):
    status, kind, title = 405, "method-not-allowed", "Method not allowed."


class RateLimitExceeded(BackendError):
    status, kind, title = 429, "rate-limit-exceeded", "Rate limit exceeded."


class TooManyRequests(BackendError):
    status, kind, title = 429, "too-many-requests", "Too many requests."


class ServiceUnavailable(BackendError):
    status, kind, title = 503, "service-unavailable", "Service unavailable."


class InternalServerError(BackendError):
    pass
