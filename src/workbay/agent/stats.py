"""Kernel usage statistics from Docker Engine API stats samples (pure).

Podman 4.3 sends no ``precpu_stats``: CPU % is computed from two samples taken at different times
(the previous periodic sample, or a second one taken on demand). The result uses Backend.AI's
``last_stat`` shape: ``{metric: {"current", "capacity", "pct", "unit_hint"}}`` with decimal strings.
"""

from __future__ import annotations

from typing import Any


def _num(v: float | int) -> str:
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return f"{v:.2f}"


def cpu_usage_ns(sample: dict[str, Any]) -> int:
    return int(((sample.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0)


def io_bytes(sample: dict[str, Any]) -> tuple[int, int] | None:
    entries = (sample.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    if not entries:
        return None
    read = sum(int(e.get("value", 0)) for e in entries if str(e.get("op", "")).lower() == "read")
    write = sum(int(e.get("value", 0)) for e in entries if str(e.get("op", "")).lower() == "write")
    return read, write


def net_bytes(sample: dict[str, Any]) -> tuple[int, int]:
    nets = sample.get("networks") or {}
    rx = sum(int(n.get("rx_bytes", 0)) for n in nets.values())
    tx = sum(int(n.get("tx_bytes", 0)) for n in nets.values())
    return rx, tx


def compute_stats(cur: dict[str, Any], cur_t: float, prev: dict[str, Any] | None,
                  prev_t: float | None, cpu_capacity: float,
                  io_fallback: tuple[int, int] | None = None) -> dict[str, Any]:
    """Metrics of one kernel. ``cpu_capacity``: cores the kernel may use (100 % per core)."""
    used_ns = cpu_usage_ns(cur)
    util: float | None = None
    if prev is not None and prev_t is not None and cur_t > prev_t:
        delta = used_ns - cpu_usage_ns(prev)
        util = max(0.0, delta / ((cur_t - prev_t) * 1e9) * 100)
    mem = cur.get("memory_stats") or {}
    mem_used = int(mem.get("usage") or 0)
    mem_limit = int(mem.get("limit") or 0)
    io = io_bytes(cur) or io_fallback or (0, 0)
    rx, tx = net_bytes(cur)
    cap_pct = cpu_capacity * 100
    out: dict[str, Any] = {
        "cpu_used": {"current": _num(used_ns / 1e6), "capacity": None, "pct": None,
                     "unit_hint": "msec"},
        "cpu_util": {"current": _num(util) if util is not None else None,
                     "capacity": _num(cap_pct),
                     "pct": _num(util / cap_pct * 100) if util is not None and cap_pct else None,
                     "unit_hint": "percent"},
        "mem": {"current": str(mem_used), "capacity": str(mem_limit) if mem_limit else None,
                "pct": _num(mem_used / mem_limit * 100) if mem_limit else None,
                "unit_hint": "bytes"},
        "io_read": {"current": str(io[0]), "capacity": None, "pct": None, "unit_hint": "bytes"},
        "io_write": {"current": str(io[1]), "capacity": None, "pct": None, "unit_hint": "bytes"},
        "net_rx": {"current": str(rx), "capacity": None, "pct": None, "unit_hint": "bytes"},
        "net_tx": {"current": str(tx), "capacity": None, "pct": None, "unit_hint": "bytes"},
    }
    return out


# -- the node as a whole (the Agents tab's utilization and disk) ---------------------------------
def read_cpu_times(text: str) -> tuple[int, int]:
    """(busy, total) jiffies from the first line of /proc/stat."""
    fields = [int(x) for x in text.split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def read_meminfo(text: str) -> tuple[int, int]:
    """(used, total) bytes from /proc/meminfo (available memory is what is not used)."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[key] = int(parts[0]) * 1024
    total = values.get("MemTotal", 0)
    return total - values.get("MemAvailable", values.get("MemFree", 0)), total


def pct(used: float, total: float) -> str:
    return _num(round(100.0 * used / total, 2)) if total else "0"


class NodeStats:
    """CPU (since the previous sample), memory and the data directory's disk, as percentages."""

    def __init__(self, data_dir: str, proc: str = "/proc") -> None:
        self.data_dir, self.proc = data_dir, proc
        self.prev: tuple[int, int] | None = None

    def sample(self) -> dict[str, Any]:
        import shutil

        out: dict[str, Any] = {}
        try:
            with open(f"{self.proc}/stat") as f:
                busy, total = read_cpu_times(f.read())
            if self.prev is not None and total > self.prev[1]:
                out["cpu_util"] = {"pct": pct(busy - self.prev[0], total - self.prev[1])}
            self.prev = (busy, total)
            with open(f"{self.proc}/meminfo") as f:
                used, mtotal = read_meminfo(f.read())
            out["mem"] = {"current": _num(used), "capacity": _num(mtotal), "pct": pct(used, mtotal)}
        except (OSError, ValueError, IndexError):
            pass
        try:
            disk = shutil.disk_usage(self.data_dir)
            out["disk"] = {"current": _num(disk.used), "capacity": _num(disk.total), "pct": pct(disk.used, disk.total)}
        except OSError:
            pass
        return out
