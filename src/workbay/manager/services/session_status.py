"""Session and kernel status transitions (pure): every change records a reason and a history entry;
and the one shape of a session or kernel lifecycle event on the event bus."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from workbay.common.domain import DEAD_STATUSES, SessionStatus


def now_utc() -> datetime:
    return datetime.now(UTC)


def set_status(obj: Any, status: str, reason: str | None = None, at: datetime | None = None) -> bool:
    """Move a session or kernel row to ``status``; False (no change) when already there or dead."""
    if obj.status == status or obj.status in DEAD_STATUSES:
        return False
    at = at or now_utc()
    obj.status = status
    if reason is not None:
        obj.status_info = reason
    history = getattr(obj, "status_history", None)
    if history is not None:
        obj.status_history = [*history, {"status": status, "timestamp": at.isoformat(), "reason": reason}]
    if status == SessionStatus.SCHEDULED and hasattr(obj, "scheduled_at"):
        obj.scheduled_at = at
    if status == SessionStatus.RUNNING and getattr(obj, "started_at", None) is None:
        obj.started_at = at
    if status in DEAD_STATUSES:
        obj.terminated_at = at
    return True


def session_event(event: str, *, session_id: uuid.UUID, session_name: str, access_key: str,
                  user_id: uuid.UUID, reason: str | None, exit_code: int | None = None,
                  kernel_id: uuid.UUID | None = None, cluster_role: str | None = None,
                  cluster_idx: int | None = None) -> dict[str, Any]:
    """A ``session_*`` or ``kernel_*`` event as it travels on the event bus (Workbay's names;
    ``manager/api/session_events.py`` turns it into Backend.AI's SSE data).  Kernel events carry
    the kernel's id and cluster position."""
    ev: dict[str, Any] = {"name": event, "session_id": str(session_id), "session_name": session_name,
                          "access_key": access_key, "user_id": str(user_id), "reason": reason or "",
                          "exit_code": exit_code}
    if kernel_id is not None:
        ev.update(kernel_id=str(kernel_id), cluster_role=cluster_role, cluster_idx=cluster_idx)
    return ev
