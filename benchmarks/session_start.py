"""Session start latency: ``POST /session`` (waiting for RUNNING) against a bare ``podman run``.

A real Workbay runs in this process (manager + one agent, SQLite, Podman through the Docker
Engine API).  The image is warm: one session is started and destroyed before measuring.  Each
round times, in alternation so machine load affects both alike:

* Workbay: ``POST /session`` with ``enqueueOnly: false`` until its answer (the session is RUNNING:
  scheduled, container created and started, runner prepared user/environment/SSH keys/intrinsic
  services); the session is then destroyed outside the timing;
* baseline: ``podman run --rm --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 IMAGE true``
  (create, start, wait for exit, remove) as a subprocess.

Prints both medians and their ratio.

Run: .venv/bin/python benchmarks/session_start.py [--runs N] [--image IMAGE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from workbay.client.sdk import Client
from workbay.lite import lite_config, start_in_thread

PASSWORD = "Bench-adm1n!pw"
IMAGE = "localhost/workbay/python:3.11"
PODMAN_RUN = ["podman", "run", "--rm", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def podman_run(image: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([*PODMAN_RUN, image, "true"], check=True, capture_output=True, timeout=120)
    return time.perf_counter() - t0


async def wait_ready(admin: Client, image: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agents = (await admin.get("/admin/agents"))["items"]
        images = (await admin.get("/images", params={"installed": "true"}))["items"]
        if any(a["status"] == "ALIVE" for a in agents) and any(i["name"] == image for i in images):
            return
        await asyncio.sleep(0.3)
    raise TimeoutError("the agent did not report the image in time")


async def start_once(admin: Client, image: str, name: str) -> float:
    t0 = time.perf_counter()
    created = await admin.post("/session", json={
        "image": image, "name": name, "config": {"resources": {"cpu": 1, "mem": "512m"}}})
    elapsed = time.perf_counter() - t0
    if created["status"] != "RUNNING":
        raise RuntimeError(f"session {name} did not start: {created}")
    await admin.delete(f"/session/{created['sessionId']}")
    return elapsed


async def bench(runs: int, image: str) -> dict[str, float]:
    os.environ["WORKBAY_ADMIN_PASSWORD"] = PASSWORD
    data_dir = Path(tempfile.mkdtemp(prefix="wb-bench-start-"))
    base = 41000 + os.getpid() % 1000 * 10
    config = lite_config(data_dir, base)
    config = config.model_copy(update={"agent": config.agent.model_copy(update={"id": f"bench-{base}"})})
    handle = start_in_thread(data_dir, base, components=("manager", "agent"), config=config)
    url = handle.manager_url
    try:
        async with Client(url) as anon:
            login = (await anon.post("/auth/authorize", json={
                "type": "keypair", "domain": "default", "username": "admin@workbay.local",
                "password": PASSWORD}))["data"]
        async with Client(url, login["access_key"], login["secret_key"], timeout=300) as admin:
            await wait_ready(admin, image)
            # Warm-up: image layers, the agent's and the manager's code paths, Podman's caches.
            await start_once(admin, image, "bench-warmup")
            podman_run(image)
            workbay, baseline = [], []
            for i in range(runs):
                workbay.append(await start_once(admin, image, f"bench-{i}"))
                baseline.append(await asyncio.to_thread(podman_run, image))
                print(f"  run {i + 1:2}/{runs}: POST /session → RUNNING {workbay[-1]:6.3f} s   "
                      f"podman run --rm … true {baseline[-1]:6.3f} s", flush=True)
    finally:
        handle.stop()
    med_w, med_b = statistics.median(workbay), statistics.median(baseline)
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; image {image}")
    print(f"median POST /session → RUNNING:  {med_w:.3f} s  (min {min(workbay):.3f}, max {max(workbay):.3f})")
    print(f"median podman run --rm … true:   {med_b:.3f} s  (min {min(baseline):.3f}, max {max(baseline):.3f})")
    print(f"ratio Workbay / podman run:      {med_w / med_b:.2f}")
    return {"workbay": med_w, "podman": med_b, "ratio": med_w / med_b}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--image", default=IMAGE)
    args = parser.parse_args()
    asyncio.run(bench(args.runs, args.image))


if __name__ == "__main__":
    main()
