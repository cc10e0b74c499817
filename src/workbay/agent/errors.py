"""Problem types of the agent's RPC API."""

from __future__ import annotations

from workbay.common.errors import BackendError, ObjectNotFound


class KernelNotFound(ObjectNotFound):
    title = "No such kernel."

    def __init__(self, kernel_id: str) -> None:
        super().__init__(f"kernel {kernel_id} is not on this agent", object_name="kernel",
                         data={"kernel_id": kernel_id})


class NetworkNotFound(ObjectNotFound):
    title = "No such network."


class InsufficientResource(BackendError):
    status, kind, title = 409, "insufficient-resource", \
        "The agent lacks the free resources for this request."


class KernelConflict(BackendError):
    """The kernel's state forbids the request (not running, busy, being destroyed)."""

    status, kind, title = 409, "kernel-conflict", "The kernel cannot do this now."


class EngineUnavailable(BackendError):
    status, kind, title = 503, "service-unavailable", "The container engine does not answer."


class RunnerError(BackendError):
    status, kind, title = 502, "kernel-runner-error", "The kernel's runner failed."


class IsolationFailed(BackendError):
    status, kind, title = 503, "service-unavailable", \
        "The agent cannot isolate the session's network from the others."


class ImageUnreadable(BackendError):
    """The engine does not tell what the agent must report about an image (its architecture)."""

    status, kind, title = 502, "image-unreadable", "The container engine cannot describe an image."
