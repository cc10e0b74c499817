"""Resource plugins of the agent: cpu, mem and accelerators (CUDA, simulated)."""

from .base import (
    ContainerContrib,
    InsufficientResources,
    InvalidResourceRequest,
    ResourceError,
    ResourcePlugin,
    slots_from_wire,
    slots_to_wire,
    to_decimal,
)
from .registry import ResourceRegistry, build_registry

__all__ = ["ContainerContrib", "InsufficientResources", "InvalidResourceRequest", "ResourceError",
           "ResourcePlugin", "ResourceRegistry", "build_registry", "slots_from_wire", "slots_to_wire",
           "to_decimal"]
