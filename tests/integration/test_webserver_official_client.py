"""The official Backend.AI client SDK (``backend.ai-client`` 23.9.10, in ``.venv-bai``) in session
mode: it logs in through the webserver and calls the manager through ``/func`` with only the
login cookie — no Origin, no CSRF token, as a command-line client does."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pyotp
import pytest

from tests.support.webserver import running_system

ROOT = Path(__file__).resolve().parents[2]
BAI_PYTHON = ROOT / ".venv-bai" / "bin" / "python"
PASSWORD = "Sess10n!pass"

CLIENT_SCRIPT = r'''
import asyncio, json, os
from pathlib import Path
import appdirs
from ai.backend.client.config import APIConfig
from ai.backend.client.exceptions import BackendAPIError
from ai.backend.client.func.auth import Auth
from ai.backend.client.request import Request
from ai.backend.client.session import AsyncSession

EP, USER, PW, OTP_USER = (os.environ[k] for k in ("EP", "USER", "PW", "OTP_USER"))


async def main():
    out = {}
    config = APIConfig(endpoint=EP, endpoint_type="session")
    async with AsyncSession(config=config) as sess:
        out["api_version"] = list(sess.api_version)
        out["wrong"] = await Auth.login(USER, "not-the-password")
        out["wrong"].pop("cookies")
        login = await Auth.login(USER, PW)
        out["login"] = {k: login[k] for k in ("authenticated", "data")}
        # what `backend.ai login` does: keep the cookie, send it with every later request
        state = Path(appdirs.user_state_dir("backend.ai", "Lablup"))
        state.mkdir(parents=True, exist_ok=True)
        sess.aiohttp_session.cookie_jar.update_cookies(login["cookies"])
        sess.aiohttp_session.cookie_jar.save(state / "cookie.dat")
        async with Request("GET", "/user/me").fetch() as resp:
            out["me"] = (await resp.json())["email"]
        rq = Request("PATCH", "/user/preferences")
        rq.set_json({"theme": "dark"})
        async with rq.fetch() as resp:
            out["prefs"] = (await resp.json())["theme"]
        async with Request("GET", "/events/notifications").connect_events() as events:
            async for ev in events.fetch_events():
                out["sse_first"] = [ev.event, json.loads(ev.data)]
                break
        await Auth.logout()
        try:  # the saved cookie is still sent: the server itself must have ended the session
            async with Request("GET", "/user/me").fetch() as resp:
                out["after_logout"] = [resp.status]
        except BackendAPIError as e:
            out["after_logout"] = [e.status, e.data]
        otp = await Auth.login(OTP_USER, PW)
        out["otp_needed"] = otp["data"]
    print(json.dumps(out))


asyncio.run(main())
'''


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-sdk")) as s:
        yield s


async def test_official_client_logs_in_and_calls_through_func(system, tmp_path):
    assert BAI_PYTHON.exists(), (
        f"{BAI_PYTHON} is missing: the official client needs its own venv "
        "(python3 -m venv .venv-bai && .venv-bai/bin/pip install backend.ai-client==23.9.10 yarl==1.9.4)")
    admin = system.manager.admin()
    await admin.post("/admin/users", json={"email": "sdk@example.test", "username": "sdk",
                                           "password": PASSWORD})
    await admin.post("/admin/users", json={"email": "otp@example.test", "username": "otp",
                                           "password": PASSWORD})
    otp_user = await system.manager.login("otp@example.test", PASSWORD)
    secret = (await otp_user.post("/auth/totp"))["secret"]
    await otp_user.post("/auth/totp/confirm", json={"otp": pyotp.TOTP(secret).now()})

    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "EP": system.web_url,
           "USER": "sdk@example.test", "PW": PASSWORD, "OTP_USER": "otp@example.test"}
    proc = await asyncio.create_subprocess_exec(str(BAI_PYTHON), "-c", CLIENT_SCRIPT, env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    got = json.loads(out.decode().strip().splitlines()[-1])

    assert got["api_version"] == [7, "20230615"]  # negotiated through the anonymous GET /func/
    assert got["wrong"]["authenticated"] is False
    assert got["wrong"]["data"]["title"] == "User credential mismatch."
    assert got["login"]["authenticated"] is True and got["login"]["data"]["role"] == "user"
    assert got["me"] == "sdk@example.test"
    assert got["prefs"] == "dark"
    assert got["sse_first"] == ["hello", {"user": "sdk@example.test"}]
    assert got["after_logout"][0] == 401
    assert got["after_logout"][1]["title"] == "Unauthorized access"
    assert got["otp_needed"]["details"] == "OTP not provided"
