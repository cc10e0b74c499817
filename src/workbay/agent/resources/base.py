"""The resource plugin interface and the pure helpers every plugin shares.

A plugin owns some resource slots (``cpu``, ``mem``, ``cuda.device``, …), reports their capacity,
allocates them to kernels (recording *which* cores/devices each kernel got, so the allocation can
be stored in container labels and restored when the agent restarts) and tells the container
builder what to add to the container (environment variables, HostConfig fields).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtpe]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50, "e": 2**60}


class ResourceError(Exception):
    """Base of allocation errors; ``str(e)`` says what is wrong."""


class InsufficientResources(ResourceError):
    """The agent lacks the free capacity (or the right devices) for a request."""


class InvalidResourceRequest(ResourceError):
    """The request itself is wrong (unknown slot, negative amount, fractional whole device…)."""


def parse_size(value: str | int | float | Decimal) -> int:
    """Bytes from ``16g``, ``512m``, ``1.5GiB``, ``1073741824`` (binary units)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative size: {value}")
        return value
    if isinstance(value, (float, Decimal)):
        if value < 0:
            raise ValueError(f"negative size: {value}")
        return int(value)
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r}")
    return int(Decimal(m.group(1)) * _UNITS[m.group(2).lower()])


def to_decimal(value: Any, slot: str = "") -> Decimal:
    """A slot amount as Decimal; ``mem``-like slots accept sizes (``4g``)."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool):
        raise InvalidResourceRequest(f"{slot or 'amount'}: not a number: {value!r}")
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        d = Decimal(str(value))
    else:
        text = str(value).strip()
        try:
            d = Decimal(text)
        except InvalidOperation:
            try:
                d = Decimal(parse_size(text))
            except ValueError:
                raise InvalidResourceRequest(f"{slot or 'amount'}: not a number: {value!r}") from None
    if not d.is_finite():
        raise InvalidResourceRequest(f"{slot or 'amount'}: must be finite, got {value!r}")
    if d < 0:
        raise InvalidResourceRequest(f"{slot or 'amount'}: must not be negative, got {value!r}")
    return d


def fmt_decimal(d: Decimal) -> str:
    """``Decimal`` → wire string without exponent or trailing zeros (``2``, ``0.5``, ``1073741824``)."""
    if d == d.to_integral_value():
        return str(d.quantize(Decimal(1)))
    return format(d.normalize(), "f")


def slots_to_wire(slots: dict[str, Decimal]) -> dict[str, str]:
    return {k: fmt_decimal(v) for k, v in sorted(slots.items())}


def slots_from_wire(slots: dict[str, Any]) -> dict[str, Decimal]:
    return {k: to_decimal(v, k) for k, v in slots.items()}


@dataclass
class ContainerContrib:
    """What a plugin adds to a kernel's container."""

    env: dict[str, str] = field(default_factory=dict)
    host_config: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: ContainerContrib) -> None:
        self.env.update(other.env)
        for key, value in other.host_config.items():
            if isinstance(value, list) and isinstance(self.host_config.get(key), list):
                self.host_config[key] = self.host_config[key] + value
            else:
                self.host_config[key] = value


class ResourcePlugin(ABC):
    """One kind of resource on this agent."""

    #: short unique name (``cpu``, ``mem``, ``cuda``, ``sim-cuda.device``); the allocation record of
    #: a kernel is stored under this key.
    name: str = ""

    @abstractmethod
    def slot_types(self) -> dict[str, str]:
        """Slots it owns → ``count`` or ``bytes``."""

    @abstractmethod
    def capacity(self) -> dict[str, Decimal]:
        """Total amount of each owned slot."""

    @abstractmethod
    def occupied(self) -> dict[str, Decimal]:
        """Amount of each owned slot held by live kernels."""

    @abstractmethod
    def allocate(self, kernel_id: str, request: dict[str, Decimal], opts: dict[str, Any]
                 ) -> dict[str, Any]:
        """Reserve ``request`` (only this plugin's slots, all > 0) for the kernel; return a
        JSON-able record of what was given. Raises InsufficientResources or
        InvalidResourceRequest and then changes nothing."""

    @abstractmethod
    def restore(self, kernel_id: str, record: dict[str, Any]) -> None:
        """Re-reserve a record returned by ``allocate`` (agent restart)."""

    @abstractmethod
    def free(self, kernel_id: str) -> None:
        """Release what the kernel holds; unknown kernels are ignored."""

    @abstractmethod
    def contrib(self, record: dict[str, Any], opts: dict[str, Any]) -> ContainerContrib:
        """Container settings for an allocation record."""

    def describe(self) -> dict[str, Any] | None:
        """Accelerator description for the heartbeat (None for cpu/mem)."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release handles (NVML)."""
