"""All resource plugins of one agent: capacity, all-or-nothing allocation, container settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from workbay.common.slots import ResourceSlot

from .accelerator import AcceleratorPlugin
from .base import (
    ContainerContrib,
    InsufficientResources,
    InvalidResourceRequest,
    ResourceError,
    ResourcePlugin,
    to_decimal,
)
from .cpu import CPUPlugin
from .mem import MemPlugin


class ResourceRegistry:
    def __init__(self, plugins: list[ResourcePlugin]) -> None:
        self.plugins = plugins
        self.by_slot: dict[str, ResourcePlugin] = {}
        names: set[str] = set()
        for p in plugins:
            if p.name in names:
                raise ValueError(f"two resource plugins named {p.name!r}")
            names.add(p.name)
            for slot in p.slot_types():
                if slot in self.by_slot:
                    raise ValueError(f"slot {slot!r} is provided by both {self.by_slot[slot].name!r}"
                                     f" and {p.name!r}")
                self.by_slot[slot] = p

    def slot_types(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in self.plugins:
            out.update(p.slot_types())
        return out

    def capacity(self) -> ResourceSlot:
        out: dict[str, Decimal] = {}
        for p in self.plugins:
            out.update(p.capacity())
        return ResourceSlot.of_decimals(out)

    def occupied(self) -> ResourceSlot:
        out: dict[str, Decimal] = {}
        for p in self.plugins:
            out.update(p.occupied())
        return ResourceSlot.of_decimals(out)

    def free_capacity(self) -> ResourceSlot:
        """What is left to allocate, slot by slot."""
        return self.capacity() - self.occupied()

    def accelerators(self) -> list[dict[str, Any]]:
        return [d for p in self.plugins if (d := p.describe()) is not None]

    def allocate(self, kernel_id: str, slots: ResourceSlot, opts: dict[str, Any]
                 ) -> dict[str, Any]:
        """Allocate every requested slot or nothing; returns {plugin name: record}."""
        unknown = sorted(s for s, v in slots.items() if v > 0 and s not in self.by_slot)
        if unknown:
            raise InvalidResourceRequest(f"this agent has no slot {', '.join(unknown)}")
        records: dict[str, Any] = {}
        try:
            for p in self.plugins:
                mine = ResourceSlot.of_decimals({s: v for s, v in slots.items()
                                                 if self.by_slot.get(s) is p and v > 0})
                if not mine and not isinstance(p, (CPUPlugin, MemPlugin)):
                    continue
                records[p.name] = p.allocate(kernel_id, mine, opts)
        except ResourceError:
            for name in records:
                self._plugin(name).free(kernel_id)
            raise
        return records

    def allocate_many(self, requests: list[tuple[str, ResourceSlot, dict[str, Any]]]
                      ) -> dict[str, dict[str, Any]]:
        """All kernels of a session or none."""
        done: dict[str, dict[str, Any]] = {}
        try:
            for kernel_id, slots, opts in requests:
                done[kernel_id] = self.allocate(kernel_id, slots, opts)
        except ResourceError:
            for kernel_id in done:
                self.free(kernel_id)
            raise
        return done

    def restore(self, kernel_id: str, records: dict[str, Any]) -> None:
        for name, record in records.items():
            p = self._find(name)
            if p is not None:
                p.restore(kernel_id, record)

    def free(self, kernel_id: str) -> None:
        for p in self.plugins:
            p.free(kernel_id)

    def contrib(self, records: dict[str, Any], opts: dict[str, Any]) -> ContainerContrib:
        out = ContainerContrib()
        for name, record in records.items():
            p = self._find(name)
            if p is not None:
                out.merge(p.contrib(record, opts))
        return out

    def _find(self, name: str) -> ResourcePlugin | None:
        """The plugin named ``name``; None for a record of a plugin this agent no longer has
        (its config changed since the kernel started)."""
        return next((p for p in self.plugins if p.name == name), None)

    def _plugin(self, name: str) -> ResourcePlugin:
        p = self._find(name)
        if p is None:
            raise KeyError(name)
        return p

    async def close(self) -> None:
        for p in self.plugins:
            await p.close()


def build_registry(agent_config: Any) -> ResourceRegistry:
    """Plugins from ``AgentConfig``: cpu (cpu_set, slots.cpu), mem (slots.mem), CUDA via NVML,
    simulated devices. Unknown keys in ``slots`` fail loudly."""
    from .cuda import CUDAPlugin
    from .simulated import SimulatedPlugin

    overrides = dict(agent_config.slots)
    cpu_cap = to_decimal(overrides.pop("cpu"), "cpu") if "cpu" in overrides else None
    mem_cap = int(to_decimal(overrides.pop("mem"), "mem")) if "mem" in overrides else None
    plugins: list[ResourcePlugin] = [
        CPUPlugin(list(agent_config.cpu_set) or None, cpu_cap),
        MemPlugin(mem_cap),
        CUDAPlugin(shares_per_device=agent_config.cuda_shares_per_device,
                   injection=agent_config.cuda_injection),
    ]
    for sd in agent_config.simulated_devices:
        plugins.append(SimulatedPlugin(sd.slot, sd.count, sd.memory, sd.shares_per_device,
                                       sd.env, sd.model))
    registry = ResourceRegistry(plugins)
    for slot, value in overrides.items():
        p = registry.by_slot.get(slot)
        if not isinstance(p, AcceleratorPlugin):
            raise ValueError(f"agent.slots: unknown slot {slot!r} (cpu, mem or a detected "
                             f"accelerator slot: {', '.join(sorted(registry.by_slot))})")
        cap = to_decimal(value, slot)
        if cap > p.alloc.capacity():
            raise ValueError(f"agent.slots.{slot} = {cap} exceeds the devices' {p.alloc.capacity()}")
        # Capping accelerators: keep the first devices only.
        keep = int(cap / p.alloc.per_device)
        p.devices = p.devices[:keep]
        p.alloc.devices = p.alloc.devices[:keep]
    return registry


__all__ = ["ResourceRegistry", "build_registry", "InsufficientResources"]
