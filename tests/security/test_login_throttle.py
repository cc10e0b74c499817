"""Finding 8: no brute-force limit at the manager.  230 wrong passwords to ``POST /auth/authorize``
and then the right one returned the keypair; 50 wrong OTPs and then the right one succeeded; the
webserver's lockout was bypassed through ``/func/auth/./authorize`` and ``/func/auth/%61uthorize``.

Now the manager counts failed logins per account and per client address (the webserver's lockout
rule, in Redis in a cluster): past the limit every attempt is refused with 429, the right password
included, until the window passes; and ``/func`` refuses a path that is not in normal form with
400 before deciding anything about it.  Real manager and webserver over HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pyotp
import pytest

from tests.support.databases import REDIS_URL
from tests.support.webserver import new_user, running_system
from workbay.client.sdk import APIError

PASSWORD = "Us3r!pass-word"
ATTEMPTS = 4
CLIENT_ATTEMPTS = 7
LOCK_SECONDS = 2
TOO_MANY = "https://api.backend.ai/probs/too-many-requests"


@pytest.fixture(scope="module", params=["memory", "redis"])
async def system(request, tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("throttle"),
                              redis_url=REDIS_URL if request.param == "redis" else "",
                              manager_config={"lockout_attempts": ATTEMPTS,
                                              "lockout_client_attempts": CLIENT_ATTEMPTS,
                                              "lockout_seconds": LOCK_SECONDS}) as s:
        yield s


def client_address() -> str:
    """A client address of its own per test: the manager trusts the loopback peer's
    X-Forwarded-For (manager.trusted_proxies), as it does the webserver's."""
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


async def authorize(http: httpx.AsyncClient, email: str, password: str, client: str,
                    otp: str | None = None) -> httpx.Response:
    body = {"type": "keypair", "domain": "default", "username": email, "password": password}
    if otp:
        body["otp"] = otp
    return await http.post("/auth/authorize", json=body, headers={"X-Forwarded-For": client})


@pytest.fixture
async def manager_http(system):
    async with httpx.AsyncClient(base_url=system.manager_url, timeout=30) as http:
        yield http


async def test_wrong_passwords_lock_the_account_even_for_the_right_one(system, manager_http):
    email = await new_user(system, PASSWORD)
    client = client_address()
    for _ in range(ATTEMPTS):
        assert (await authorize(manager_http, email, "wrong-password", client)).status_code == 401
    locked = await authorize(manager_http, email, PASSWORD, client)
    assert locked.status_code == 429, locked.text
    assert locked.headers["content-type"].startswith("application/problem+json")
    assert locked.json()["type"] == TOO_MANY and "secret_key" not in locked.text
    assert 1 <= int(locked.headers["Retry-After"]) <= LOCK_SECONDS
    # from another address too: the account is locked, not the address
    assert (await authorize(manager_http, email, PASSWORD, client_address())).status_code == 429
    await asyncio.sleep(LOCK_SECONDS + 0.5)
    ok = await authorize(manager_http, email, PASSWORD, client)
    assert ok.status_code == 200 and ok.json()["data"]["secret_key"]


async def test_wrong_otps_lock_the_account_even_for_the_right_code(system, manager_http):
    email = await new_user(system, PASSWORD)
    user = await system.manager.login(email, PASSWORD)
    secret = (await user.post("/auth/totp"))["secret"]
    totp = pyotp.TOTP(secret)
    await user.post("/auth/totp/confirm", json={"otp": totp.now()})
    client = client_address()
    right = totp.now()
    wrong = f"{(int(right) + 1) % 1000000:06d}"
    for _ in range(ATTEMPTS):
        resp = await authorize(manager_http, email, PASSWORD, client, otp=wrong)
        assert resp.status_code == 401 and resp.json()["title"] == "Invalid OTP"
    locked = await authorize(manager_http, email, PASSWORD, client, otp=totp.now())
    assert locked.status_code == 429 and "secret_key" not in locked.text


async def test_one_address_failing_on_many_accounts_is_locked(system, manager_http):
    client = client_address()
    accounts = [await new_user(system, PASSWORD) for _ in range(3)]
    failures = 0
    while failures < CLIENT_ATTEMPTS:  # spread: no account reaches its own limit
        email = accounts[failures % len(accounts)]
        assert (await authorize(manager_http, email, "wrong-password", client)).status_code == 401
        failures += 1
    fresh = await new_user(system, PASSWORD)
    assert (await authorize(manager_http, fresh, PASSWORD, client)).status_code == 429
    # another address is not affected, and a success elsewhere does not unlock this address
    assert (await authorize(manager_http, fresh, PASSWORD, client_address())).status_code == 200
    assert (await authorize(manager_http, fresh, PASSWORD, client)).status_code == 429


async def test_a_lock_made_at_the_manager_holds_at_the_webserver(system, manager_http):
    email = await new_user(system, PASSWORD)
    for _ in range(ATTEMPTS):
        await authorize(manager_http, email, "wrong-password", client_address())
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
        resp = await web.post("/server/login", json={"username": email, "password": PASSWORD})
        assert resp.status_code == 429 and resp.json()["type"] == TOO_MANY
        assert "workbay_session" not in resp.headers.get("set-cookie", "")


async def raw_post(base_url: str, path: str, body: bytes, cookie: str = "") -> tuple[int, bytes]:
    """The request line exactly as written (HTTP clients normalise dot segments away)."""
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        head = (f"POST {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n")
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        writer.write(head.encode("latin-1") + b"\r\n" + body)
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer


ODD_PATHS = [
    "/func/auth/./authorize", "/func/auth/%61uthorize", "/func/auth/%2e/authorize",
    "/func/auth/%2E%2E/auth/authorize", "/func/x/../auth/authorize", "/func//auth/authorize",
    "/func/auth//authorize", "/func/auth\\authorize", "/func/auth%2Fauthorize", "/func/auth%5cauthorize",
    "/func/%41uth/test", "/func/auth/test%7e", "/func/auth/authoriz%zz", "/func/./auth/test",
]


async def test_func_refuses_paths_not_in_normal_form_before_anything_else(system):
    email = await new_user(system, PASSWORD)
    body = json.dumps({"type": "keypair", "username": email, "password": "guess"}).encode()
    for path in ODD_PATHS:
        status, answer = await raw_post(system.web_url, path, body)
        assert status == 400, (path, answer)  # not 401: refused before the login is looked at
        assert b"application/problem+json" in answer
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
        assert (await web.post("/server/login", json={"username": email, "password": PASSWORD})
                ).json()["authenticated"] is True
        cookie = f"workbay_session={web.cookies['workbay_session']}"
        for path in ODD_PATHS:
            status, answer = await raw_post(system.web_url, path, body, cookie)
            assert status == 400, (path, answer)
            assert b"secret_key" not in answer
        # the normal spellings still work (and /auth/authorize stays refused)
        assert (await web.get("/func/auth/test")).status_code == 200
        assert (await web.post("/func/auth/authorize", content=body,
                               headers={"Content-Type": "application/json"})).status_code == 403


async def test_guessing_the_old_password_of_a_logged_in_account_counts_too(system, manager_http):
    email = await new_user(system, PASSWORD)
    user = await system.manager.login(email, PASSWORD)
    guesses = {"new_password": "N3w!pass-word-2", "new_password2": "N3w!pass-word-2"}
    for i in range(ATTEMPTS):
        with pytest.raises(APIError) as refused:
            await user.post("/auth/update-password", json={"old_password": f"guess-{i}", **guesses})
        assert refused.value.status == 401
    with pytest.raises(APIError) as locked:
        await user.post("/auth/update-password", json={"old_password": PASSWORD, **guesses})
    assert locked.value.status == 429
    assert (await authorize(manager_http, email, PASSWORD, client_address())).status_code == 429


async def test_func_websockets_refuse_paths_not_in_normal_form(system):
    url = httpx.URL(system.web_url)
    for path in ("/func/stream/./session/x/pty", "/func/stream/%73ession/x/pty", "/func//stream/session/x/pty"):
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write((f"GET {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            answer = await asyncio.wait_for(reader.read(4096), 30)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 400"), (path, answer[:200])
