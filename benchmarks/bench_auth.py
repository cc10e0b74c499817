"""Cost of authentication on the request path, as ratios against baselines measured in the same run.

- signed `GET /user/me` (HMAC verification, keypair lookup, rate-limit count, DB read) vs an
  unsigned `GET /` on the same manager;
- the same call through the webserver's `/func` proxy (cookie → keypair → re-sign → manager) vs
  signed directly to the manager.

Run: .venv/bin/python benchmarks/bench_auth.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from workbay.client.sdk import Client
from workbay.lite import start_in_thread

PASSWORD = "Bench-adm1n!pw"


async def timed(n: int, call) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - t0)
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100)
    return statistics.median(samples) * 1000, qs[94] * 1000


async def main(n: int) -> None:
    os.environ["WORKBAY_ADMIN_PASSWORD"] = PASSWORD
    with tempfile.TemporaryDirectory() as tmp:
        handle = start_in_thread(Path(tmp), 28190)
        try:
            async with httpx.AsyncClient() as raw:
                login = (await raw.post(f"{handle.manager_url}/auth/authorize", json={
                    "type": "keypair", "domain": "default", "username": "admin@workbay.local",
                    "password": PASSWORD})).json()["data"]
                signed = Client(handle.manager_url, login["access_key"], login["secret_key"])
                session = Client(handle.webserver_url, mode="session")
                await session.login("admin@workbay.local", PASSWORD)

                async def unsigned_root():
                    (await raw.get(f"{handle.manager_url}/")).raise_for_status()

                for call in (unsigned_root, lambda: signed.get("/user/me"), lambda: session.get("/user/me")):
                    await timed(20, call)  # warm-up
                base = await timed(n, unsigned_root)
                direct = await timed(n, lambda: signed.get("/user/me"))
                proxied = await timed(n, lambda: session.get("/user/me"))
                await signed.close()
                await session.close()
        finally:
            handle.stop()
    rows = [("unsigned GET / (baseline)", base), ("signed GET /user/me", direct),
            ("GET /func/user/me via webserver", proxied)]
    print(f"{n} sequential requests each, median / p95 in ms")
    for label, samples in rows:
        p50, p95 = summary(samples)
        print(f"  {label:36s} {p50:7.2f} / {p95:7.2f}")
    print(f"ratio signed/unsigned (median): {statistics.median(direct) / statistics.median(base):.2f}x")
    print(f"ratio proxied/direct  (median): {statistics.median(proxied) / statistics.median(direct):.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    asyncio.run(main(parser.parse_args().requests))
