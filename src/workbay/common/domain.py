"""Workbay's domain vocabulary: the one home of every name, status set and rule that more than one
component needs (manager, agent, webserver, CLI).  Pure: no I/O, stdlib only.

Backend.AI's wire names never appear here; ``manager/api/`` translates at the edge.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any


# -- sessions -------------------------------------------------------------------------------------
class SessionStatus(StrEnum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    PULLING = "PULLING"
    PREPARING = "PREPARING"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    RUNNING_DEGRADED = "RUNNING_DEGRADED"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"


S = SessionStatus
ALL_STATUSES: tuple[str, ...] = tuple(S)
# Not yet ended (the session still counts toward limits and may be acted on).
LIVE_STATUSES: tuple[str, ...] = (S.PENDING, S.SCHEDULED, S.PREPARING, S.PULLING, S.RUNNING, S.RESTARTING,
                                  S.RUNNING_DEGRADED, S.TERMINATING)
# Ended for good: a row in one of these never changes status again.
DEAD_STATUSES: tuple[str, ...] = (S.TERMINATED, S.ERROR, S.CANCELLED)
# Kernels in these hold resources on an agent.
OCCUPYING_STATUSES: tuple[str, ...] = (S.SCHEDULED, S.PREPARING, S.PULLING, S.RUNNING, S.RESTARTING,
                                       S.RUNNING_DEGRADED, S.TERMINATING)
# Up and serving (apps, exec, files).
RUNNING_STATUSES: tuple[str, ...] = (S.RUNNING, S.RUNNING_DEGRADED, S.RESTARTING)
# Waiting to run.
WAITING_STATUSES: tuple[str, ...] = (S.PENDING, S.SCHEDULED, S.PREPARING, S.PULLING)
# The groups a session list may be filtered by.
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "running": RUNNING_STATUSES,
    "pending": WAITING_STATUSES,
    "live": LIVE_STATUSES,
    "finished": DEAD_STATUSES,
}
del S


class SessionType(StrEnum):
    INTERACTIVE = "interactive"
    BATCH = "batch"
    INFERENCE = "inference"
    SYSTEM = "system"  # SFTP / file-browser sessions: not counted in the owner's limits (AP-7)


class ClusterMode(StrEnum):
    SINGLE_NODE = "single-node"
    MULTI_NODE = "multi-node"


class ServiceStatus(StrEnum):
    """A model service (docs/serving.md)."""

    PROVISIONING = "PROVISIONING"  # no replica healthy yet
    HEALTHY = "HEALTHY"            # as many healthy replicas as desired
    DEGRADED = "DEGRADED"          # some healthy, fewer than desired
    UNHEALTHY = "UNHEALTHY"        # replicas desired, none healthy after they started
    TERMINATING = "TERMINATING"
    DESTROYED = "DESTROYED"


class RouteStatus(StrEnum):
    """One replica of a model service."""

    PROVISIONING = "PROVISIONING"  # its session is starting or the health check has not passed yet
    HEALTHY = "HEALTHY"            # in rotation
    UNHEALTHY = "UNHEALTHY"        # out of rotation: health checks fail
    TERMINATING = "TERMINATING"    # being removed (scale down, roll-over, replacement)
    FAILED = "FAILED"              # its session ended or never started: replaced


class RuntimeVariant(StrEnum):
    CUSTOM = "custom"        # the model folder's model-definition file
    COMMAND = "command"      # the image's predefined command
    VLLM = "vllm"
    NIM = "nim"
    LLAMA_CPP = "llama-cpp"  # the chat issue's CPU runtime


LIVE_SERVICE_STATUSES: tuple[str, ...] = ("PROVISIONING", "HEALTHY", "DEGRADED", "UNHEALTHY")


class AgentStatus(StrEnum):
    ALIVE = "ALIVE"
    LOST = "LOST"
    TERMINATED = "TERMINATED"


class UserStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    DELETED = "deleted"
    BEFORE_VERIFICATION = "before-verification"


# -- the session-name rule of the guide -------------------------------------------------------------
SESSION_NAME_MIN = 4
SESSION_NAME_MAX = 64
_SESSION_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?", re.ASCII)
SESSION_NAME_RULE = (f"{SESSION_NAME_MIN} to {SESSION_NAME_MAX} characters: ASCII letters, digits, '-' and "
                     "'_', starting and ending with a letter or digit")


def session_name_problem(name: str) -> str | None:
    """None when ``name`` follows the guide's session-name rule, else what is wrong with it."""
    if not SESSION_NAME_MIN <= len(name) <= SESSION_NAME_MAX or not _SESSION_NAME_RE.fullmatch(name):
        return f"A session name has {SESSION_NAME_RULE}."
    return None


def valid_session_name(name: str) -> bool:
    return session_name_problem(name) is None


# -- scheduling ------------------------------------------------------------------------------------
class SchedulerKind(StrEnum):
    FIFO = "fifo"
    LIFO = "lifo"
    DRF = "drf"


class AgentSelection(StrEnum):
    DISPERSED = "dispersed"
    CONCENTRATED = "concentrated"


# -- folders ---------------------------------------------------------------------------------------
class FolderUsageMode(StrEnum):
    GENERAL = "general"
    MODEL = "model"
    DATA = "data"


# Statuses of a folder in the trash.
FOLDER_TRASH_STATUSES: tuple[str, ...] = ("delete-pending", "delete-ongoing", "delete-error")


# -- byte sizes (Decimal only) ---------------------------------------------------------------------
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:([kmgtpe])(?:i?b)?|b)?\s*$", re.IGNORECASE)
_UNIT_POWER = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
_MAX_DIGITS = 40


def parse_bytes(value: str | int | Decimal) -> Decimal:
    """Whole bytes from ``1024``, ``"512m"``, ``"1g"``, ``"1.5GiB"``, ``"2k"``, ``"10b"`` (binary units;
    fractions of a byte are dropped).  Never negative.  Raises ``ValueError`` saying what is wrong.
    Floats are refused: sizes are exact."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{value!r} is not a size (examples: 1024, 512m, 1g, 1.5GiB)")
    if isinstance(value, (int, Decimal)):
        amount = Decimal(value)
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"{value!r} is not a size: it must be a finite amount of at least 0")
        return amount.quantize(Decimal(1), rounding=ROUND_DOWN)
    text = str(value)
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"{text[:40]!r} is not a size (examples: 1024, 512m, 1g, 1.5GiB)")
    if len(m.group(1)) > _MAX_DIGITS:
        raise ValueError(f"{text[:40]!r}…: too many digits")
    number = Decimal(m.group(1))
    unit = (m.group(2) or "").lower()
    amount = number * (Decimal(1024) ** _UNIT_POWER[unit]) if unit else number
    return amount.quantize(Decimal(1), rounding=ROUND_DOWN)


def parse_bytes_or_none(value: Any) -> Decimal | None:
    """``parse_bytes`` for display code: None (not an error) for a missing or unreadable size."""
    if value is None:
        return None
    try:
        return parse_bytes(value if isinstance(value, (int, Decimal)) else str(value))
    except ValueError:
        return None
