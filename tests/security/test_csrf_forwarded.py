"""Finding 16 (the forwarded-header half): the CSRF check trusted ``X-Forwarded-Host`` from any
client, so a page of another site could claim the webserver's host for itself.  Now
``X-Forwarded-For/-Host/-Proto`` count only when the peer is one of ``webserver.trusted_proxies``
(default: none) -- for the CSRF origin check, for the cookie's Secure flag, and for the client
address the manager's login throttling counts.  Real manager and webserver over HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.support.webserver import new_user, running_system

PASSWORD = "Us3r!pass-word"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    """No trusted proxy (the default)."""
    async with running_system(tmp_path_factory.mktemp("fwd")) as s:
        yield s


async def test_a_forged_forwarded_host_does_not_pass_the_origin_check(system):
    email = await new_user(system, PASSWORD)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
        assert (await web.post("/server/login", json={"username": email, "password": PASSWORD})
                ).json()["authenticated"] is True
        forged = await web.patch("/func/user/preferences", json={"theme": "dark"},
                                 headers={"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example"})
        assert forged.status_code == 403 and forged.json()["title"] == "Cross-site request refused."
        assert (await web.get("/func/user/preferences")).json()["theme"] != "dark"  # nothing changed
        logout = await web.post("/server/logout", headers={"Referer": "https://evil.example/x",
                                                           "X-Forwarded-Host": "evil.example"})
        assert logout.status_code == 403


async def test_a_forged_forwarded_proto_does_not_change_the_cookie(system):
    email = await new_user(system, PASSWORD)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
        resp = await web.post("/server/login", json={"username": email, "password": PASSWORD},
                              headers={"X-Forwarded-Proto": "https"})
        assert resp.json()["authenticated"] is True
        assert "Secure" not in resp.headers["set-cookie"]  # the client is on plain HTTP


async def test_a_forged_forwarded_for_does_not_escape_the_address_lockout(tmp_path):
    # a system of its own: this test locks the loopback address out of logging in
    async with running_system(tmp_path, manager_config={"lockout_attempts": 100,
                                                        "lockout_client_attempts": 5}) as system:
        accounts = [await new_user(system, PASSWORD) for _ in range(5)]
        async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
            for i, email in enumerate(accounts):  # a new claimed address for every guess
                resp = await web.post("/server/login", json={"username": email, "password": "guess"},
                                      headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
                assert resp.json()["authenticated"] is False
            fresh = await new_user(system, PASSWORD)
            locked = await web.post("/server/login", json={"username": fresh, "password": PASSWORD},
                                    headers={"X-Forwarded-For": "203.0.113.99"})
            assert locked.status_code == 429, locked.text
