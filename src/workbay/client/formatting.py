"""How the CLI shows values: byte sizes in binary units, resource slots, times, durations, ages and
session statuses (rich markup).  Pure functions, shared by every ``cli_*`` module."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from workbay.common.domain import SessionStatus

S = SessionStatus
STATUS_STYLE: dict[str, str] = {
    S.PENDING: "yellow", S.SCHEDULED: "cyan", S.PREPARING: "cyan", S.PULLING: "cyan", S.RUNNING: "green",
    S.RESTARTING: "cyan", S.RUNNING_DEGRADED: "yellow", S.TERMINATING: "magenta", S.TERMINATED: "dim",
    S.ERROR: "red", S.CANCELLED: "red",
    "TIMEOUT": "yellow",  # not a status: what `session create --json` reports when --max-wait ran out
}
del S


def _dec(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _plain(n: Decimal) -> str:
    text = f"{n:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def fmt_bytes(value: Any) -> str:
    """Bytes in binary units: ``4 GiB``, ``512 MiB``, ``1.5 GiB``."""
    n = _dec(value)
    if n is None:
        return str(value)
    if n.is_infinite():
        return "∞"
    if n == 0:
        return "0"
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if abs(n) >= 1024 ** power:
            return f"{_plain(n / 1024 ** power)} {unit}"
    return f"{_plain(n)} B"


def fmt_amount(slot: str, value: Any) -> str:
    """One slot's amount: memory in binary units, other slots as plain numbers."""
    if value is None or value == "":
        return "-"
    if slot == "mem" or slot.endswith(".mem"):
        return fmt_bytes(value)
    n = _dec(value)
    if n is None:
        return str(value)
    return "∞" if n.is_infinite() else _plain(n)


def slot_order(slots: dict[str, Any]) -> list[str]:
    """cpu, mem, then the other slots by name."""
    return sorted(slots, key=lambda k: ({"cpu": 0, "mem": 1}.get(k, 2), k))


def fmt_slots(slots: dict[str, Any] | None, skip: tuple[str, ...] = ()) -> str:
    """``cpu 2 · mem 4 GiB · cuda.device 1`` (``-`` when empty)."""
    if not slots:
        return "-"
    parts = [f"{k} {fmt_amount(k, slots[k])}" for k in slot_order(slots) if k not in skip]
    return " · ".join(parts) or "-"


def parse_time(value: str | None) -> datetime | None:
    """A server timestamp (ISO 8601; UTC when it names no zone), or None when absent or unreadable."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def fmt_time(value: str | None) -> str:
    """A server timestamp in local time, ``2024-01-02 03:04:05``."""
    dt = parse_time(value)
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S") if dt else "-"


def fmt_duration(seconds: float) -> str:
    """``4.2s``, ``42s``, ``3m07s``, ``2h05m``, ``3d04h``."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h"


def fmt_age(value: str | None) -> str:
    """How long ago a server timestamp was: ``3m07s ago``."""
    dt = parse_time(value)
    if dt is None:
        return "-"
    return fmt_duration((datetime.now(UTC) - dt).total_seconds()) + " ago"


def styled_status(status: str | None) -> str:
    """A session status in its colour (rich markup)."""
    status = status or "-"
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def short_image(name: str | None) -> str:
    """An image name without the local registry prefixes."""
    return (name or "-").removeprefix("localhost/").removeprefix("workbay/")
