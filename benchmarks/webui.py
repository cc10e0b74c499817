"""The WebUI's session list with 1,000 sessions: how long the page takes compared with the API call
it is built on, in the same run.

A throwaway Workbay (manager + webserver, ``workbay.lite`` in a thread, SQLite in a temporary
directory) gets ``--sessions`` sessions (default 1,000; mixed statuses and types, written straight
into its database) owned by the superadmin.  Then, median of ``--rounds`` after a warm-up:

* api: ``GET /sessions?status=live&all=true&limit=20`` signed with the admin's keypair (the list
  the page shows first);
* page (server): ``GET /sessions`` through the webserver with a logged-in cookie, until the whole
  HTML has arrived — the shell, ``/user/me``, the list and ``/sessions/counts`` (three API calls);
* fragment (server): the same with ``HX-Request``/``HX-Target: sessions-list``, what the page's
  refresh every 5 s fetches (no shell, no ``/user/me``);
* browser: headless chromium (Playwright) loads the page until the ``load`` event and the table
  is shown; the resource bars (a separate request) until they are filled in.

Run: .venv/bin/python benchmarks/webui.py [--sessions 1000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

ADMIN = "admin@workbay.local"
ADMIN_PASSWORD = "Adm1n!bench-pass"
CHROMIUM = os.environ.get("WORKBAY_E2E_CHROMIUM", "/usr/bin/chromium")


def free_pair() -> int:
    for _ in range(200):
        base = random.randint(20000, 40000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 1))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port pair")


class _DB:
    """What tests.support.session_rows.insert_sessions needs of a manager state."""

    def __init__(self, url: str) -> None:
        from workbay.manager.models.db import make_engine, session_factory

        self.engine = make_engine(url)

        class Ctx:
            db = session_factory(self.engine)
        self.ctx = Ctx()


async def timed(fn, rounds: int) -> list[float]:
    await fn()  # warm-up
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--browser-rounds", type=int, default=8)
    args = ap.parse_args()

    from tests.support.session_rows import insert_sessions
    from workbay.client.sdk import Client
    from workbay.lite import lite_config, start_in_thread

    os.environ["WORKBAY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    with tempfile.TemporaryDirectory(prefix="workbay-bench-webui-") as tmp:
        data_dir = Path(tmp)
        base = free_pair()
        config = lite_config(data_dir, base)
        handle = start_in_thread(data_dir, base, components=("manager", "webserver"), config=config)
        try:
            db = _DB(config.db_url)
            t0 = time.perf_counter()
            await insert_sessions(db, ADMIN, args.sessions, name="bench")
            await db.engine.dispose()
            print(f"inserted {args.sessions} sessions in {time.perf_counter() - t0:.1f} s")

            login = httpx.post(handle.manager_url + "/auth/authorize", json={
                "type": "keypair", "domain": "default", "username": ADMIN, "password": ADMIN_PASSWORD}).json()["data"]
            async with Client(handle.manager_url, login["access_key"], login["secret_key"]) as api, \
                    httpx.AsyncClient(base_url=handle.webserver_url, timeout=60) as web:
                listing = await api.get("/sessions", params={"status": "live", "all": "true", "limit": 20})
                total = listing["total_count"]
                resp = await web.post("/server/login", json={"username": ADMIN, "password": ADMIN_PASSWORD})
                assert resp.json()["authenticated"] is True
                page = await web.get("/sessions")
                assert page.status_code == 200 and f"Total {total} items" in page.text, page.text[:500]

                async def call_api():
                    await api.get("/sessions", params={"status": "live", "all": "true", "limit": 20, "offset": 0})

                async def call_page():
                    r = await web.get("/sessions")
                    assert r.status_code == 200

                async def call_fragment():
                    r = await web.get("/sessions", headers={"HX-Request": "true", "HX-Target": "sessions-list"})
                    assert r.status_code == 200 and "<html" not in r.text

                async def call_last_page():
                    r = await web.get(f"/sessions?page={max(1, (total + 19) // 20)}",
                                      headers={"HX-Request": "true", "HX-Target": "sessions-list"})
                    assert r.status_code == 200

                async def call_seven():  # what the page asks the manager for the list and its tabs
                    await call_api()
                    await api.get("/sessions/counts", params={"all": "true"})

                api_ms = await timed(call_api, args.rounds)
                seven_ms = await timed(call_seven, args.rounds)
                page_ms = await timed(call_page, args.rounds)
                frag_ms = await timed(call_fragment, args.rounds)
                last_ms = await timed(call_last_page, args.rounds)
                cookies = [{"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": "/"}
                           for c in web.cookies.jar]

            browser_ms, stats_ms = await browser_load(handle.webserver_url, cookies, args.browser_rounds)
        finally:
            handle.stop()

    a = med(api_ms)
    print(f"\nsessions in the database: {args.sessions} (live, listed by the Running tab: {total})")
    print(f"{'what':<44}{'median ms':>10}{'min ms':>9}{'× api':>8}")
    rows = [("api   GET /sessions (limit 20)", api_ms),
            ("api   the list + /sessions/counts, in sequence", seven_ms),
            ("page  GET /sessions (server, full HTML)", page_ms),
            ("page  list fragment (server, 5 s refresh)", frag_ms),
            ("page  list fragment, last page (server)", last_ms),
            ("browser load (load event + table shown)", browser_ms),
            ("browser + resource bars filled in", stats_ms)]
    for label, xs in rows:
        print(f"{label:<44}{med(xs):>10.1f}{min(xs):>9.1f}{med(xs) / a:>8.1f}")
    print("\nThe page makes two calls for the list (the list and /sessions/counts) plus /user/me; the "
          "fragment skips /user/me and the shell.")


async def browser_load(url: str, cookies: list[dict], rounds: int) -> tuple[list[float], list[float]]:
    from playwright.async_api import async_playwright

    loads, stats = [], []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=["--no-sandbox", "--disable-gpu"])
        ctx = await browser.new_context(base_url=url, viewport={"width": 1360, "height": 860})
        await ctx.add_cookies([{"name": c["name"], "value": c["value"], "url": url} for c in cookies])
        page = await ctx.new_page()
        for i in range(rounds + 1):
            t0 = time.perf_counter()
            await page.goto("/sessions", wait_until="load")
            await page.locator("#session-table tbody tr").first.wait_for()
            t1 = time.perf_counter()
            await page.locator("[data-testid=session-stats]").wait_for()
            t2 = time.perf_counter()
            if i:  # the first is the warm-up
                loads.append((t1 - t0) * 1000)
                stats.append((t2 - t0) * 1000)
        await browser.close()
    return loads, stats


if __name__ == "__main__":
    asyncio.run(main())
