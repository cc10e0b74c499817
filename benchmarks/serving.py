"""The inference endpoint's overhead: the same model server reached through the app-proxy's inference
listener and directly, in the same run.

No containers: ``tests/support/model_server.py`` processes are the replicas, each behind the runner's
real app gate (``workbay.runner.gate.Gate``, a process of its own as in a container), and the
app-proxy runs as ``workbay app-proxy`` in a process of its own (so the load generator here never
shares an interpreter with it).  The service is not public: every request through the endpoint
carries ``Authorization: Bearer <service token>`` (checked, and dropped, by the proxy).  Directly
means the replica's gate port, each connection opening with the gate's line as the proxy's do.
Alternating direct and endpoint rounds so machine load affects both alike:

* small requests (``GET /whoami``, a few bytes): a raw HTTP/1.1 keep-alive client, ``--concurrency``
  connections for ``--seconds`` per round → requests per second, p50/p99; and one connection
  (unloaded latency: what the proxy adds at p50);
* the same through the endpoint with two replicas (how far balancing carries on this machine);
* streaming: time to the first SSE event of ``POST /v1/completions`` with ``"stream": true``
  (p50/p99), and a ``--mib`` MiB ``GET /bytes`` on one connection → MiB/s (best of ``--downloads``).

Prints a table and the ratios (endpoint / direct); goals: ≥ 0.8× req/s, ≤ 1.5 ms added at p50.

Measurements that need the whole system (replica sessions, the manager's reconciler) are hooks at the
end of this file (``FULL_SYSTEM``): failover time, scale-up, cold start from zero; ``--full`` runs
those that are written.

Run: .venv/bin/python benchmarks/serving.py [--seconds 5] [--rounds 2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.ports import free_port  # noqa: E402
from workbay.appproxy.tokens import issue_service_token  # noqa: E402
from workbay.runner.protocol import gate_hello  # noqa: E402

SECRET = "bench-serving-secret-of-32-bytes-or-more"
SERVER = ROOT / "tests" / "support" / "model_server.py"
MiB = 1024 * 1024
GATE = """
import asyncio, sys
from workbay.runner.gate import Gate
async def main():
    gate = Gate(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
    await gate.start("127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""


# -- the processes ---------------------------------------------------------------------------------
class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.dir = Path(tempfile.mkdtemp(prefix="wb-bench-serving-"))

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.dir / f"p{len(self.procs)}.log", "w")
        proc = subprocess.Popen(list(args), env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Replica:
    def __init__(self, procs: Processes, name: str) -> None:
        self.name, self.port, self.gate_port = name, free_port(), free_port()
        self.secret = f"bench-gate-{name}"
        self.server = procs.start(sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", str(self.port),
                                  env={"MODEL_REPLICA_NAME": name, "MODEL_TOKEN_DELAY": "0.001"})
        self.gate = procs.start(sys.executable, "-c", GATE, str(self.gate_port), str(self.port), self.secret)

    def route(self) -> dict:
        return {"route_id": self.name, "host": "127.0.0.1", "port": self.gate_port, "app_secret": self.secret,
                "traffic_ratio": 1}


def start_app_proxy(procs: Processes) -> tuple[int, int, subprocess.Popen]:
    api, inference = free_port(), free_port()
    cfg = procs.dir / "workbay.toml"
    cfg.write_text(f'data_dir = "{procs.dir / "data"}"\n[appproxy]\nport = {api}\ninference_port = {inference}\n'
                   f'[secrets]\nappproxy = "{SECRET}"\n[logging]\nlevel = "WARNING"\n')
    proc = procs.start(sys.executable, "-m", "workbay.client.cli_entry", "app-proxy", "--config", str(cfg))
    return api, inference, proc


async def wait_port(port: int, first: bytes = b"") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


# -- HTTP load -------------------------------------------------------------------------------------
async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    left = length
    while left:
        chunk = await reader.read(min(left, 4 * MiB))
        if not chunk:
            raise ConnectionError("closed mid-body")
        left -= len(chunk)
    if status != 200:
        raise RuntimeError(f"HTTP {status}")
    return length


class Path_:
    """Where requests go: host, port, the line a connection opens with, the path prefix, headers."""

    def __init__(self, port: int, preamble: bytes, prefix: str, auth: str | None) -> None:
        self.port, self.preamble, self.prefix, self.auth = port, preamble, prefix, auth

    def request(self, method: str, path: str, body: bytes = b"") -> bytes:
        lines = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Accept: */*"]
        if self.auth:
            lines.append(f"Authorization: Bearer {self.auth}")
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=8 * MiB)
        if self.preamble:
            writer.write(self.preamble)
        return reader, writer


async def load(path: Path_, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """Requests per second and latencies of small GETs on ``concurrency`` keep-alive connections."""
    req = path.request("GET", "/whoami")
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await path.connect()
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                writer.write(req)
                await read_response(reader)
                latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - t0), latencies


async def first_token(path: Path_, count: int) -> list[float]:
    """Time to the first SSE event of a streamed completion (one connection, ``count`` requests)."""
    req = path.request("POST", "/v1/completions", b'{"prompt": "hi", "max_tokens": 8, "stream": true}')
    times = []
    reader, writer = await path.connect()
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            writer.write(req)
            got = await reader.readuntil(b"data: ")
            times.append(time.perf_counter() - t0)
            assert got.startswith(b"HTTP/1.1 200"), got[:100]
            await reader.readuntil(b"\r\n0\r\n\r\n")  # the last chunk
    finally:
        writer.close()
    return times


async def download(path: Path_, mib: int) -> float:
    reader, writer = await path.connect()
    try:
        t0 = time.perf_counter()
        writer.write(path.request("GET", f"/bytes?n={mib * MiB}"))
        got = await read_response(reader)
        elapsed = time.perf_counter() - t0
    finally:
        writer.close()
    assert got == mib * MiB, got
    return got / MiB / elapsed


# -- reporting -------------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def alternate(rnd: int, names: tuple[str, ...]) -> tuple[str, ...]:
    return names if rnd % 2 == 0 else names[::-1]


async def bench(args: argparse.Namespace) -> None:
    procs = Processes()
    try:
        replicas = [Replica(procs, "r0"), Replica(procs, "r1")]
        api, inference, proxy_proc = start_app_proxy(procs)
        replica_pids = [replicas[0].server.pid, replicas[0].gate.pid]
        for port in (api, inference, *(r.gate_port for r in replicas), *(r.port for r in replicas)):
            await wait_port(port)
        token = issue_service_token(SECRET, "bench", "t1", time.time() + 3600)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api}", timeout=30,
                                     headers={"X-Workbay-Secret": SECRET}) as http:
            for sid, name, routes in (("bench", "one", [replicas[0].route()]),
                                      ("bench2", "two", [r.route() for r in replicas])):
                resp = await http.put(f"/v1/services/{sid}", json={"name": name, "routes": routes})
                resp.raise_for_status()
        token2 = issue_service_token(SECRET, "bench2", "t2", time.time() + 3600)
        paths = {
            "direct": Path_(replicas[0].gate_port, gate_hello(replicas[0].secret), "", None),
            "endpoint": Path_(inference, b"", "/one", token),
            "endpoint, 2 replicas": Path_(inference, b"", "/two", token2),
        }
        for path in paths.values():  # warm-up: connections, pools, the servers' first requests
            await load(path, args.concurrency, 1.0)

        res: dict[str, dict[str, list[float]]] = {k: {"rps": [], "lat": [], "lat1": [], "ttft": [], "dl": []}
                                                  for k in paths}
        cpu = {"proxy": 0.0, "replica": 0.0, "proxied": 0, "direct": 0}
        for rnd in range(args.rounds):
            for name in alternate(rnd, tuple(paths)):
                before = cpu_seconds(proxy_proc.pid), sum(cpu_seconds(p) for p in replica_pids)
                rps, lat = await load(paths[name], args.concurrency, args.seconds)
                if name == "endpoint":
                    cpu["proxy"] += cpu_seconds(proxy_proc.pid) - before[0]
                    cpu["proxied"] += len(lat)
                elif name == "direct":
                    cpu["replica"] += sum(cpu_seconds(p) for p in replica_pids) - before[1]
                    cpu["direct"] += len(lat)
                res[name]["rps"].append(rps)
                res[name]["lat"] += lat
                _, lat1 = await load(paths[name], 1, args.seconds / 2)
                res[name]["lat1"] += lat1
            for name in alternate(rnd, ("direct", "endpoint")):
                res[name]["ttft"] += await first_token(paths[name], args.streams)
        for rnd in range(args.downloads):
            for name in alternate(rnd, ("direct", "endpoint")):
                res[name]["dl"].append(await download(paths[name], args.mib))

        print(f"\ninference endpoint vs direct — {platform.node()}, {os.cpu_count()} CPUs, python "
              f"{platform.python_version()}; {args.rounds} rounds × {args.seconds:g} s, {args.concurrency} "
              f"connections; {len(res['direct']['ttft'])} streams and {args.downloads} × {args.mib} MiB each")
        print(f"{'measure':<36} {'unit':>6} {'direct':>9} {'endpoint':>9} {'ratio':>7} {'2 replicas':>11} {'ratio':>7}")
        d, e, two = res["direct"], res["endpoint"], res["endpoint, 2 replicas"]

        def row(label: str, unit: str, pick: Callable[[dict[str, list[float]]], float],
                with_two: bool = True) -> None:
            dv, ev = pick(d), pick(e)
            line = f"{label:<36} {unit:>6} {dv:>9.2f} {ev:>9.2f} {ev / dv:>6.2f}x"
            if with_two:
                tv = pick(two)
                line += f" {tv:>11.2f} {tv / dv:>6.2f}x"
            print(line)

        row(f"small GET, {args.concurrency} connections", "req/s", lambda r: statistics.mean(r["rps"]))
        for p in (50, 99):
            row(f"  latency p{p} (loaded)", "ms", lambda r, p=p: pct(r["lat"], p) * 1e3)
        for p in (50, 99):
            row(f"small GET, 1 connection, p{p}", "ms", lambda r, p=p: pct(r["lat1"], p) * 1e3)
        for p in (50, 99):
            row(f"stream: first token p{p}", "ms", lambda r, p=p: pct(r["ttft"], p) * 1e3, with_two=False)
        row(f"{args.mib} MiB download (best)", "MiB/s", lambda r: max(r["dl"]), with_two=False)
        proxy_us = cpu["proxy"] / cpu["proxied"] * 1e6
        replica_us = cpu["replica"] / cpu["direct"] * 1e6
        print(f"\nCPU per small request: app-proxy {proxy_us:.0f} µs (≈ {1e6 / proxy_us:,.0f} req/s per core), "
              f"replica (model server + gate) {replica_us:.0f} µs (≈ {1e6 / replica_us:,.0f} req/s per core)")
        added = (pct(e["lat1"], 50) - pct(d["lat1"], 50)) * 1e3
        ratio = statistics.mean(e["rps"]) / statistics.mean(d["rps"])
        print(f"\ngoals: req/s ratio {ratio:.2f} (≥ 0.80: {'met' if ratio >= 0.8 else 'NOT met'}); "
              f"added at p50 (1 connection) {added:.3f} ms (≤ 1.5: {'met' if added <= 1.5 else 'NOT met'})")
        if args.full:
            for name, hook in FULL_SYSTEM.items():
                try:
                    print(f"{name}: {await hook(args)}")
                except NotImplementedError as ni:
                    print(f"{name}: not measured ({ni})")
    finally:
        procs.stop()


# -- hooks for measurements that need the whole system (replica sessions, the manager) ---------------
async def failover(args: argparse.Namespace) -> str:
    """A replica's container is killed under steady load: requests lost (expect 0: the retry), the
    time until the manager has a new replica in rotation, p99 during the gap."""
    raise NotImplementedError("needs a running Workbay with a 2-replica service (System)")


async def scale_up(args: argparse.Namespace) -> str:
    """``POST /services/{id}/scale`` 1 → 3 under load: time until all three take traffic, req/s before
    and after."""
    raise NotImplementedError("needs a running Workbay (System)")


async def cold_start(args: argparse.Namespace) -> str:
    """A service scaled to zero gets a request: time to its answer (the request waits at the proxy
    while the manager starts a replica)."""
    raise NotImplementedError("needs a running Workbay (System)")


FULL_SYSTEM: dict[str, Callable[[argparse.Namespace], Awaitable[str]]] = {
    "failover": failover, "scale-up": scale_up, "cold start": cold_start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each GET round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per path (alternating)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections of the loaded rounds")
    parser.add_argument("--streams", type=int, default=100, help="streamed completions per path and round")
    parser.add_argument("--downloads", type=int, default=2, help="downloads per path")
    parser.add_argument("--mib", type=int, default=256, help="size of each download")
    parser.add_argument("--full", action="store_true", help="also the whole-system hooks (FULL_SYSTEM)")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
