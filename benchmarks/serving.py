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

``--full`` (or ``--full-only``) also measures the whole system: a lite Workbay in this process
(storage-proxy, app-proxy, manager, one agent; ``tests/support/sessions.py``'s ``System``) whose
replicas are inference sessions in real Podman containers running the same model server from a model
folder with a ``model-definition.yaml``.  Short intervals (manager ``serving_interval`` 0.5 s, health
check every 0.5 s after 0.5 s; printed and saved) so the figures show the mechanism, not the
defaults' waits.  The steady load is ``--loops`` clients sending ``GET /whoami`` one after another in
a process of their own (the system under test shares this interpreter); times of the manager's view
come from polling ``GET /services/{id}`` every 0.2 s, those of a replica session from its status
history:

* failover: two HEALTHY replicas under load, ``podman kill`` of one's container → requests sent and
  lost (non-2xx or errors; goal 0), seconds from the kill until the victim leaves rotation and a new
  replica is HEALTHY, latency before and during the gap;
* scale-up: one replica, a rule ``endpoint`` ``requests_per_second`` > ``--threshold`` step +1 max 2;
  seconds from the load's start to the desired count 2 and to the second replica HEALTHY;
* cold start: a service created scaled to zero (desired 0): seconds from one request to its answer
  (held by the app-proxy while the manager wakes the service) against a plain ``POST /session`` of
  the same image and resources → RUNNING, alternating, in the same run: the ratio.

Every service and container started is removed at the end.  The figures go to ``--json`` (default
``var/benchmarks/serving-<UTC>.json``).

Run: .venv/bin/python benchmarks/serving.py [--seconds 5] [--rounds 2] [--concurrency 16]
     .venv/bin/python benchmarks/serving.py --full-only [--cold-runs 3] [--loops 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
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


async def quick(args: argparse.Namespace) -> dict:
    procs = Processes()
    summary: dict = {}
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
            summary[label.strip()] = {"unit": unit, "direct": round(dv, 3), "endpoint": round(ev, 3)}
            line = f"{label:<36} {unit:>6} {dv:>9.2f} {ev:>9.2f} {ev / dv:>6.2f}x"
            if with_two:
                tv = pick(two)
                summary[label.strip()]["endpoint, 2 replicas"] = round(tv, 3)
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
        summary["cpu_us_per_request"] = {"app-proxy": round(proxy_us, 1), "replica": round(replica_us, 1)}
        summary["goals"] = {"rps_ratio": round(ratio, 3), "added_p50_ms": round(added, 3)}
        print(f"\ngoals: req/s ratio {ratio:.2f} (≥ 0.80: {'met' if ratio >= 0.8 else 'NOT met'}); "
              f"added at p50 (1 connection) {added:.3f} ms (≤ 1.5: {'met' if added <= 1.5 else 'NOT met'})")
        return summary
    finally:
        procs.stop()


# -- the whole system: replica sessions in containers, the manager's serving reconciler -------------
# Short intervals so the figures show the mechanism rather than the defaults' waits (10 s health
# interval, 60 s initial delay, 2 s serving interval): said in the output and saved with the figures.
HEALTH = {"path": "/health", "interval": 0.5, "max_retries": 10, "max_wait_time": 2.0, "initial_delay": 0.5}
MANAGER = {"serving_interval": 0.5, "service_wake_timeout": 120.0}
POLL = 0.2  # how often the benchmark reads GET /services/{id} (the resolution of the times below)
RESOURCES = {"cpu": 1, "mem": "256m"}
DEFINITION = ("models:\n  - name: bench-model\n    model_path: /models\n    service:\n"
              "      start_command: [python3, /models/model_server.py, --port, '8000']\n      port: 8000\n"
              f"      health_check: {json.dumps(HEALTH)}\n")
# The client runs in a process of its own: the system under test (manager, agent, app-proxy) runs
# in threads of this one and must not share its interpreter with the load.
LOADGEN = """
import asyncio, json, signal, sys, time
import httpx
async def main(url, loops, pause, out):
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    rows = []
    async def loop():
        async with httpx.AsyncClient(timeout=120) as http:
            while not stop.is_set():
                t0 = time.time()
                try:
                    status = (await http.get(url)).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                rows.append((t0, time.time(), status))
                await asyncio.sleep(pause)
    print("ready", flush=True)
    await asyncio.gather(*(loop() for _ in range(loops)))
    with open(out, "w") as f:
        json.dump(rows, f)
asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
"""


class LoadGen:
    """``loops`` clients, each sending ``GET url`` one after another (``pause`` s apart) until stopped;
    every request's (sent, answered, status or error name), in wall-clock time."""

    def __init__(self, url: str, loops: int, pause: float, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen([sys.executable, "-c", LOADGEN, url, str(loops), str(pause), str(out)],
                                     stdout=subprocess.PIPE, text=True)
        self.started = 0.0

    async def start(self) -> LoadGen:
        line = await asyncio.to_thread(self.proc.stdout.readline)  # type: ignore[union-attr]
        if line.strip() != "ready":
            raise RuntimeError("the load generator did not start")
        self.started = time.time()
        return self

    async def stop(self) -> list[tuple[float, float, int | str]]:
        self.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(self.proc.wait, 180)
        return [tuple(r) for r in json.loads(self.out.read_text())]


def lost(rows: list[tuple[float, float, int | str]]) -> list[int | str]:
    return [r[2] for r in rows if not (isinstance(r[2], int) and 200 <= r[2] < 300)]


def latencies_ms(rows: list[tuple[float, float, int | str]], since: float, until: float) -> list[float]:
    return [(b - a) * 1e3 for a, b, _ in rows if since <= a < until]


class Marks:
    """When (wall clock) each condition was first seen true while polling."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.at: dict[str, float] = {}

    def see(self, name: str, condition: bool) -> None:
        if condition and name not in self.at:
            self.at[name] = time.time()

    def since(self, name: str) -> float | None:
        return round(self.at[name] - self.origin, 3) if name in self.at else None


class Whole:
    """A lite Workbay (storage-proxy, app-proxy, manager, one agent; real Podman containers) with a
    model folder holding the stand-in model server, used by the three measurements below."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from tests.support.sessions import System

        self.args, self.workdir = args, workdir
        self.sysm = System(workdir / "system", agent_slots={"cpu": "6", "mem": "4g"}, manager=MANAGER)
        self.services: list[str] = []

    async def __aenter__(self) -> Whole:
        from tests.support.sessions import engine_problem

        problem = engine_problem()
        if problem:
            raise SystemExit(f"the whole-system measurements need real containers: {problem}")
        await self.sysm.start(appproxy=True)
        self.user = await self.sysm.login("user@workbay.local")
        self.model = f"bench-model-{os.getpid()}"
        await self.user.post("/folders", json={"name": self.model, "usage_mode": "model"})
        await self.upload("model_server.py", SERVER.read_bytes())
        await self.upload("model-definition.yaml", DEFINITION.encode())
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            for sid in self.services:
                await self.delete_service(sid)
            await self.sysm.terminate_all()
        finally:
            await self.sysm.close()

    async def upload(self, path: str, data: bytes) -> None:
        r = await self.user.post(f"/folders/{self.model}/request-upload", json={"path": path, "size": len(data)})
        async with httpx.AsyncClient() as http:
            resp = await http.patch(r["url"], params={"token": r["token"]}, content=data, headers={
                "Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
            resp.raise_for_status()

    def endpoint(self, name: str) -> str:
        return f"http://127.0.0.1:{self.sysm.config.appproxy.inference_port}/{name}"

    async def create_service(self, prefix: str, replicas: int) -> tuple[str, str]:
        from tests.support.sessions import IMAGE

        name = f"{prefix}-{os.getpid()}"
        sid = (await self.user.post("/services", json={
            "name": name, "image": IMAGE, "desired_session_count": replicas, "open_to_public": True,
            "config": {"model": self.model, "resources": RESOURCES}}))["endpoint_id"]
        self.services.append(sid)
        return sid, name

    async def delete_service(self, sid: str) -> None:
        from tests.support.sessions import wait_for
        from workbay.client.sdk import APIError

        async def gone() -> bool:
            try:
                return (await self.info(sid))["status"] == "DESTROYED"
            except APIError as err:
                return err.status == 404
        try:
            await self.user.delete(f"/services/{sid}")
        except APIError:
            pass
        await wait_for(gone, 180, f"service {sid} destroyed", interval=POLL)
        self.services.remove(sid)

    async def info(self, sid: str) -> dict:
        return await self.user.get(f"/services/{sid}")

    async def session_steps(self, session_id: str, origin: float) -> dict[str, float]:
        """Seconds from ``origin`` (wall clock) to each status the session went through (its history)."""
        steps: dict[str, float] = {}
        for entry in (await self.user.get(f"/session/{session_id}/status-history"))["result"]:
            at = datetime.fromisoformat(entry["timestamp"])
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            steps.setdefault(f"session {entry['status']}", round(at.timestamp() - origin, 3))
        return steps

    async def wait_healthy(self, sid: str, replicas: int, timeout: float = 300) -> dict:
        from tests.support.sessions import wait_for

        async def healthy() -> dict | None:
            svc = await self.info(sid)
            ok = [r for r in svc["routes"] if r["status"] == "HEALTHY"]
            return svc if svc["status"] == "HEALTHY" and len(ok) == replicas == len(svc["routes"]) else None
        return await wait_for(healthy, timeout, f"service {sid} with {replicas} healthy replicas", interval=POLL)

    async def watch(self, sid: str, marks: Marks, see: Callable[[dict, Marks], bool], timeout: float,
                    what: str) -> None:
        """Polls the service every POLL s, letting ``see`` record marks, until it returns True."""
        from tests.support.sessions import wait_for

        async def done() -> bool:
            return see(await self.info(sid), marks)
        await wait_for(done, timeout, what, interval=POLL)


async def failover(whole: Whole, args: argparse.Namespace) -> dict:
    """Two healthy replicas under a steady stream of small requests; one replica's container is
    killed (``podman kill``): requests lost (goal 0: the proxy retries on the other replica), when the
    manager takes the victim out, and when a new replica is HEALTHY."""
    from tests.support.sessions import containers

    sid, name = await whole.create_service("bench-failover", 2)
    svc = await whole.wait_healthy(sid, 2)
    before = {r["route_id"] for r in svc["routes"]}
    victim = svc["routes"][0]
    [ctr] = [c for c in containers("ai.backend.session-id", victim["session_id"]) if c.get("State") == "running"]
    load = await LoadGen(f"{whole.endpoint(name)}/whoami", args.loops, args.pause,
                         whole.workdir / "failover.json").start()
    await asyncio.sleep(args.steady)
    t_kill = time.time()
    await asyncio.to_thread(subprocess.run, ["podman", "kill", ctr["Id"]], check=True, capture_output=True,
                            timeout=60)
    t_killed = time.time()
    marks = Marks(t_kill)

    def see(svc: dict, m: Marks) -> bool:
        states = {r["route_id"]: r["status"] for r in svc["routes"]}
        fresh = [rid for rid in states if rid not in before]
        m.see("victim out of rotation", states.get(victim["route_id"]) != "HEALTHY")
        m.see("new replica started", bool(fresh))
        m.see("new replica HEALTHY", any(states[rid] == "HEALTHY" for rid in fresh))
        healthy = [rid for rid, st in states.items() if st == "HEALTHY"]
        m.see("service HEALTHY, 2 replicas", svc["status"] == "HEALTHY" and len(healthy) == 2
              and victim["route_id"] not in healthy)
        return "service HEALTHY, 2 replicas" in m.at
    try:
        await whole.watch(sid, marks, see, 300, "the killed replica replaced")
        await asyncio.sleep(args.steady)  # traffic after the replacement counts too
    finally:
        rows = await load.stop()
    t_back = marks.at["new replica HEALTHY"]
    fresh = [r for r in (await whole.info(sid))["routes"] if r["route_id"] not in before and r["session_id"]]
    steps = await whole.session_steps(fresh[0]["session_id"], t_kill) if fresh else {}
    bad = lost(rows)
    gap = latencies_ms(rows, t_kill, t_back)
    steady = latencies_ms(rows, 0, t_kill)
    await whole.delete_service(sid)
    return {
        "requests_sent": len(rows), "requests_lost": len(bad), "lost": [str(b) for b in bad[:20]],
        "load_rps": round(len(rows) / (rows[-1][1] - rows[0][0]), 1),
        "podman_kill_s": round(t_killed - t_kill, 3),
        **{f"kill_to_{k.replace(' ', '_').replace(',', '')}_s": marks.since(k) for k in marks.at},
        "kill_to_new_replica_session_s": steps,
        "latency_ms_before_kill": {"p50": round(pct(steady, 50), 2), "p99": round(pct(steady, 99), 2),
                                   "max": round(max(steady), 2), "requests": len(steady)},
        "latency_ms_during_gap": {"p50": round(pct(gap, 50), 2), "p99": round(pct(gap, 99), 2),
                                  "max": round(max(gap), 2), "requests": len(gap)},
    }


async def scale_up(whole: Whole, args: argparse.Namespace) -> dict:
    """One healthy replica and an autoscaling rule (``endpoint`` ``requests_per_second`` >
    threshold, step +1, max 2); load starts: when the manager raises the desired count and when the
    second replica is HEALTHY."""
    sid, name = await whole.create_service("bench-scale", 1)
    await whole.wait_healthy(sid, 1)
    rule = {"metric_source": "endpoint", "metric_name": "requests_per_second", "comparator": "gt",
            "threshold": str(args.threshold), "step_size": 1, "cooldown_seconds": 60, "max_replicas": 2}
    await whole.user.post(f"/services/{sid}/auto-scaling-rules", json=rule)
    load = await LoadGen(f"{whole.endpoint(name)}/whoami", args.loops, args.pause,
                         whole.workdir / "scale.json").start()
    marks = Marks(load.started)

    def see(svc: dict, m: Marks) -> bool:
        m.see("desired 2", svc["desired_session_count"] == 2)
        m.see("second replica started", len(svc["routes"]) >= 2)
        m.see("second replica HEALTHY", sum(r["status"] == "HEALTHY" for r in svc["routes"]) >= 2)
        return "second replica HEALTHY" in m.at
    try:
        await whole.watch(sid, marks, see, 300, "the second replica healthy")
    finally:
        rows = await load.stop()
    await whole.delete_service(sid)
    return {"rule": rule, "load_rps": round(len(rows) / (rows[-1][1] - rows[0][0]), 1),
            "requests_lost": len(lost(rows)),
            **{f"load_to_{k.replace(' ', '_')}_s": marks.since(k) for k in marks.at}}


async def plain_session(whole: Whole, name: str) -> float:
    """``POST /session`` of the replicas' image and resources until its answer (RUNNING)."""
    from tests.support.sessions import IMAGE

    t0 = time.perf_counter()
    created = await whole.user.post("/session", json={"image": IMAGE, "name": name,
                                                      "config": {"resources": RESOURCES}})
    elapsed = time.perf_counter() - t0
    if created["status"] != "RUNNING":
        raise RuntimeError(f"session {name} did not start: {created}")
    await whole.user.delete(f"/session/{created['sessionId']}")
    await whole.sysm.wait_status(whole.user, created["sessionId"], ("TERMINATED", "CANCELLED", "ERROR"))
    return elapsed


async def cold_start(whole: Whole, args: argparse.Namespace) -> dict:
    """A service scaled to zero (desired 0) gets one request, held at the app-proxy while the manager
    wakes the service and a replica starts: the time to its answer, against a plain session start
    measured in the same run (alternating)."""
    sid, name = await whole.create_service("bench-cold", 0)

    async def at_zero() -> None:
        await whole.watch(sid, Marks(0), lambda svc, m: not svc["routes"] and svc["status"] == "HEALTHY",
                          180, "no replica left")
        await asyncio.sleep(2)  # the routing table (wake: true) reaches the app-proxy in that pass; a margin

    await at_zero()
    await plain_session(whole, "bench-plain-warmup")
    cold: list[dict] = []
    plain: list[float] = []
    async with httpx.AsyncClient(timeout=MANAGER["service_wake_timeout"] + 60) as http:
        for rnd in range(args.cold_runs):
            for what in alternate(rnd, ("cold", "plain")):
                if what == "plain":
                    plain.append(await plain_session(whole, f"bench-plain-{rnd}"))
                    continue
                t0 = time.time()
                marks = Marks(t0)
                answered_event = asyncio.Event()

                def see(svc: dict, m: Marks, answered: asyncio.Event = answered_event) -> bool:
                    if answered.is_set():  # marks only from polls made before the answer
                        return True
                    m.see("woken (desired 1)", svc["desired_session_count"] >= 1)
                    m.see("replica started", bool(svc["routes"]))
                    m.see("replica HEALTHY", any(r["status"] == "HEALTHY" for r in svc["routes"]))
                    return False
                # Not cancelled: a request dropped mid-way makes the manager log a traceback.
                watcher = asyncio.create_task(whole.watch(sid, marks, see, 300, "the cold request answered"))
                try:
                    resp = await http.get(f"{whole.endpoint(name)}/whoami")
                    answered = time.time() - t0
                finally:
                    answered_event.set()
                    await asyncio.gather(watcher, return_exceptions=True)
                if resp.status_code != 200:
                    raise RuntimeError(f"cold request answered {resp.status_code}: {resp.text}")
                routes = (await whole.info(sid))["routes"]
                steps = await whole.session_steps(routes[0]["session_id"], t0) if routes else {}
                cold.append({"answer_s": round(answered, 3), **{k: marks.since(k) for k in marks.at}, **steps})
                await whole.user.post(f"/services/{sid}/scale", json={"to": 0})
                await at_zero()
    await whole.delete_service(sid)
    med_cold = statistics.median(c["answer_s"] for c in cold)
    med_plain = statistics.median(plain)
    return {"runs": cold, "plain_session_s": [round(p, 3) for p in plain],
            "median_answer_s": round(med_cold, 3), "median_plain_session_s": round(med_plain, 3),
            "ratio": round(med_cold / med_plain, 2)}


FULL_SYSTEM: dict[str, Callable[[Whole, argparse.Namespace], Awaitable[dict]]] = {
    "failover": failover, "scale-up": scale_up, "cold start": cold_start}


def print_full(res: dict, args: argparse.Namespace) -> None:
    print(f"\nwhole system — {platform.node()}, {os.cpu_count()} CPUs, load average {load_average()}; "
          f"manager serving_interval {MANAGER['serving_interval']} s, scheduler_interval 0.5 s; "
          f"health check {HEALTH}; the client polls GET /services/{{id}} every {POLL} s; "
          f"load: {args.loops} loops of GET /whoami, {args.pause} s apart")
    print(f"{'measure':<52} {'value':>9} {'unit':<5} {'baseline':>9} {'ratio':>7}")

    def row(label: str, value: object, unit: str = "s", base: float | None = None) -> None:
        if value is None:
            value = "-"
        line = f"{label:<52} {value:>9} {unit:<5}"
        if base is not None and isinstance(value, float | int):
            line += f" {base:>9.3f} {value / base:>6.2f}x"
        print(line)
    if f := res.get("failover"):
        row("failover: requests sent", f["requests_sent"], "")
        row("failover: requests lost (goal 0)", f["requests_lost"], "")
        row("failover: load", f["load_rps"], "req/s")
        for key, label in (("victim_out_of_rotation", "victim out of rotation (manager)"),
                           ("new_replica_started", "new replica started"),
                           ("new_replica_HEALTHY", "new replica HEALTHY"),
                           ("service_HEALTHY_2_replicas", "service HEALTHY with 2 replicas")):
            row(f"failover: kill → {label}", f.get(f"kill_to_{key}_s"))
        for key, value in f["kill_to_new_replica_session_s"].items():
            row(f"  kill → new replica's {key}", value)
        for when in ("before_kill", "during_gap"):
            lat = f[f"latency_ms_{when}"]
            row(f"failover: latency p50 / p99 / max {when.replace('_', ' ')}",
                f"{lat['p50']}/{lat['p99']}/{lat['max']}", "ms")
    if s := res.get("scale-up"):
        row(f"scale-up: load (rule rps > {args.threshold}, +1, max 2)", s["load_rps"], "req/s")
        for key in ("desired_2", "second_replica_started", "second_replica_HEALTHY"):
            row(f"scale-up: load start → {key.replace('_', ' ')}", s.get(f"load_to_{key}_s"))
        row("scale-up: requests lost", s["requests_lost"], "")
    if c := res.get("cold start"):
        base = c["median_plain_session_s"]
        row(f"cold start: request → answer (median of {len(c['runs'])})", c["median_answer_s"], "s", base)
        keys = dict.fromkeys(k for r in c["runs"] for k in r if k != "answer_s")
        for key in keys:  # seen by polling (resolution POLL) or from the replica session's history
            row(f"  request → {key} (median)",
                round(statistics.median(r[key] for r in c["runs"] if r.get(key) is not None), 3))
        row("plain session: POST /session → RUNNING (median)", base)


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


async def full(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="wb-bench-serving-full-"))
    res: dict = {"settings": {"manager": {**MANAGER, "scheduler_interval": 0.5}, "health_check": HEALTH,
                              "poll_s": POLL, "loops": args.loops, "pause_s": args.pause,
                              "resources": RESOURCES, "load_average_start": load_average()}}
    async with Whole(args, workdir) as whole:
        for name, measure in FULL_SYSTEM.items():
            if name in args.skip:
                continue
            print(f"  {name} …", flush=True)
            res[name] = await measure(whole, args)
    res["settings"]["load_average_end"] = load_average()
    print_full(res, args)
    return res


async def bench(args: argparse.Namespace) -> None:
    res: dict = {"machine": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
                 "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not args.full_only:
        res["quick"] = await quick(args)
    if args.full or args.full_only:
        res["full"] = await full(args)
    out = Path(args.json) if args.json else ROOT / "var" / "benchmarks" / f"serving-{res['started']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nsaved {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each GET round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per path (alternating)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections of the loaded rounds")
    parser.add_argument("--streams", type=int, default=100, help="streamed completions per path and round")
    parser.add_argument("--downloads", type=int, default=2, help="downloads per path")
    parser.add_argument("--mib", type=int, default=256, help="size of each download")
    whole = parser.add_argument_group("whole system (real containers)")
    whole.add_argument("--full", action="store_true", help="also the whole-system measurements")
    whole.add_argument("--full-only", action="store_true", help="only the whole-system measurements")
    whole.add_argument("--skip", action="append", default=[], choices=list(FULL_SYSTEM),
                       help="leave this whole-system measurement out (repeatable)")
    whole.add_argument("--loops", type=int, default=4, help="client loops of the steady load")
    whole.add_argument("--pause", type=float, default=0.02, help="seconds each loop waits between requests")
    whole.add_argument("--steady", type=float, default=3.0, help="seconds of load before the kill and after "
                       "the replacement (failover)")
    whole.add_argument("--threshold", type=float, default=5.0, help="the scale-up rule's requests per second")
    whole.add_argument("--cold-runs", type=int, default=3, help="cold starts (and plain session starts)")
    parser.add_argument("--json", help="where to save the figures (default var/benchmarks/serving-<UTC>.json)")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
