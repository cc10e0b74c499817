"""NVIDIA GPUs through NVML (``nvidia-ml-py``): ``cuda.device`` whole GPUs, or ``cuda.shares``
fractional GPUs when ``agent.cuda_shares_per_device`` > 0.

Without the module, the driver or any GPU the plugin simply reports no devices (and no slots).
Devices reach the container as Docker ``DeviceRequests`` (nvidia runtime) or, on Podman, as CDI
device names (``nvidia.com/gpu=<index>``); ``CUDA_VISIBLE_DEVICES`` lists the container-local
indices. Fractional kernels also get ``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`` (their share of SMs,
enforced where an MPS daemon runs) and ``WORKBAY_DEVICE_MEMORY_LIMIT`` (their share of memory, for
frameworks to honour: e.g. torch.cuda.set_per_process_memory_fraction).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from workbay.common.slots import plain_decimal

from .accelerator import AcceleratorPlugin, Device
from .base import ContainerContrib

log = logging.getLogger(__name__)


def detect_nvml_devices(nvml: Any = None) -> list[Device]:
    """GPUs NVML sees; [] when NVML (module, library, driver) is missing or fails."""
    if nvml is None:
        try:
            import pynvml  # nvidia-ml-py
        except ImportError:
            log.info("cuda: nvidia-ml-py not installed; no GPUs")
            return []
        nvml = pynvml
    try:
        nvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, _DriverNotLoaded, …
        log.info("cuda: NVML unavailable (%s); no GPUs", e)
        return []
    devices: list[Device] = []
    try:
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            name = nvml.nvmlDeviceGetName(h)
            uuid = nvml.nvmlDeviceGetUUID(h)
            mem = nvml.nvmlDeviceGetMemoryInfo(h).total
            devices.append(Device(str(i), model=_text(name), memory=int(mem),
                                  extra={"uuid": _text(uuid)}))
    except Exception as e:
        log.warning("cuda: NVML device query failed (%s); no GPUs", e)
        devices = []
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
    return devices


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class CUDAPlugin(AcceleratorPlugin):
    kind = "cuda"
    name = "cuda"

    def __init__(self, devices: list[Device] | None = None, shares_per_device: int = 0,
                 injection: str = "auto") -> None:
        super().__init__(detect_nvml_devices() if devices is None else devices, shares_per_device)
        self.injection = injection

    def device_contrib(self, devices: list[tuple[Device, Decimal]], opts: dict[str, Any]
                       ) -> ContainerContrib:
        ids = [d.id for d, _ in devices]
        injection = self.injection
        if injection == "auto":
            injection = "cdi" if opts.get("engine") == "podman" else "device-requests"
        hc: dict[str, Any]
        if injection == "cdi":
            hc = {"Devices": [{"PathOnHost": f"nvidia.com/gpu={i}", "PathInContainer": "",
                               "CgroupPermissions": "rwm"} for i in ids]}
        else:
            hc = {"DeviceRequests": [{"Driver": "nvidia", "DeviceIDs": ids,
                                      "Capabilities": [["gpu"]]}]}
        env = {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(len(ids))),
               "NVIDIA_VISIBLE_DEVICES": ",".join(ids),
               "WORKBAY_CUDA_DEVICES": ",".join(
                   f"{d.id}:{plain_decimal(self.share_fraction(a))}" for d, a in devices)}
        if self.shares_mode:
            frac = max(self.share_fraction(a) for _, a in devices)
            env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = str(max(1, min(100, int(frac * 100))))
            env["WORKBAY_DEVICE_MEMORY_LIMIT"] = str(
                sum(int(d.memory * self.share_fraction(a)) for d, a in devices))
        return ContainerContrib(env=env, host_config=hc)
