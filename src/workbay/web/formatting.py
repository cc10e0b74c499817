"""Number, size, duration and time formatting shared by templates (UI conventions: binary units,
durations as ``1d 02:03:04``, ∞ for unlimited)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

UNLIMITED = "∞"
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def binary_size(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if amount.is_infinite():
        return UNLIMITED
    unit = 0
    while abs(amount) >= 1024 and unit < len(_BINARY_UNITS) - 1:
        amount /= 1024
        unit += 1
    text = f"{amount:.2f}".rstrip("0").rstrip(".") if unit else str(int(amount))
    return f"{text} {_BINARY_UNITS[unit]}"


def duration(seconds: Any) -> str:
    total = int(seconds or 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def days_since(iso: str | None, now: datetime | None = None) -> int | None:
    if not iso:
        return None
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0, ((now or datetime.now(UTC)) - then).days)


def short_datetime(iso: str | None) -> str:
    """A readable UTC fallback shown until the browser formats it in the user's locale."""
    if not iso:
        return "-"
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return then.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def decimal_text(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if amount.is_infinite():
        return UNLIMITED
    return format(amount.normalize(), "f")
