"""Finding 16 (the 2FA half): a TOTP code could be used twice (a code read over a shoulder or
phished in real time logged the attacker in next to the user).  Now the manager remembers the
last time-step accepted per user (in Redis in a cluster): the same code, or an earlier one,
is refused; the next code works.  Real manager and webserver over HTTP."""

from __future__ import annotations

from datetime import datetime

import httpx
import pyotp
import pytest

from tests.support.databases import REDIS_URL
from tests.support.webserver import new_user, running_system

PASSWORD = "Us3r!pass-word"


@pytest.fixture(scope="module", params=["memory", "redis"])
async def system(request, tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("otp"),
                              redis_url=REDIS_URL if request.param == "redis" else "") as s:
        yield s


async def user_with_2fa(system) -> tuple[str, pyotp.TOTP]:
    email = await new_user(system, PASSWORD)
    user = await system.manager.login(email, PASSWORD)
    totp = pyotp.TOTP((await user.post("/auth/totp"))["secret"])
    await user.post("/auth/totp/confirm", json={"otp": totp.now()})
    return email, totp


async def test_a_code_logs_in_once_at_the_manager(system):
    email, totp = await user_with_2fa(system)
    step = totp.timecode(datetime.now())
    code = totp.generate_otp(step)
    body = {"type": "keypair", "domain": "default", "username": email, "password": PASSWORD, "otp": code}
    async with httpx.AsyncClient(base_url=system.manager_url, timeout=30) as http:
        first = await http.post("/auth/authorize", json=body)
        assert first.status_code == 200 and first.json()["data"]["secret_key"]
        replay = await http.post("/auth/authorize", json=body)
        assert replay.status_code == 401 and "secret_key" not in replay.text
        assert replay.headers["content-type"].startswith("application/problem+json")
        earlier = await http.post("/auth/authorize", json={**body, "otp": totp.generate_otp(step - 1)})
        assert earlier.status_code == 401
        # the next code (still inside the accepted window) works once too
        later = await http.post("/auth/authorize", json={**body, "otp": totp.generate_otp(step + 1)})
        assert later.status_code == 200


async def test_a_code_logs_in_once_at_the_webserver(system):
    email, totp = await user_with_2fa(system)
    code = totp.now()
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as user, \
            httpx.AsyncClient(base_url=system.web_url, timeout=30) as attacker:
        ok = await user.post("/server/login", json={"username": email, "password": PASSWORD, "otp": code})
        assert ok.json()["authenticated"] is True
        replay = await attacker.post("/server/login", json={"username": email, "password": PASSWORD,
                                                            "otp": code})
        assert replay.json()["authenticated"] is False
        assert "workbay_session" not in attacker.cookies
