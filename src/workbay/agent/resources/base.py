"""The resource plugin interface and the pure helpers every plugin shares.

A plugin owns some resource slots (``cpu``, ``mem``, ``cuda.device``, …), reports their capacity,
allocates them to kernels (recording *which* cores/devices each kernel got, so the allocation can
be stored in container labels and restored when the agent restarts) and tells the container
builder what to add to the container (environment variables, HostConfig fields).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from workbay.common.domain import parse_bytes
from workbay.common.slots import ResourceSlot, SlotParseError, plain_decimal


class ResourceError(Exception):
    """Base of allocation errors; ``str(e)`` says what is wrong."""


class InsufficientResources(ResourceError):
    """The agent lacks the free capacity (or the right devices) for a request."""


class InvalidResourceRequest(ResourceError):
    """The request itself is wrong (unknown slot, negative amount, fractional whole device…)."""


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
                d = parse_bytes(text)
            except ValueError:
                raise InvalidResourceRequest(f"{slot or 'amount'}: not a number: {value!r}") from None
    if not d.is_finite():
        raise InvalidResourceRequest(f"{slot or 'amount'}: must be finite, got {value!r}")
    if d < 0:
        raise InvalidResourceRequest(f"{slot or 'amount'}: must not be negative, got {value!r}")
    return d


def slots_to_wire(slots: Mapping[str, Decimal]) -> dict[str, str]:
    """Slots as the RPC API sends them: decimal strings in plain notation, sorted by slot."""
    return {k: plain_decimal(v) for k, v in sorted(slots.items())}


def slots_from_wire(slots: Mapping[str, Any]) -> ResourceSlot:
    """Slots as the RPC API receives them (numbers, decimal strings, sizes for byte slots).
    Raises InvalidResourceRequest naming the slot whose name or amount is wrong."""
    try:
        return ResourceSlot({k: to_decimal(v, k) for k, v in slots.items()})
    except SlotParseError as e:
        raise InvalidResourceRequest(str(e)) from None


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
    def capacity(self) -> ResourceSlot:
        """Total amount of each owned slot."""

    @abstractmethod
    def occupied(self) -> ResourceSlot:
        """Amount of each owned slot held by live kernels."""

    @abstractmethod
    def allocate(self, kernel_id: str, request: ResourceSlot, opts: dict[str, Any]
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
