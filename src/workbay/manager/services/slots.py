"""Validation of resource-slot maps given by admins (pure)."""

from __future__ import annotations

from typing import Any

from workbay.common.slots import ResourceSlot, SlotParseError


def check_slots(v: dict[str, Any]) -> dict[str, str]:
    """A limit: slot name -> a non-negative decimal string, ``"Infinity"`` allowed, a finite
    amount at most 2^63 (``ResourceSlot.from_user(limit=True)``); a missing slot means
    unlimited.  Raises ValueError naming the offending slot."""
    if not isinstance(v, dict):
        raise ValueError("must be an object of slot name -> amount")
    try:
        return ResourceSlot.from_user(v, limit=True).to_json()
    except SlotParseError as e:
        raise ValueError(str(e)) from e
