"""The webserver against a real manager over HTTP: the /server login API (wire formats of
docs/backendai-api.md §4), lockout, cookies, CSRF, the /func proxy (signing, streaming), pages."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import httpx
import pyotp
import pytest

from tests.support.databases import REDIS_URL
from tests.support.manager import ADMIN_PASSWORD
from tests.support.webserver import running_system
from workbay.client.sdk import Client

ADMIN = "admin@workbay.local"
PASSWORD = "Us3r!pass-word"
LOCK_SECONDS = 3
AUTH_FAILED = "https://api.backend.ai/probs/auth-failed"


@pytest.fixture(scope="module", params=["memory", "redis"])
async def system(request, tmp_path_factory):
    """Manager + webserver on loopback ports; login sessions in memory, then in Redis."""
    redis_url = REDIS_URL if request.param == "redis" else ""
    # The manager counts failed logins too (per account and per client address): the same
    # lock time there.  Loopback is this test's HTTPS proxy (X-Forwarded-Proto).
    async with running_system(tmp_path_factory.mktemp("web"), redis_url=redis_url,
                              manager_config={"lockout_seconds": LOCK_SECONDS},
                              lockout_seconds=LOCK_SECONDS, trusted_proxies=["127.0.0.1/32"]) as s:
        yield s


@pytest.fixture
async def web(system):
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        yield client


async def new_user(system, **extra) -> str:
    email = f"u-{uuid.uuid4().hex[:10]}@example.com"
    await system.manager.admin().post("/admin/users", json={
        "email": email, "username": email.split("@")[0], "password": PASSWORD, **extra})
    return email


async def login(web: httpx.AsyncClient, username: str, password: str, **extra) -> httpx.Response:
    return await web.post("/server/login", json={"username": username, "password": password, **extra})


# -- login API ------------------------------------------------------------------------------------
async def test_healthz_reports_ready(web):
    resp = await web.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "component": "webserver", "manager": "ok"}


async def test_login_sets_a_hardened_cookie_and_answers_the_keypair(system, web):
    email = await new_user(system)
    resp = await login(web, email, PASSWORD)
    assert resp.status_code == 200
    body = resp.json()
    assert body["authenticated"] is True
    assert body["data"]["role"] == "user" and body["data"]["status"] == "active"
    assert re.fullmatch(r"[A-Z0-9]{20}", body["data"]["access_key"])
    assert "secret_key" not in body["data"]
    cookie = resp.headers["set-cookie"]
    assert "workbay_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie


async def test_cookie_is_secure_behind_an_https_proxy(system, web):
    email = await new_user(system)
    resp = await web.post("/server/login", json={"username": email, "password": PASSWORD},
                          headers={"X-Forwarded-Proto": "https"})
    assert resp.json()["authenticated"] is True
    assert "Secure" in resp.headers["set-cookie"]


async def test_login_check_and_logout(system, web):
    assert (await web.post("/server/login-check")).json() == {
        "authenticated": False, "data": None, "session_id": None}
    email = await new_user(system)
    access_key = (await login(web, email, PASSWORD)).json()["data"]["access_key"]
    check = (await web.post("/server/login-check")).json()
    assert check["authenticated"] is True and check["session_id"]
    assert check["data"]["access_key"] == access_key and check["data"]["role"] == "user"
    out = await web.post("/server/logout")
    assert out.status_code == 201 and out.content == b""
    assert (await web.post("/server/login-check")).json()["authenticated"] is False
    assert (await web.get("/func/user/me")).status_code == 401


async def test_wrong_password_is_a_200_with_the_reason(system, web):
    email = await new_user(system)
    resp = await login(web, email, "not-the-password")
    assert resp.status_code == 200
    assert resp.json() == {"authenticated": False, "data": {
        "type": AUTH_FAILED, "title": "User credential mismatch.", "details": "User credential mismatch."}}
    assert "set-cookie" not in resp.headers


async def test_missing_fields_and_second_login(system, web):
    resp = await web.post("/server/login", json={"username": "someone@example.com"})
    assert resp.status_code == 400
    assert resp.json()["type"] == "https://api.backend.ai/probs/invalid-api-params"
    assert (await web.post("/server/login", content=b"not json")).status_code == 400
    email = await new_user(system)
    assert (await login(web, email, PASSWORD)).json()["authenticated"] is True
    again = await login(web, email, PASSWORD)
    assert again.status_code == 400 and again.json()["type"].endswith("generic-bad-request")


async def test_two_factor_login_asks_for_the_otp(system, web):
    email = await new_user(system)
    user = await system.manager.login(email, PASSWORD)
    secret = (await user.post("/auth/totp"))["secret"]
    await user.post("/auth/totp/confirm", json={"otp": pyotp.TOTP(secret).now()})
    asked = (await login(web, email, PASSWORD)).json()
    assert asked["authenticated"] is False and asked["data"]["details"] == "OTP not provided"
    wrong = (await login(web, email, PASSWORD, otp="000000")).json()
    assert wrong["authenticated"] is False and wrong["data"]["details"] == "Invalid OTP"
    ok = (await login(web, email, PASSWORD, otp=pyotp.TOTP(secret).now())).json()
    assert ok["authenticated"] is True


async def test_update_password_no_auth_passes_the_manager_answer_through(web):
    resp = await web.post("/server/update-password-no-auth", json={
        "username": ADMIN, "current_password": ADMIN_PASSWORD, "new_password": "N3w!password"})
    assert resp.status_code == 400
    assert resp.json()["msg"] == "Password aging is not configured on this server."


# -- lockout (ID-5) -----------------------------------------------------------------------------
async def test_ten_failures_lock_the_account_even_for_the_right_password(system, web):
    email = await new_user(system)
    for _ in range(10):
        assert (await login(web, email, "wrong-password")).json()["authenticated"] is False
    locked = await login(web, email, PASSWORD)
    assert locked.status_code == 429
    body = locked.json()
    assert body["type"] == "https://api.backend.ai/probs/too-many-requests"
    assert "Try again after" in body["msg"]
    assert 1 <= int(locked.headers["Retry-After"]) <= LOCK_SECONDS
    # other accounts are not affected
    other = await new_user(system)
    assert (await login(web, other, PASSWORD)).json()["authenticated"] is True
    await web.post("/server/logout")
    await asyncio.sleep(LOCK_SECONDS + 0.5)
    assert (await login(web, email, PASSWORD)).json()["authenticated"] is True


async def test_a_success_resets_the_failure_count(system, web):
    email = await new_user(system)
    for _ in range(9):
        await login(web, email, "wrong-password")
    assert (await login(web, email, PASSWORD)).json()["authenticated"] is True
    await web.post("/server/logout")
    for _ in range(9):
        await login(web, email, "wrong-password")
    assert (await login(web, email, PASSWORD)).json()["authenticated"] is True


# -- CSRF -----------------------------------------------------------------------------------------
async def test_cross_origin_writes_are_refused(system, web):
    email = await new_user(system)
    evil = await web.post("/server/login", json={"username": email, "password": PASSWORD},
                          headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and evil.json()["title"] == "Cross-site request refused."
    assert (await login(web, email, PASSWORD)).json()["authenticated"] is True  # no Origin: CLI
    by_referer = await web.patch("/func/user/preferences", json={"theme": "dark"},
                                 headers={"Referer": "http://evil.example/page"})
    assert by_referer.status_code == 403
    host = httpx.URL(system.web_url).netloc.decode()
    same = await web.patch("/func/user/preferences", json={"theme": "dark"},
                           headers={"Origin": f"http://{host}"})
    assert same.status_code == 200 and same.json()["theme"] == "dark"


async def test_webui_forms_need_the_session_csrf_token(system, web):
    email = await new_user(system)
    await login(web, email, PASSWORD)
    refused = await web.post("/preferences", data={"theme": "dark"})
    assert refused.status_code == 403
    page = (await web.get("/settings")).text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    accepted = await web.post("/preferences", data={"theme": "dark"}, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200
    assert (await web.get("/func/user/preferences")).json()["theme"] == "dark"
    wrong = await web.post("/preferences", data={"theme": "light", "csrf_token": "x" * 43})
    assert wrong.status_code == 403


# -- the /func proxy ------------------------------------------------------------------------------
async def test_func_requires_a_login_except_the_root(web):
    root = await web.get("/func/")
    assert root.status_code == 200 and root.json()["version"] == "v7.20230615"
    resp = await web.get("/func/user/me")
    assert resp.status_code == 401
    assert resp.json() == {"type": AUTH_FAILED, "title": "Unauthorized access"}


async def test_func_signs_with_the_sessions_keypair(system, web):
    email = await new_user(system)
    await login(web, email, PASSWORD)
    me = await web.get("/func/user/me", headers={"X-BackendAI-Version": "v6.20220615"})
    assert me.status_code == 200 and me.json()["email"] == email
    # query string and JSON body (also on GET, as the Backend.AI client sends them) reach the manager
    patched = await web.patch("/func/user/preferences", json={"language": "ko"})
    assert patched.json()["language"] == "ko"
    echo = await web.request("GET", "/func/auth/test?extra=1", json={"echo": "hello"})
    assert echo.json() == {"authorized": "yes", "echo": "hello"}
    forbidden = await web.get("/func/admin/users", params={"limit": 1})
    assert forbidden.status_code == 403  # a user: the manager's own answer comes back


async def test_func_passes_query_strings_for_admins(system, web):
    await login(web, ADMIN, ADMIN_PASSWORD)
    listing = (await web.get("/func/admin/users", params={"limit": 1, "q": "admin@"})).json()
    assert [u["email"] for u in listing["items"]] == [ADMIN]


async def test_func_refuses_authorize_so_the_lockout_cannot_be_bypassed(system, web):
    email = await new_user(system)
    await login(web, email, PASSWORD)
    resp = await web.post("/func/auth/authorize", json={"type": "keypair", "username": email,
                                                         "password": "guess"})
    assert resp.status_code == 403


async def test_func_streams_server_sent_events(system, web):
    email = await new_user(system)
    await login(web, email, PASSWORD)
    async with web.stream("GET", "/func/events/notifications") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        started = time.monotonic()
        seen = ""
        async for chunk in resp.aiter_text():
            seen += chunk.replace("\r\n", "\n")
            if "event: hello" in seen and "\n\n" in seen.split("event: hello", 1)[1]:
                break
            assert time.monotonic() - started < 10
    data = seen.split("event: hello", 1)[1].split("data:", 1)[1].split("\n", 1)[0]
    assert json.loads(data) == {"user": email}


async def test_the_sdk_in_session_mode_works_through_the_webserver(system):
    email = await new_user(system)
    async with Client(system.web_url, mode="session") as client:
        assert (await client.login(email, PASSWORD))["authenticated"] is True
        assert (await client.get("/user/me"))["email"] == email
        await client.logout()
        with pytest.raises(Exception) as failed:
            await client.get("/user/me")
        assert getattr(failed.value, "status", None) == 401


async def test_manager_unreachable_is_a_502(tmp_path):
    from workbay.common.config import load_config
    from workbay.web.app import create_app

    config = load_config(data_dir=tmp_path, webserver={"manager_url": "http://127.0.0.1:9"})
    app = create_app(config)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as c:
            resp = await c.post("/server/login", json={"username": ADMIN, "password": "x"})
            assert resp.status_code == 502
            assert (await c.get("/healthz")).status_code == 503


# -- pages ----------------------------------------------------------------------------------------
async def _form_login(web: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await web.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return await web.post("/login", data={"username": username, "password": password, "csrf_token": token},
                          headers={"HX-Request": "true"})


async def test_login_page_sends_admins_to_users_and_users_to_summary(system, web):
    assert (await web.get("/users")).status_code == 303
    resp = await _form_login(web, ADMIN, ADMIN_PASSWORD)
    assert resp.headers["HX-Redirect"] == "/users"
    users = await web.get("/users")
    assert users.status_code == 200 and ADMIN in users.text and "Create user" in users.text
    assert (await web.get("/resource-policy?tab=user")).status_code == 200
    await web.post("/server/logout")
    email = await new_user(system)
    resp = await _form_login(web, email, PASSWORD)
    assert resp.headers["HX-Redirect"] == "/summary"
    assert (await web.get("/users")).status_code == 403  # not an admin


async def test_login_page_shows_why_a_login_failed(system, web):
    resp = await _form_login(web, "nobody@example.com", "wrong")
    assert resp.status_code == 200 and "Incorrect email or password." in resp.text


async def test_pages_follow_the_users_language(system, web):
    email = await new_user(system)
    await login(web, email, PASSWORD)
    await web.patch("/func/user/preferences", json={"language": "ko", "theme": "dark"})
    page = (await web.get("/settings")).text
    assert '<html lang="ko" data-bs-theme="dark">' in page
    assert "언어" in page  # "Language"
