"""The app-proxy's overhead: the same app reached through the proxy and directly at the
container's published port, in the same run.

A throwaway Workbay (``workbay up``: manager, agent, app-proxy, … in a process of its own, so the
load generator here never shares an interpreter with the proxy; SQLite and a host-port window of
its own) runs one session of ``localhost/workbay/python:3.11`` with preopen port 8080.  Inside it
a small keep-alive HTTP/1.1 server (asyncio, started through the execute API) serves ``/small``
(6 bytes) and ``/big`` (256 MiB).  ``start-service`` opens the circuits; the browser's opening
link gives the circuit cookie.  Directly means ``kernel_host:host_port`` of the session's service
ports (what the proxy itself connects to), each connection opening with the session's app-gate line
as the proxy's do (runner/gate.py: the published port opens to nothing else).  Measured, alternating direct and proxy rounds so
machine load affects both alike:

* small GETs: a raw HTTP/1.1 keep-alive client (so the client is not the bottleneck),
  ``--concurrency`` connections for ``--seconds`` per round → requests per second, p50/p99;
  and one connection (unloaded latency, p50/p99);
* 256 MiB download on one connection → MiB/s (best of ``--downloads``);
* terminal keystroke round-trip: the ``ttyd`` app (terminado protocol over WebSocket, tmux):
  send ``["stdin", "x"]``, wait for the ``["stdout", …]`` echo → p50/p99.

Prints a table and the ratios (proxy / direct).

Run: .venv/bin/python benchmarks/appproxy.py [--seconds 5] [--rounds 2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.ports import free_port_base  # noqa: E402
from tests.support.sessions import host_port_range  # noqa: E402
from workbay.client.sdk import Client  # noqa: E402
from workbay.common.config import load_config  # noqa: E402
from workbay.common.secrets import ensure_secrets  # noqa: E402
from workbay.manager.services.session_apps import app_secret  # noqa: E402
from workbay.runner.protocol import gate_hello  # noqa: E402

ADMIN_PASSWORD = "Bench-appr0xy!pw"
IMAGE = "localhost/workbay/python:3.11"
APP_PORT = 8080
BIG = 256 * 1024 * 1024
MiB = 1024 * 1024

# The app inside the session: keep-alive HTTP/1.1, /small and /big (zeros, 1 MiB writes).
SERVER = r'''
import asyncio
BIG = %d
CHUNK = bytes(1 << 20)
async def handle(r, w):
    try:
        while True:
            line = await r.readline()
            if not line:
                break
            while (await r.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = line.split()[1] if len(line.split()) > 1 else b"/"
            if path == b"/big":
                w.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %%d\r\n\r\n" %% BIG)
                left = BIG
                while left:
                    n = min(left, len(CHUNK))
                    w.write(CHUNK[:n])
                    await w.drain()
                    left -= n
            else:
                w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
                await w.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        w.close()
async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", %d, backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
''' % (BIG, APP_PORT)  # noqa: UP031 -- the script's own f-strings would clash

START_SERVER = f'''
import os, subprocess, sys
open("/home/work/bench_server.py", "w").write({SERVER!r})
subprocess.Popen([sys.executable, "/home/work/bench_server.py"], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("started")
'''


# -- the system ------------------------------------------------------------------------------------
class Up:
    """`workbay up` in a subprocess, with a host-port window of its own."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wb-bench-appproxy-"))
        self.base = free_port_base()
        cfg = self.dir / "workbay.toml"
        cfg.write_text(f'[agent]\nid = "bench-appproxy-{self.base}"\nport_range = "{host_port_range()}"\n')
        env = {**os.environ, "WORKBAY_ADMIN_PASSWORD": ADMIN_PASSWORD}
        self.log = open(self.dir / "up.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "workbay.client.cli_entry", "up", "--data-dir",
                                      str(self.dir / "data"), "--port-base", str(self.base), "--config", str(cfg)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.manager = f"http://127.0.0.1:{self.base + 1}"

    async def wait(self) -> None:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(timeout=2) as http:
            for port in (self.base + 1, self.base + 4, self.base + 5):
                while True:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"workbay up exited: {(self.dir / 'up.log').read_text()[-2000:]}")
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError("workbay up did not become healthy")
                    await asyncio.sleep(0.3)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def admin_client(url: str) -> Client:
    async with Client(url) as anon:
        keys = (await anon.post("/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": "admin@workbay.local",
            "password": ADMIN_PASSWORD}))["data"]
    return Client(url, keys["access_key"], keys["secret_key"], timeout=300)


async def wait_image(admin: Client) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        agents = (await admin.get("/admin/agents"))["items"]
        images = (await admin.get("/images", params={"installed": "true"}))["items"]
        if any(a["status"] == "ALIVE" for a in agents) and any(i["name"] == IMAGE for i in images):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the agent did not report the image")


async def run_code(admin: Client, sid: str, code: str) -> str:
    body: dict[str, Any] = {"mode": "query", "code": code, "runId": "bench"}
    out = ""
    while True:
        result = (await admin.post(f"/session/{sid}", json=body))["result"]
        out += "".join(d for t, d in result.get("console") or [] if t in ("stdout", "stderr"))
        if result["status"] != "continued":
            return out
        body = {"mode": "continue", "code": "", "runId": "bench"}


async def circuit_cookie(opened: dict[str, Any]) -> str:
    async with httpx.AsyncClient(timeout=30) as browser:
        resp = await browser.get(opened["url"])
        assert resp.status_code in (302, 303, 307), resp.status_code
        return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


def direct_addr(info: dict[str, Any], name: str) -> tuple[str, int]:
    for kernel in info.get("kernels") or []:
        if kernel.get("cluster_role") == "main":
            for p in kernel.get("service_ports") or []:
                if p.get("name") == name and p.get("host_ports"):
                    return p.get("kernel_host") or "127.0.0.1", int(p["host_ports"][0])
    for p in info.get("service_ports") or []:
        if p.get("name") == name and p.get("host_ports"):
            return p.get("kernel_host") or "127.0.0.1", int(p["host_ports"][0])
    raise LookupError(f"no published port for {name}")


# -- HTTP load -------------------------------------------------------------------------------------
async def read_response(reader: asyncio.StreamReader, sink: bool = False) -> int:
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


def request(host: str, port: int, path: str, cookie: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: */*"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def load(host: str, port: int, cookie: str | None, preamble: bytes, concurrency: int, seconds: float
               ) -> tuple[int, list[float]]:
    req = request(host, port, "/small", cookie)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port, limit=8 * MiB)
        writer.write(preamble)
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
    return len(latencies), [*latencies, time.perf_counter() - t0]


async def download(host: str, port: int, cookie: str | None, preamble: bytes) -> float:
    reader, writer = await asyncio.open_connection(host, port, limit=8 * MiB)
    writer.write(preamble)
    try:
        t0 = time.perf_counter()
        writer.write(request(host, port, "/big", cookie))
        got = await read_response(reader, sink=True)
        elapsed = time.perf_counter() - t0
    finally:
        writer.close()
    assert got == BIG, got
    return got / MiB / elapsed


# -- terminal --------------------------------------------------------------------------------------
async def keystrokes(url: str, cookie: str | None, preamble: bytes, count: int) -> list[float]:
    headers = {"Cookie": cookie} if cookie else {}
    times: list[float] = []
    u = urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port))
    sock.sendall(preamble)
    sock.setblocking(False)
    async with websockets.connect(url, additional_headers=headers, max_size=None, sock=sock) as ws:
        await ws.send(json.dumps(["set_size", 24, 200]))
        await ws.send(json.dumps(["stdin", "clear\r"]))
        await asyncio.sleep(1.0)
        while True:  # drain the screen
            try:
                await asyncio.wait_for(ws.recv(), 0.3)
            except TimeoutError:
                break
        for i in range(count):
            key = "x" if i % 2 == 0 else "\x7f"  # type and erase: the line never grows
            t0 = time.perf_counter()
            await ws.send(json.dumps(["stdin", key]))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg[0] == "stdout":
                    break
            times.append(time.perf_counter() - t0)
            await asyncio.sleep(0.01)  # a fast typist; tmux's output of the previous key is done
            while True:
                try:
                    await asyncio.wait_for(ws.recv(), 0.005)
                except TimeoutError:
                    break
    return times


# -- reporting -------------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def bench(args: argparse.Namespace) -> None:
    up = Up()
    admin = None
    try:
        await up.wait()
        admin = await admin_client(up.manager)
        await wait_image(admin)
        created = await admin.post("/session", json={
            "image": IMAGE, "name": "bench-appproxy",
            "config": {"resources": {"cpu": 1, "mem": "1g"}, "preopen_ports": [APP_PORT]}})
        assert created["status"] == "RUNNING", created
        sid = created["sessionId"]
        assert "started" in await run_code(admin, sid, START_SERVER)
        http_c = await admin.post(f"/session/{sid}/start-service", json={"app": str(APP_PORT)})
        tty_c = await admin.post(f"/session/{sid}/start-service", json={"app": "ttyd"})
        info = await admin.get(f"/session/{sid}")
        d_host, d_port = direct_addr(info, str(APP_PORT))
        t_host, t_port = direct_addr(info, "ttyd")
        p_host = urlsplit(http_c["url"]).hostname or "127.0.0.1"
        http_cookie, tty_cookie = await circuit_cookie(http_c), await circuit_cookie(tty_c)
        gate = gate_hello(app_secret(ensure_secrets(load_config(data_dir=up.dir / "data")), sid))
        paths = {"direct": (d_host, d_port, None, gate), "proxy": (p_host, http_c["port"], http_cookie, b"")}
        # warm-up (connections, the server's first requests, the proxy's upstream pool)
        for host, port, cookie, pre in paths.values():
            await load(host, port, cookie, pre, args.concurrency, 1.0)

        results: dict[str, dict[str, list[float]]] = {k: {"rps": [], "lat": [], "lat1": [], "dl": [], "key": []}
                                                      for k in paths}
        for rnd in range(args.rounds):
            for name in (("direct", "proxy") if rnd % 2 == 0 else ("proxy", "direct")):
                host, port, cookie, pre = paths[name]
                n, lat = await load(host, port, cookie, pre, args.concurrency, args.seconds)
                results[name]["rps"].append(n / lat[-1])
                results[name]["lat"] += lat[:-1]
                _, lat1 = await load(host, port, cookie, pre, 1, args.seconds / 2)
                results[name]["lat1"] += lat1[:-1]
        for rnd in range(args.downloads):
            for name in (("direct", "proxy") if rnd % 2 == 0 else ("proxy", "direct")):
                results[name]["dl"].append(await download(*paths[name]))
        tty = {"direct": (f"ws://{t_host}:{t_port}/websocket", None, gate),
               "proxy": (f"ws://{urlsplit(tty_c['url']).hostname}:{tty_c['port']}/websocket", tty_cookie, b"")}
        for rnd in range(2):
            for name in (("direct", "proxy") if rnd % 2 == 0 else ("proxy", "direct")):
                results[name]["key"] += await keystrokes(*tty[name], args.keys // 2)

        rows = []

        def row(label: str, unit: str, d: float, p: float, better: str) -> None:
            ratio = p / d if d else float("nan")
            rows.append((label, unit, d, p, ratio, better))

        row(f"small GET, {args.concurrency} connections", "req/s", statistics.mean(results["direct"]["rps"]),
            statistics.mean(results["proxy"]["rps"]), "higher")
        for p in (50, 99):
            row(f"  latency p{p} (loaded)", "ms", pct(results["direct"]["lat"], p) * 1e3,
                pct(results["proxy"]["lat"], p) * 1e3, "lower")
        for p in (50, 99):
            row(f"small GET, 1 connection, p{p}", "ms", pct(results["direct"]["lat1"], p) * 1e3,
                pct(results["proxy"]["lat1"], p) * 1e3, "lower")
        row("256 MiB download (best)", "MiB/s", max(results["direct"]["dl"]), max(results["proxy"]["dl"]), "higher")
        for p in (50, 99):
            row(f"terminal keystroke p{p}", "ms", pct(results["direct"]["key"], p) * 1e3,
                pct(results["proxy"]["key"], p) * 1e3, "lower")

        print(f"\napp-proxy vs direct — {platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
              f"{args.rounds} rounds × {args.seconds:g} s of GETs, {args.downloads} downloads each, "
              f"{len(results['proxy']['key'])} keystrokes each")
        print(f"{'measure':<34} {'unit':>6} {'direct':>10} {'proxy':>10} {'proxy/direct':>13}")
        for label, unit, d, p, ratio, better in rows:
            print(f"{label:<34} {unit:>6} {d:>10.2f} {p:>10.2f} {ratio:>12.2f}x  ({better} is better)")
        print(f"\nrequests: direct {len(results['direct']['lat'])}, proxy {len(results['proxy']['lat'])}; "
              f"downloads MiB/s direct {[round(x) for x in results['direct']['dl']]}, "
              f"proxy {[round(x) for x in results['proxy']['dl']]}")
    finally:
        if admin is not None:
            try:
                for s in (await admin.get("/sessions", params={"status": "live", "all": "true"}))["items"]:
                    await admin.delete(f"/session/{s['id']}", params={"forced": "true"})
            except Exception as e:  # noqa: BLE001 - best effort
                print(f"cleanup: {e}", file=sys.stderr)
            await admin.close()
        up.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each GET round")
    parser.add_argument("--rounds", type=int, default=2, help="GET rounds per path (alternating)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections of the loaded GET rounds")
    parser.add_argument("--downloads", type=int, default=2, help="256 MiB downloads per path")
    parser.add_argument("--keys", type=int, default=200, help="keystrokes per path")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
