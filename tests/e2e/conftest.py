"""End-to-end fixtures: one headless Debian chromium per test session, one Workbay (manager +
webserver through ``workbay.lite``, in its own thread) per test module, a fresh browser context
per test.  Playwright's async API runs on pytest-asyncio's loop, so these tests share a pytest
run with the async integration tests."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.e2e.support import ADMIN_PASSWORD, AdminAPI, Screenshots, Workbay

CHROMIUM = os.environ.get("WORKBAY_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
FAILURES = ARTIFACTS.parent / "failures"



def _free_port_pair() -> int:
    """A base port whose next port is free too (webserver at base, manager at base + 1)."""
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


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


@pytest.fixture(scope="module")
def workbay(tmp_path_factory) -> Iterator[Workbay]:
    from workbay.lite import lite_config, start_in_thread

    os.environ["WORKBAY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    data_dir = tmp_path_factory.mktemp("workbay")
    base = _free_port_pair()
    config = lite_config(data_dir, base)
    config = config.model_copy(update={"webserver": config.webserver.model_copy(
        update={"signup_enabled": True})})
    handle = start_in_thread(data_dir, base, components=("manager", "webserver"), config=config)
    try:
        yield Workbay(handle.webserver_url, handle.manager_url, AdminAPI.login(handle.manager_url))
    finally:
        handle.stop()


@pytest.fixture
async def context(browser: Browser, workbay: Workbay) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(base_url=workbay.url, viewport={"width": 1360, "height": 860},
                                    locale="en-US", accept_downloads=True, reduced_motion="reduce")
    ctx.set_default_timeout(10_000)
    yield ctx
    await ctx.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def page(context: BrowserContext, request) -> AsyncIterator[Page]:
    p = await context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        FAILURES.mkdir(parents=True, exist_ok=True)
        await p.screenshot(path=str(FAILURES / f"{request.node.name}.png"))
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def shots() -> Screenshots:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return Screenshots(ARTIFACTS)
