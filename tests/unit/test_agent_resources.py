"""Pure allocation logic of the agent's resource plugins."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbay.agent.resources import (
    InsufficientResources,
    InvalidResourceRequest,
    build_registry,
    slots_from_wire,
    to_decimal,
)
from workbay.agent.resources.accelerator import DeviceAllocator
from workbay.agent.resources.cpu import CPUAllocator, CPUPlugin, cpu_host_config, thread_count
from workbay.agent.resources.cuda import CUDAPlugin, detect_nvml_devices
from workbay.agent.resources.mem import MemPlugin, shm_size
from workbay.agent.resources.registry import ResourceRegistry
from workbay.agent.resources.simulated import SimulatedPlugin
from workbay.common.config import load_config
from workbay.common.domain import parse_bytes
from workbay.common.slots import ResourceSlot, plain_decimal


def test_sizes_are_parsed_by_the_one_byte_parser():
    assert parse_bytes("16g") == 16 * 2**30
    assert parse_bytes("512m") == 512 * 2**20
    assert parse_bytes("1.5GiB") == 3 * 2**29
    assert parse_bytes("64k") == 65536
    assert parse_bytes(1234) == 1234
    assert parse_bytes("1234") == 1234
    for bad in ("", "g", "-1", "1x", True):
        with pytest.raises(ValueError):
            parse_bytes(bad)


def test_decimals():
    assert to_decimal("4g", "mem") == D(4 * 2**30)
    assert to_decimal(0.5) == D("0.5")
    assert plain_decimal(D("2.000")) == "2" and plain_decimal(D("0.50")) == "0.5"
    assert plain_decimal(D("1E+3")) == "1000"
    for bad in ("-1", "NaN", "Infinity", "abc", True):
        with pytest.raises(InvalidResourceRequest):
            to_decimal(bad, "cpu")
    assert slots_from_wire({"cpu": "1", "mem": "1g"}) == {"cpu": D(1), "mem": D(2**30)}
    assert isinstance(slots_from_wire({"cpu": "1"}), ResourceSlot)
    with pytest.raises(InvalidResourceRequest, match="'CPU!'"):
        slots_from_wire({"CPU!": "1"})


def test_capacity_and_occupancy_are_resource_slots_and_never_mutated():
    reg = ResourceRegistry([CPUPlugin([0, 1]), MemPlugin(2**30)])
    cap = reg.capacity()
    assert isinstance(cap, ResourceSlot) and isinstance(reg.occupied(), ResourceSlot)
    reg.allocate("k1", ResourceSlot(cpu=1, mem=2**29), {})
    assert reg.free_capacity() == {"cpu": D(1), "mem": D(2**29)}
    assert cap == {"cpu": D(2), "mem": D(2**30)}  # an earlier reading stays as it was


def test_cpu_integer_requests_get_disjoint_cores():
    a = CPUAllocator([0, 1, 2, 3])
    assert a.allocate("k1", D(2)) == [0, 1]
    assert a.allocate("k2", D(1)) == [2]
    assert a.allocate("k3", D(1)) == [3]
    with pytest.raises(InsufficientResources):
        a.allocate("k4", D(1))
    a.free("k2")
    assert a.allocate("k4", D(1)) == [2]
    assert a.used() == D(4)


def test_cpu_fractions_share_cores_and_get_a_quota():
    a = CPUAllocator([4, 5])
    assert a.allocate("k1", D("0.5")) == [4]
    assert a.allocate("k2", D("0.5")) == [5]
    assert a.allocate("k3", D("0.5")) == [4]  # least loaded, lowest id
    assert a.allocate("k4", D("0.5")) == [5]
    with pytest.raises(InsufficientResources):
        a.allocate("k5", D("0.1"))
    assert cpu_host_config(D("0.5"), [4]) == {"CpusetCpus": "4", "NanoCpus": 500_000_000}
    assert cpu_host_config(D(2), [4, 5]) == {"CpusetCpus": "4,5"}
    assert thread_count(D("0.5")) == 1 and thread_count(D(3)) == 3


def test_cpu_rejects_bad_requests_and_restores():
    a = CPUAllocator([0, 1])
    with pytest.raises(InvalidResourceRequest):
        a.allocate("k", D(0))
    a.allocate("k", D(1))
    with pytest.raises(InvalidResourceRequest):
        a.allocate("k", D(1))
    b = CPUAllocator([0, 1])
    b.restore("k", D(1), [1])
    assert b.allocate("j", D(1)) == [0]
    with pytest.raises(ValueError):
        CPUAllocator([])
    with pytest.raises(ValueError):
        CPUAllocator([1, 1])


@settings(max_examples=200, deadline=None)
@given(cores=st.integers(1, 8),
       ops=st.lists(st.tuples(st.booleans(), st.integers(0, 9),
                              st.sampled_from([D("0.25"), D("0.5"), D(1), D(2), D(3)])),
                    max_size=40))
def test_cpu_never_overallocates(cores, ops):
    a = CPUAllocator(list(range(cores)))
    for alloc, kid, amount in ops:
        name = f"k{kid}"
        if alloc and name not in a.kernels:
            try:
                got = a.allocate(name, amount)
                assert 1 <= len(got) <= cores and len(set(got)) == len(got)
            except InsufficientResources:
                assert a.used() + amount > cores
        else:
            a.free(name)
        assert a.used() <= cores
        # Integer-only loads never put two kernels on one core.
        if all(amt == amt.to_integral_value() for amt, _ in a.kernels.values()):
            assert max(a.load().values(), default=D(0)) <= 1


def test_mem_limit_and_shmem():
    m = MemPlugin(capacity=2**30)
    rec = m.allocate("k1", {"mem": D(2**29)}, {"shmem": 2**20})
    assert rec == {"amount": 2**29, "shmem": 2**20}
    assert m.contrib(rec, {}).host_config == {"Memory": 2**29, "MemorySwap": 2**29,
                                              "ShmSize": 2**20}
    with pytest.raises(InsufficientResources):
        m.allocate("k2", {"mem": D(2**29 + 1)}, {})
    with pytest.raises(InvalidResourceRequest):
        m.allocate("k3", {"mem": D(2**20)}, {"shmem": 2**21})  # shmem > mem
    with pytest.raises(InvalidResourceRequest):
        m.allocate("k4", {"mem": D("0.5")}, {})
    assert shm_size(2**20, None) == 2**20  # default capped by mem
    assert shm_size(2**30, None) == 64 * 2**20
    m.free("k1")
    assert m.occupied() == {"mem": D(0)}


def test_whole_devices():
    a = DeviceAllocator(["0", "1", "2"])
    assert a.allocate("k1", D(2)) == {"0": D(1), "1": D(1)}
    with pytest.raises(InsufficientResources):
        a.allocate("k2", D(2))
    with pytest.raises(InvalidResourceRequest):
        a.allocate("k2", D("0.5"))
    assert a.allocate("k2", D(1)) == {"2": D(1)}
    a.free("k1")
    assert a.used() == D(1) and a.capacity() == D(3)


def test_shares_pack_small_requests_and_keep_whole_devices_free():
    a = DeviceAllocator(["0", "1"], shares_per_device=D(10))
    assert a.allocate("k1", D(3)) == {"0": D(3)}
    assert a.allocate("k2", D(5)) == {"0": D(5)}      # best fit: device 0 still has room
    assert a.allocate("k3", D(10)) == {"1": D(10)}    # a whole device
    assert a.allocate("k4", D(2)) == {"0": D(2)}
    with pytest.raises(InsufficientResources):
        a.allocate("k5", D("0.5"))
    a.free("k3")
    with pytest.raises(InsufficientResources):
        a.allocate("k5", D(12))
    a.free("k4")
    assert a.allocate("k5", D(12)) == {"1": D(10), "0": D(2)}  # a whole device + the rest


def test_shares_spread_when_no_device_fits():
    a = DeviceAllocator(["0", "1"], shares_per_device=D(4))
    a.allocate("k1", D(3))  # 0: 1 free
    a.allocate("k2", D(2))  # 1: 2 free
    got = a.allocate("k3", D(3))
    assert sum(got.values()) == D(3) and set(got) == {"0", "1"}
    assert all(v <= D(4) for v in a.usage().values())


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 4), spd=st.sampled_from([None, D(1), D(4), D(10)]),
       ops=st.lists(st.tuples(st.booleans(), st.integers(0, 7),
                              st.sampled_from([D("0.5"), D(1), D(2), D(3), D(5), D(12)])),
                    max_size=30))
def test_devices_never_overallocate(n, spd, ops):
    a = DeviceAllocator([str(i) for i in range(n)], spd)
    for alloc, kid, amount in ops:
        name = f"k{kid}"
        if alloc and name not in a.kernels:
            try:
                got = a.allocate(name, amount)
                assert sum(got.values()) == amount
            except (InsufficientResources, InvalidResourceRequest):
                pass
        else:
            a.free(name)
        assert all(u <= a.per_device for u in a.usage().values())
        assert a.used() <= a.capacity()


def test_simulated_plugin_env():
    p = SimulatedPlugin("cuda.device", 2, "16g")
    assert p.capacity() == {"cuda.device": D(2)}
    rec = p.allocate("k", {"cuda.device": D(2)}, {})
    env = p.contrib(rec, {}).env
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert env["WORKBAY_SIMULATED_DEVICES"] == "0:1,1:1"
    s = SimulatedPlugin("npu.shares", 1, "8g", shares_per_device=4)
    rec = s.allocate("k", {"npu.shares": D(1)}, {})
    env = s.contrib(rec, {}).env
    assert env["NPU_VISIBLE_DEVICES"] == "0"
    assert env["WORKBAY_SIMULATED_DEVICES"] == "0:0.25"
    assert env["WORKBAY_DEVICE_MEMORY_LIMIT"] == str(2 * 2**30)
    assert s.describe()["shares_per_device"] == 4
    with pytest.raises(ValueError):
        SimulatedPlugin("cuda", 1)


def test_cuda_without_nvml_reports_nothing():
    # This machine has no NVIDIA driver: the real NVML (when installed) fails to load.
    p = CUDAPlugin()
    assert p.devices == [] and p.capacity() == {} and p.describe() is None


class _FakeNVML:
    """Stands in for pynvml where no GPU exists, to check what is read from it."""

    class _Mem:
        total = 80 * 2**30

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100"

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h}"

    def nvmlDeviceGetMemoryInfo(self, h):
        return self._Mem()


class _BrokenNVML(_FakeNVML):
    def nvmlInit(self):
        raise RuntimeError("Driver Not Loaded")


def test_cuda_devices_and_injection():
    devices = detect_nvml_devices(_FakeNVML())
    assert [(d.id, d.model, d.extra["uuid"]) for d in devices] == \
        [("0", "NVIDIA H100", "GPU-0"), ("1", "NVIDIA H100", "GPU-1")]
    assert detect_nvml_devices(_BrokenNVML()) == []
    whole = CUDAPlugin(devices)
    rec = whole.allocate("k", {"cuda.device": D(1)}, {})
    c = whole.contrib(rec, {"engine": "docker"})
    assert c.host_config["DeviceRequests"][0]["DeviceIDs"] == ["0"]
    assert c.env["CUDA_VISIBLE_DEVICES"] == "0" and c.env["NVIDIA_VISIBLE_DEVICES"] == "0"
    c = whole.contrib(rec, {"engine": "podman"})
    assert c.host_config["Devices"][0]["PathOnHost"] == "nvidia.com/gpu=0"
    frac = CUDAPlugin(devices, shares_per_device=10)
    assert frac.capacity() == {"cuda.shares": D(20)}
    rec = frac.allocate("k", {"cuda.shares": D(5)}, {})
    env = frac.contrib(rec, {}).env
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "50"
    assert env["WORKBAY_DEVICE_MEMORY_LIMIT"] == str(40 * 2**30)


def test_registry_all_or_nothing():
    reg = ResourceRegistry([CPUPlugin([0, 1]), MemPlugin(2**30),
                            SimulatedPlugin("cuda.device", 1)])
    with pytest.raises(InsufficientResources):
        reg.allocate_many([
            ("a", {"cpu": D(1), "mem": D(2**20), "cuda.device": D(1)}, {}),
            ("b", {"cpu": D(1), "mem": D(2**20), "cuda.device": D(1)}, {}),
        ])
    assert all(v == 0 for v in reg.occupied().values())
    with pytest.raises(InvalidResourceRequest):
        reg.allocate("a", {"cpu": D(1), "mem": D(2**20), "tpu.device": D(1)}, {})
    recs = reg.allocate("a", {"cpu": D(1), "mem": D(2**20), "cuda.device": D(1)}, {})
    assert set(recs) == {"cpu", "mem", "sim-cuda.device"}
    contrib = reg.contrib(recs, {})
    assert contrib.env["CUDA_VISIBLE_DEVICES"] == "0"
    assert contrib.host_config["CpusetCpus"] == "0" and contrib.host_config["Memory"] == 2**20
    reg.free("a")
    reg2 = ResourceRegistry([CPUPlugin([0, 1]), MemPlugin(2**30),
                             SimulatedPlugin("cuda.device", 1)])
    reg2.restore("a", recs)
    assert reg2.occupied()["cuda.device"] == D(1)
    with pytest.raises(ValueError):
        ResourceRegistry([SimulatedPlugin("cuda.device", 1), SimulatedPlugin("cuda.device", 2)])


def test_registry_from_config():
    cfg = load_config(agent={"cpu_set": [0], "slots": {"mem": "1g"},
                             "simulated_devices": [{"slot": "cuda.shares", "count": 2,
                                                    "shares_per_device": 4}]})
    reg = build_registry(cfg.agent)
    assert reg.capacity() == {"cpu": D(1), "mem": D(2**30), "cuda.shares": D(8)}
    cfg = load_config(agent={"slots": {"cuda.shares": "4"},
                             "simulated_devices": [{"slot": "cuda.shares", "count": 2,
                                                    "shares_per_device": 4}]})
    assert build_registry(cfg.agent).capacity()["cuda.shares"] == D(4)
    with pytest.raises(ValueError):
        build_registry(load_config(agent={"slots": {"tpu.device": "1"}}).agent)
