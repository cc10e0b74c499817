"""Storage-proxy problem types (problem+json, Backend.AI type URIs)."""

from __future__ import annotations

import errno

from workbay.common.errors import BackendError, GenericBadRequest, GenericForbidden


class InvalidPath(BackendError):
    status, kind, title = 400, "invalid-api-params", "Invalid path."


class InvalidToken(BackendError):
    status, kind, title = 401, "auth-failed", "Invalid or expired token."


class TokenScopeMismatch(BackendError):
    status, kind, title = 403, "generic-forbidden", "The token does not allow this operation."


class NotFound(BackendError):
    status, kind, title = 404, "object-not-found", "No such file or folder."


class NotRegularFile(BackendError):
    status, kind, title = 400, "generic-bad-request", "Not a regular file."


class QuotaExceeded(BackendError):
    status, kind, title = 413, "quota-exceeded", "Quota exceeded."


class QuotaUnsupported(BackendError):
    status, kind, title = 400, "generic-bad-request", "This volume does not support quotas."


class FileExists(BackendError):
    status, kind, title = 400, "generic-bad-request", "The target already exists."


def from_os_error(exc: OSError) -> BackendError:
    """A problem for a filesystem error met while serving a request."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return QuotaExceeded("No space left in the quota scope or on the volume.")
    if isinstance(exc, FileNotFoundError):
        return NotFound("No such file or directory.")
    if isinstance(exc, PermissionError):
        return GenericForbidden("Permission denied by the filesystem.")
    if isinstance(exc, FileExistsError):
        return FileExists()
    if exc.errno == errno.ELOOP:
        return InvalidPath("The path goes through a symbolic link; links are never followed.")
    return GenericBadRequest(f"Filesystem error: {exc.strerror or exc.__class__.__name__}.")
