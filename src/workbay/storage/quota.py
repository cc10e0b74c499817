"""Quota arithmetic and scope ids (``user:<uuid>`` / ``project:<uuid>``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from workbay.common.errors import InvalidAPIParameters

SCOPE_TYPES = ("user", "project")


@dataclass(frozen=True)
class QuotaScope:
    type: str
    id: str  # canonical UUID string

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


def parse_scope(qsid: str) -> QuotaScope:
    kind, _, ident = str(qsid).partition(":")
    if kind == "group":
        kind = "project"
    if kind not in SCOPE_TYPES:
        raise InvalidAPIParameters(f"Invalid quota scope id {qsid!r} (user:<uuid> or project:<uuid>).")
    try:
        return QuotaScope(kind, str(uuid.UUID(ident)))
    except ValueError as e:
        raise InvalidAPIParameters(f"Invalid quota scope id {qsid!r}.") from e


def parse_vfid(vfid: str) -> str:
    """A folder id as 32 lowercase hex digits (dashes accepted)."""
    try:
        return uuid.UUID(str(vfid)).hex
    except ValueError as e:
        raise InvalidAPIParameters(f"Invalid folder id {vfid!r}.") from e


def would_exceed(limit: int | None, used: int, incoming: int) -> bool:
    """Whether adding ``incoming`` bytes to ``used`` goes over ``limit`` (None = no limit)."""
    return limit is not None and used + max(incoming, 0) > limit


def percentage(used: int, total: int) -> float:
    return round(used * 100.0 / total, 2) if total > 0 else 0.0
