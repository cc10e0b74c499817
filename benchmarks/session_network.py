"""What a session's own network adds to its start: kernels started by a real agent (Podman through
the Docker Engine API), with and without a network of their own, alternating in the same run.

* with: ``POST /v1/networks`` (a new isolated bridge + the agent's isolation rules) and then
  ``POST /v1/kernels`` on it, until the kernel is running (the runner prepared, gates listening);
* without: ``POST /v1/kernels`` on Podman's default network, until running.

Both carry an app secret (the runner's gates start either way).  Destroying the kernel (and with it
the network) is timed separately.  Prints the medians and the difference.

Run: .venv/bin/python benchmarks/session_network.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.ports import free_port_base  # noqa: E402
from tests.support.sessions import host_port_range  # noqa: E402
from workbay.agent.client import AgentClient  # noqa: E402
from workbay.lite import lite_config, start_in_thread  # noqa: E402

IMAGE = "localhost/workbay/python:3.11"


def request(network: str | None) -> dict:
    sid = uuid.uuid4().hex
    return {"session_id": sid, "session_name": f"bench-{sid[:6]}", "image": IMAGE,
            "owner_access_key": "AKBENCH", "network": network, "app_secret": secrets.token_hex(32),
            "pull_image": False,
            "kernels": [{"kernel_id": uuid.uuid4().hex, "resource_slots": {"cpu": "1", "mem": "256m"}}]}


async def one(agent: AgentClient, with_network: bool) -> tuple[float, float]:
    network = f"wb-bench-{uuid.uuid4().hex[:8]}" if with_network else None
    req = request(network)
    kid = req["kernels"][0]["kernel_id"]
    t0 = time.perf_counter()
    if network:
        await agent.create_network(network, req["session_id"])
    await agent.create_kernels(req)
    states = await agent.wait_kernels([kid], timeout=120, interval=0.02)
    started = time.perf_counter() - t0
    assert states[kid]["status"] == "running", states
    t1 = time.perf_counter()
    await agent.destroy_kernel(kid)
    return started, time.perf_counter() - t1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        base = free_port_base(10)
        cfg = lite_config(Path(d), base)
        cfg = cfg.model_copy(update={"agent": cfg.agent.model_copy(update={
            "id": f"bench-{base}", "port_range": host_port_range(), "slots": {"cpu": "2", "mem": "4g"},
            "poll_interval": 0.2})})
        handle = start_in_thread(Path(d), base, components=("agent",), config=cfg)
        try:
            async with AgentClient(f"http://127.0.0.1:{cfg.agent.port}", cfg.secrets.cluster, timeout=180) as agent:
                deadline = time.monotonic() + 60
                while not (await agent.info())["engine"]["available"]:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
                await one(agent, True)  # warm-up (image, page cache)
                await one(agent, False)
                runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
                for _ in range(args.runs):
                    for mode in (False, True):
                        runs[mode].append(await one(agent, mode))
        finally:
            handle.stop()
    for mode, label in ((False, "default network"), (True, "own network")):
        starts = [s for s, _ in runs[mode]]
        ends = [e for _, e in runs[mode]]
        print(f"{label:16s} start median {statistics.median(starts) * 1000:7.0f} ms "
              f"(min {min(starts) * 1000:.0f}, max {max(starts) * 1000:.0f}); "
              f"destroy median {statistics.median(ends) * 1000:6.0f} ms")
    delta = statistics.median(s for s, _ in runs[True]) - statistics.median(s for s, _ in runs[False])
    print(f"the session's own network adds {delta * 1000:.0f} ms to the start (median vs median)")


if __name__ == "__main__":
    asyncio.run(main())
