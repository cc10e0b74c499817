"""Finding 9: open redirect after login (``/login?next=%2F%09%2Fevil.example%2F`` sent the browser
to ``http://evil.example/``: browsers drop the tab and read ``//evil.example/``).  Finding 13 (the
webserver's part): a ``next`` holding a newline closed the connection with no answer, after the
login session was made; 50,000 nested ``[`` to ``/server/login`` answered 500.

Now ``next`` is followed only when it is a path of this site (one leading ``/``, no ``//``, no
backslash, no whitespace or control character anywhere, no scheme); anything else goes to the
default page with a normal answer, and deep nesting is a 400 problem.  Real manager + webserver."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.support.webserver import new_user, running_system

PASSWORD = "Us3r!pass-word"
HOSTILE = [
    "/\t/evil.example/", "//evil.example/", "/\\evil.example/", "\\/evil.example/", "/\\/evil.example",
    "https://evil.example/", "http:/evil.example", "javascript:alert(1)", "/ /evil.example",
    "/\n/evil.example/", "/\r\nSet-Cookie: x=1", "/x\x00y", "/\u2028/evil.example", " /summary",
    "/summary\n", "evil.example", "/\x0b/evil.example", "/sessions//x",
]


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("redirects")) as s:
        yield s


async def login_form(web: httpx.AsyncClient, email: str, next_: str, htmx: bool) -> httpx.Response:
    page = await web.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    headers = {"X-CSRF-Token": token, **({"HX-Request": "true"} if htmx else {})}
    return await web.post("/login", data={"username": email, "password": PASSWORD, "next": next_},
                          headers=headers)


def landing(resp: httpx.Response) -> str:
    return resp.headers.get("hx-redirect") or resp.headers["location"]


def stays_here(target: str) -> bool:
    parts = urlsplit(target.replace("\\", "/"))
    return target.startswith("/") and not target.startswith("//") and not parts.netloc \
        and not parts.scheme and not any(c in target for c in "\t\r\n\\")


@pytest.mark.parametrize("htmx", [True, False])
async def test_login_form_goes_only_to_paths_of_this_site(system, htmx):
    email = await new_user(system, PASSWORD)
    for target in HOSTILE:
        async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
            resp = await login_form(web, email, target, htmx)  # a newline: still an answer
            assert resp.status_code in (200, 303), (target, resp.status_code)
            assert landing(resp) == "/summary", (target, landing(resp))
            assert "evil.example" not in landing(resp)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
        resp = await login_form(web, email, "/sessions?tab=finished", htmx)
        assert landing(resp) == "/sessions?tab=finished"


async def test_login_page_of_a_logged_in_user_follows_only_paths_of_this_site(system):
    email = await new_user(system, PASSWORD)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
        assert (await web.post("/server/login", json={"username": email, "password": PASSWORD})
                ).json()["authenticated"] is True
        for target in HOSTILE:
            resp = await web.get("/login?next=" + quote(target, safe=""))
            assert resp.status_code == 303 and stays_here(resp.headers["location"]), target
            assert "evil.example" not in resp.headers["location"]
        resp = await web.get("/login?next=%2Ffolders")
        assert resp.headers["location"] == "/folders"


async def test_the_login_page_does_not_carry_a_hostile_next(system):
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
        page = await web.get("/login?next=%2F%09%2Fevil.example%2F")
        assert page.status_code == 200 and "evil.example" not in page.text


async def test_deeply_nested_json_to_server_login_is_a_400(system):
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as web:
        for body in (b"[" * 50_000, b'{"username": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"):
            resp = await web.post("/server/login", content=body, headers={"Content-Type": "application/json"})
            assert resp.status_code == 400, resp.text
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert "workbay_session" not in resp.headers.get("set-cookie", "")
