"""Finding 5: the app-proxy handed the WebUI login cookie (``workbay_session``) to user apps
(same host, another port: cookies ignore ports).  Another user's public app received the
victim's login cookie, and its ``Set-Cookie: workbay_session=…`` replaced the victim's HttpOnly
login cookie.  Finding 16 (its app-proxy half): an app's opening link could be replayed within
its TTL.

Now the app-proxy strips Workbay's own cookies (``workbay_*``, ``wbapp_*``) from what it forwards
to apps and drops the apps' ``Set-Cookie`` lines for those names (any Domain, Path or case), and
an opening link works once.  A real webserver login in a browser-like cookie jar, a real app
(aiohttp) behind a real app-proxy circuit on the same host."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from tests.support.webserver import new_user, running_system
from workbay.appproxy import tokens
from workbay.appproxy.circuits import NewCircuit
from workbay.appproxy.frontend import Circuits
from workbay.web import cookies as web_cookies

SECRET = "app-proxy-secret-for-the-cookie-tests-0123"
PASSWORD = "Us3r!pass-word"
HOSTILE_SET_COOKIES = [
    "workbay_session=stolen-by-the-app; Path=/", "workbay_session=x; Domain=127.0.0.1; Path=/func",
    "WORKBAY_SESSION=x; Path=/", "workbay_csrf=fixed; Path=/", "workbay_lang=ko; Path=/",
    " workbay_theme = dark", "wbapp_othercircuit=forged; Path=/",
]


class HostileApp:
    """Echoes the Cookie header it got and tries to set Workbay's cookies (and one of its own)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request.headers.get("Cookie", ""))
        resp = web.json_response({"cookie": request.headers.get("Cookie", "")})
        for value in HOSTILE_SET_COOKIES + ["theirs=1; Path=/"]:
            resp.headers.add("Set-Cookie", value)
        return resp


@pytest.fixture
async def app():
    hostile = HostileApp()
    application = web.Application()
    application.router.add_route("*", "/{tail:.*}", hostile.handle)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hostile.port = site._server.sockets[0].getsockname()[1]
    try:
        yield hostile
    finally:
        await runner.cleanup()


@pytest.fixture
async def circuits():
    c = Circuits(SECRET, "127.0.0.1", None)
    try:
        yield c
    finally:
        await c.shutdown()


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("appcookies")) as s:
        yield s


async def open_circuit(circuits: Circuits, port: int, public: bool, user: str = "u-owner"):
    return await circuits.open(NewCircuit(session_id="s1", kernel_id="k1", app="app", protocol="http",
                                          target_host="127.0.0.1", target_port=port, user_id=user,
                                          open_to_public=public, url_path="/"))


async def victim_browser(system) -> httpx.AsyncClient:
    email = await new_user(system, PASSWORD)
    browser = httpx.AsyncClient(timeout=30)
    resp = await browser.post(system.web_url + "/server/login", json={"username": email, "password": PASSWORD})
    assert resp.json()["authenticated"] is True
    return browser


def sent_cookies(browser: httpx.AsyncClient, url: str) -> str:
    return browser.build_request("GET", url).headers.get("cookie", "")


async def test_a_public_app_never_gets_nor_replaces_the_login_cookie(system, app, circuits):
    browser = await victim_browser(system)
    try:
        login_cookie = browser.cookies["workbay_session"]
        circuit = await open_circuit(circuits, app.port, public=True)
        url = f"http://127.0.0.1:{circuit.port}/anything"
        # the browser does send the login cookie to the app's port (same host): the proxy must drop it
        assert "workbay_session=" in sent_cookies(browser, url)
        resp = await browser.get(url)
        assert resp.status_code == 200
        assert "workbay_session" not in resp.json()["cookie"] and "workbay_" not in app.seen[-1]
        set_cookies = resp.headers.get_list("set-cookie")
        assert set_cookies == ["theirs=1; Path=/"], set_cookies  # the app's own cookie passes
        assert browser.cookies.get("workbay_session", domain="127.0.0.1") == login_cookie
        assert browser.cookies.get("theirs") == "1"
        # the login still works, unchanged
        check = await browser.post(system.web_url + "/server/login-check")
        assert check.json()["authenticated"] is True
        assert browser.cookies.get("workbay_session", domain="127.0.0.1") == login_cookie
    finally:
        await browser.aclose()


async def test_a_private_app_gets_neither_workbay_cookies_nor_the_circuit_cookie(system, app, circuits):
    browser = await victim_browser(system)
    try:
        circuit = await open_circuit(circuits, app.port, public=False, user="u-owner")
        base = f"http://127.0.0.1:{circuit.port}"
        link = tokens.issue(SECRET, circuit.id, "u-owner", "open", 60)
        opened = await browser.get(f"{base}/__workbay/open?token={link}")
        assert opened.status_code == 302
        browser.cookies.set("workbay_csrf", "anon-token", domain="127.0.0.1")
        resp = await browser.get(f"{base}/page")
        assert resp.status_code == 200
        seen = app.seen[-1]
        assert "workbay_" not in seen and "wbapp_" not in seen, seen
        assert resp.headers.get_list("set-cookie") == ["theirs=1; Path=/"]
        # a replayed opening link (browser history, a log, a shoulder) is refused
        thief = httpx.AsyncClient(timeout=30)
        try:
            replay = await thief.get(f"{base}/__workbay/open?token={link}")
            assert replay.status_code == 403 and "set-cookie" not in replay.headers
            assert (await thief.get(f"{base}/page")).status_code == 403
        finally:
            await thief.aclose()
    finally:
        await browser.aclose()


def test_every_cookie_of_the_webserver_is_one_the_app_proxy_keeps_from_apps():
    from workbay.appproxy.http1 import is_reserved_cookie

    names = [value for key, value in vars(web_cookies).items() if key.endswith("_COOKIE")]
    assert names and all(is_reserved_cookie(name.encode()) for name in names), names
    assert is_reserved_cookie(tokens.cookie_name("c1").encode())
