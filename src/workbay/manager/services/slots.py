"""Validation of resource-slot maps given by admins (pure)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

SLOT_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$")  # cpu, mem, cuda.shares, …


def check_slots(v: dict[str, Any]) -> dict[str, str]:
    """Slot name -> a non-negative decimal string ("Infinity" allowed); a missing slot means
    unlimited.  Raises ValueError naming the offending slot."""
    out = {}
    for key, value in v.items():
        if not SLOT_NAME_RE.match(key) or len(key) > 64:
            raise ValueError(f"{key!r}: not a resource slot name")
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise ValueError(f"{key}: not a number")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation as e:
            raise ValueError(f"{key}: not a number") from e
        if amount.is_nan() or amount < 0:
            raise ValueError(f"{key}: must be zero or more")
        out[key] = "Infinity" if amount.is_infinite() else str(amount)
    return out
