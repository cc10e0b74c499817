"""Session and kernel status transitions (pure): every change records a reason and a history entry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

LIVE = ("PENDING", "SCHEDULED", "PREPARING", "PULLING", "RUNNING", "RESTARTING", "RUNNING_DEGRADED",
        "TERMINATING")
DEAD = ("TERMINATED", "ERROR", "CANCELLED")
# Statuses whose kernels hold resources on an agent.
OCCUPYING = ("SCHEDULED", "PREPARING", "PULLING", "RUNNING", "RESTARTING", "RUNNING_DEGRADED",
             "TERMINATING")

STATUS_GROUPS = {
    "running": ("RUNNING", "RUNNING_DEGRADED", "RESTARTING"),
    "pending": ("PENDING", "SCHEDULED", "PREPARING", "PULLING"),
    "live": LIVE,
    "finished": DEAD,
}


def now_utc() -> datetime:
    return datetime.now(UTC)


def set_status(obj: Any, status: str, reason: str | None = None, at: datetime | None = None) -> bool:
    """Move a session or kernel row to ``status``; False (no change) when already there or dead."""
    if obj.status == status or obj.status in DEAD:
        return False
    at = at or now_utc()
    obj.status = status
    if reason is not None:
        obj.status_info = reason
    history = getattr(obj, "status_history", None)
    if history is not None:
        obj.status_history = [*history, {"status": status, "timestamp": at.isoformat(), "reason": reason}]
    if status == "SCHEDULED" and hasattr(obj, "scheduled_at"):
        obj.scheduled_at = at
    if status == "RUNNING" and getattr(obj, "started_at", None) is None:
        obj.started_at = at
    if status in DEAD:
        obj.terminated_at = at
    return True
