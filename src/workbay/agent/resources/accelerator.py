"""The accelerator plugin interface (GP-3) and its pure device allocator.

An accelerator plugin exposes a list of devices of one kind (``cuda``, ``rocm``, …) under one slot:
``<kind>.device`` (whole devices, integer amounts) or ``<kind>.shares`` (fractional: each device is
split into ``shares_per_device`` shares; a kernel may get shares of one or several devices).
Subclasses provide the devices and the container settings for a set of allocated devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workbay.common.slots import ResourceSlot

from .base import ContainerContrib, InsufficientResources, InvalidResourceRequest, ResourcePlugin


@dataclass
class Device:
    id: str
    model: str = ""
    memory: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "memory": self.memory, **self.extra}


class DeviceAllocator:
    """Which devices (and how many shares of each) every kernel holds.

    Whole mode (``shares_per_device`` None): amounts are integers, each device goes to at most one
    kernel. Shares mode: a device holds ``shares_per_device`` shares; a request that fits one
    device goes to the device it fits best (packing, so whole devices stay free for big requests);
    larger requests take whole free devices first, then the rest best-fit, else spread greedily.
    """

    def __init__(self, device_ids: list[str], shares_per_device: Decimal | None = None) -> None:
        if len(set(device_ids)) != len(device_ids):
            raise ValueError(f"duplicate device ids in {device_ids}")
        if shares_per_device is not None and shares_per_device <= 0:
            raise ValueError("shares_per_device must be positive")
        self.devices = list(device_ids)
        self.spd = shares_per_device
        self.kernels: dict[str, dict[str, Decimal]] = {}

    @property
    def per_device(self) -> Decimal:
        return Decimal(1) if self.spd is None else self.spd

    def capacity(self) -> Decimal:
        return self.per_device * len(self.devices)

    def usage(self) -> dict[str, Decimal]:
        used = {d: Decimal(0) for d in self.devices}
        for alloc in self.kernels.values():
            for dev, amount in alloc.items():
                used[dev] = used.get(dev, Decimal(0)) + amount
        return used

    def used(self) -> Decimal:
        return sum(self.usage().values(), Decimal(0))

    def free_per_device(self) -> dict[str, Decimal]:
        usage = self.usage()
        return {d: self.per_device - usage[d] for d in self.devices}

    def allocate(self, kernel_id: str, amount: Decimal) -> dict[str, Decimal]:
        if kernel_id in self.kernels:
            raise InvalidResourceRequest(f"kernel {kernel_id} already holds devices")
        if amount <= 0:
            raise InvalidResourceRequest("device amount must be positive")
        free = self.free_per_device()
        if self.spd is None:
            if amount != amount.to_integral_value():
                raise InvalidResourceRequest(f"whole devices only: {amount} is not an integer")
            idle = [d for d in self.devices if free[d] == 1]
            if len(idle) < amount:
                raise InsufficientResources(
                    f"requested {amount} devices, {len(idle)} free of {len(self.devices)}")
            alloc = {d: Decimal(1) for d in idle[: int(amount)]}
        else:
            alloc = self._allocate_shares(amount, free)
        self.kernels[kernel_id] = alloc
        return dict(alloc)

    def _allocate_shares(self, amount: Decimal, free: dict[str, Decimal]) -> dict[str, Decimal]:
        spd = self.per_device
        total_free = sum(free.values(), Decimal(0))
        if amount > total_free:
            raise InsufficientResources(f"requested {amount} shares, {total_free} free of "
                                        f"{self.capacity()}")
        order = {d: i for i, d in enumerate(self.devices)}

        def best_fit(need: Decimal, exclude: set[str]) -> str | None:
            fits = [d for d in self.devices if d not in exclude and free[d] >= need]
            return min(fits, key=lambda d: (free[d], order[d])) if fits else None

        if amount <= spd:
            dev = best_fit(amount, set())
            if dev is not None:
                return {dev: amount}
        else:
            whole, rest = divmod(amount, spd)
            idle = [d for d in self.devices if free[d] == spd]
            if len(idle) >= whole:
                alloc = {d: spd for d in idle[: int(whole)]}
                if rest == 0:
                    return alloc
                dev = best_fit(rest, set(alloc))
                if dev is not None:
                    alloc[dev] = rest
                    return alloc
        # Spread over the devices with the most free shares.
        spread: dict[str, Decimal] = {}
        need = amount
        for d in sorted(self.devices, key=lambda d: (-free[d], order[d])):
            if need <= 0:
                break
            take = min(free[d], need)
            if take > 0:
                spread[d] = take
                need -= take
        return spread

    def restore(self, kernel_id: str, alloc: dict[str, Decimal]) -> None:
        self.kernels[kernel_id] = dict(alloc)

    def free(self, kernel_id: str) -> None:
        self.kernels.pop(kernel_id, None)


class AcceleratorPlugin(ResourcePlugin):
    """Base of accelerator plugins: subclasses set ``kind`` and ``devices`` and implement
    ``device_contrib``."""

    kind: str = ""

    def __init__(self, devices: list[Device], shares_per_device: int = 0) -> None:
        self.devices = devices
        self.shares_mode = shares_per_device > 0
        self.alloc = DeviceAllocator([d.id for d in devices],
                                     Decimal(shares_per_device) if self.shares_mode else None)

    @property
    def slot(self) -> str:
        return f"{self.kind}.{'shares' if self.shares_mode else 'device'}"

    def slot_types(self) -> dict[str, str]:
        return {self.slot: "count"} if self.devices else {}

    def capacity(self) -> ResourceSlot:
        return ResourceSlot.of_decimals({self.slot: self.alloc.capacity()} if self.devices else {})

    def occupied(self) -> ResourceSlot:
        return ResourceSlot.of_decimals({self.slot: self.alloc.used()} if self.devices else {})

    def allocate(self, kernel_id: str, request: ResourceSlot, opts: dict[str, Any]
                 ) -> dict[str, Any]:
        got = self.alloc.allocate(kernel_id, request[self.slot])
        return {"slot": self.slot, "devices": {d: str(a) for d, a in got.items()}}

    def restore(self, kernel_id: str, record: dict[str, Any]) -> None:
        self.alloc.restore(kernel_id, {d: Decimal(a) for d, a in record["devices"].items()})

    def free(self, kernel_id: str) -> None:
        self.alloc.free(kernel_id)

    def contrib(self, record: dict[str, Any], opts: dict[str, Any]) -> ContainerContrib:
        by_id = {d.id: d for d in self.devices}
        devs = [(by_id.get(i) or Device(i), Decimal(a)) for i, a in record["devices"].items()]
        return self.device_contrib(devs, opts)

    def device_contrib(self, devices: list[tuple[Device, Decimal]], opts: dict[str, Any]
                       ) -> ContainerContrib:
        raise NotImplementedError

    def share_fraction(self, amount: Decimal) -> Decimal:
        """Fraction of one device that ``amount`` of this plugin's slot stands for."""
        return amount / self.alloc.per_device if self.shares_mode else Decimal(1)

    def describe(self) -> dict[str, Any] | None:
        if not self.devices:
            return None
        return {"plugin": self.name, "kind": self.kind, "slot": self.slot,
                "shares_per_device": int(self.alloc.per_device) if self.shares_mode else None,
                "devices": [d.to_wire() for d in self.devices]}
