"""Memory: ``mem`` slots (bytes) → the container's memory limit (no swap) and ``/dev/shm``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from workbay.common.slots import ResourceSlot

from .base import ContainerContrib, InsufficientResources, InvalidResourceRequest, ResourcePlugin

DEFAULT_SHMEM = 64 * 2**20


def read_total_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def shm_size(mem: int, shmem: int | None) -> int:
    """``/dev/shm`` size: the requested shmem (must fit in mem), default min(64 MiB, mem)."""
    if shmem is None:
        return min(DEFAULT_SHMEM, mem)
    if shmem < 0:
        raise InvalidResourceRequest("shmem must not be negative")
    if shmem > mem:
        raise InvalidResourceRequest(f"shmem ({shmem}) must not exceed mem ({mem})")
    return shmem


class MemPlugin(ResourcePlugin):
    name = "mem"

    def __init__(self, capacity: int | None = None) -> None:
        self.total = Decimal(capacity if capacity is not None else read_total_memory())
        self.kernels: dict[str, Decimal] = {}

    def slot_types(self) -> dict[str, str]:
        return {"mem": "bytes"}

    def capacity(self) -> ResourceSlot:
        return ResourceSlot.of_decimals({"mem": self.total})

    def occupied(self) -> ResourceSlot:
        return ResourceSlot.of_decimals({"mem": sum(self.kernels.values(), Decimal(0))})

    def allocate(self, kernel_id: str, request: ResourceSlot, opts: dict[str, Any]
                 ) -> dict[str, Any]:
        amount = request.get("mem", Decimal(0))
        if amount <= 0:
            raise InvalidResourceRequest("mem: every kernel needs a positive mem amount")
        if amount != amount.to_integral_value():
            raise InvalidResourceRequest("mem: must be a whole number of bytes")
        shm = shm_size(int(amount), opts.get("shmem"))
        free = self.total - self.occupied()["mem"]
        if amount > free:
            raise InsufficientResources(f"mem: requested {amount}, free {free} of {self.total}")
        self.kernels[kernel_id] = amount
        return {"amount": int(amount), "shmem": shm}

    def restore(self, kernel_id: str, record: dict[str, Any]) -> None:
        self.kernels[kernel_id] = Decimal(record["amount"])

    def free(self, kernel_id: str) -> None:
        self.kernels.pop(kernel_id, None)

    def contrib(self, record: dict[str, Any], opts: dict[str, Any]) -> ContainerContrib:
        mem = int(record["amount"])
        return ContainerContrib(host_config={"Memory": mem, "MemorySwap": mem,
                                             "ShmSize": int(record["shmem"])})
