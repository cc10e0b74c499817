"""CPU: ``cpu`` slots (cores), pinned with cpusets.

Each kernel is pinned to ``ceil(amount)`` specific cores (at least one) chosen among the least
loaded cores of this agent's ``cpu_set``; a fractional amount also gets a CPU quota (NanoCpus).
With integer requests and capacity == number of cores (the default), kernels get disjoint cores.
"""

from __future__ import annotations

import math
import os
from decimal import Decimal
from typing import Any

from workbay.common.slots import ResourceSlot

from .base import ContainerContrib, InsufficientResources, InvalidResourceRequest, ResourcePlugin


class CPUAllocator:
    """Pure bookkeeping of which cores each kernel is pinned to."""

    def __init__(self, cores: list[int], capacity: Decimal | None = None) -> None:
        if not cores:
            raise ValueError("an agent needs at least one core")
        if len(set(cores)) != len(cores):
            raise ValueError(f"duplicate core ids in {cores}")
        self.cores = sorted(cores)
        self.capacity = Decimal(len(cores)) if capacity is None else capacity
        self.kernels: dict[str, tuple[Decimal, list[int]]] = {}

    def load(self) -> dict[int, Decimal]:
        load = {c: Decimal(0) for c in self.cores}
        for amount, cores in self.kernels.values():
            for c in cores:
                if c in load:
                    load[c] += amount / len(cores)
        return load

    def used(self) -> Decimal:
        return sum((a for a, _ in self.kernels.values()), Decimal(0))

    def allocate(self, kernel_id: str, amount: Decimal) -> list[int]:
        if kernel_id in self.kernels:
            raise InvalidResourceRequest(f"kernel {kernel_id} already holds cores")
        if amount <= 0:
            raise InvalidResourceRequest("cpu must be positive")
        free = self.capacity - self.used()
        if amount > free:
            raise InsufficientResources(f"cpu: requested {amount}, free {free} of {self.capacity}")
        n = max(1, min(len(self.cores), math.ceil(amount)))
        load = self.load()
        chosen = sorted(sorted(self.cores, key=lambda c: (load[c], c))[:n])
        self.kernels[kernel_id] = (amount, chosen)
        return chosen

    def restore(self, kernel_id: str, amount: Decimal, cores: list[int]) -> None:
        # A restored kernel keeps its cores even if they left our cpu_set (config changed).
        self.kernels[kernel_id] = (amount, sorted(cores))

    def free(self, kernel_id: str) -> None:
        self.kernels.pop(kernel_id, None)


def available_cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


class CPUPlugin(ResourcePlugin):
    name = "cpu"

    def __init__(self, cores: list[int] | None = None, capacity: Decimal | None = None) -> None:
        self.alloc = CPUAllocator(cores or available_cores(), capacity)

    def slot_types(self) -> dict[str, str]:
        return {"cpu": "count"}

    def capacity(self) -> ResourceSlot:
        return ResourceSlot.of_decimals({"cpu": self.alloc.capacity})

    def occupied(self) -> ResourceSlot:
        return ResourceSlot.of_decimals({"cpu": self.alloc.used()})

    def allocate(self, kernel_id: str, request: ResourceSlot, opts: dict[str, Any]
                 ) -> dict[str, Any]:
        amount = request.get("cpu", Decimal(0))
        if amount <= 0:
            raise InvalidResourceRequest("cpu: every kernel needs a positive cpu amount")
        cores = self.alloc.allocate(kernel_id, amount)
        return {"amount": str(amount), "cores": cores}

    def restore(self, kernel_id: str, record: dict[str, Any]) -> None:
        self.alloc.restore(kernel_id, Decimal(record["amount"]), list(record["cores"]))

    def free(self, kernel_id: str) -> None:
        self.alloc.free(kernel_id)

    def contrib(self, record: dict[str, Any], opts: dict[str, Any]) -> ContainerContrib:
        return ContainerContrib(env={}, host_config=cpu_host_config(Decimal(record["amount"]),
                                                                    record["cores"]))


def cpu_host_config(amount: Decimal, cores: list[int]) -> dict[str, Any]:
    hc: dict[str, Any] = {"CpusetCpus": ",".join(str(c) for c in cores)}
    if amount < len(cores):
        hc["NanoCpus"] = int(amount * 1_000_000_000)
    return hc


def thread_count(amount: Decimal) -> int:
    """OpenMP/BLAS thread count for a cpu amount (CS-9)."""
    return max(1, math.ceil(amount))
