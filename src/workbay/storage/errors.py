"""Storage-proxy problem types (problem+json, Backend.AI type URIs)."""

from __future__ import annotations

from workbay.common.errors import BackendError


class InvalidPath(BackendError):
    status, kind, title = 400, "invalid-api-params", "Invalid path."


class InvalidToken(BackendError):
    status, kind, title = 401, "auth-failed", "Invalid or expired token."


class TokenScopeMismatch(BackendError):
    status, kind, title = 403, "generic-forbidden", "The token does not allow this operation."


class NotFound(BackendError):
    status, kind, title = 404, "object-not-found", "No such file or folder."


class QuotaExceeded(BackendError):
    status, kind, title = 413, "quota-exceeded", "Quota exceeded."


class QuotaUnsupported(BackendError):
    status, kind, title = 400, "generic-bad-request", "This volume does not support quotas."


class FileExists(BackendError):
    status, kind, title = 400, "generic-bad-request", "The target already exists."
