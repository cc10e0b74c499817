"""Simulated accelerators configured in the agent's TOML, so allocation and environment injection
can be tested on machines without the hardware::

    [[agent.simulated_devices]]
    slot = "cuda.device"     # or "cuda.shares" with shares_per_device = 10
    count = 2
    memory = "16g"

Kernels get the allocated ids in ``CUDA_VISIBLE_DEVICES`` (``<PREFIX>_VISIBLE_DEVICES`` for other
kinds) and the details in ``WORKBAY_SIMULATED_DEVICES`` (``id:fraction`` comma-separated).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from workbay.common.domain import parse_bytes
from workbay.common.slots import plain_decimal

from .accelerator import AcceleratorPlugin, Device
from .base import ContainerContrib


def default_env_var(kind: str) -> str:
    return "CUDA_VISIBLE_DEVICES" if kind == "cuda" else \
        f"{kind.upper().replace('.', '_').replace('-', '_')}_VISIBLE_DEVICES"


class SimulatedPlugin(AcceleratorPlugin):
    def __init__(self, slot: str, count: int, memory: str | int = 0, shares_per_device: int = 0,
                 env: str = "", model: str = "Simulated device") -> None:
        kind, _, unit = slot.rpartition(".")
        if not kind or unit not in ("device", "shares"):
            raise ValueError(f"simulated device slot must be <kind>.device or <kind>.shares, "
                             f"got {slot!r}")
        if unit == "shares" and shares_per_device <= 0:
            shares_per_device = 1
        if unit == "device":
            shares_per_device = 0
        self.kind = kind
        self.name = f"sim-{slot}"
        self.env_var = env or default_env_var(kind)
        mem = int(parse_bytes(memory))
        devices = [Device(str(i), model=model, memory=mem, extra={"simulated": True})
                   for i in range(count)]
        super().__init__(devices, shares_per_device)

    def device_contrib(self, devices: list[tuple[Device, Decimal]], opts: dict[str, Any]
                       ) -> ContainerContrib:
        ids = [d.id for d, _ in devices]
        detail = ",".join(f"{d.id}:{plain_decimal(self.share_fraction(a))}" for d, a in devices)
        env = {self.env_var: ",".join(ids), "WORKBAY_SIMULATED_DEVICES": detail}
        if self.shares_mode:
            mem = sum(int(d.memory * self.share_fraction(a)) for d, a in devices)
            env["WORKBAY_DEVICE_MEMORY_LIMIT"] = str(mem)
        return ContainerContrib(env=env)
