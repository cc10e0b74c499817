"""The WebUI's app routes against a real manager (sessions written into its database, no agent):
the app launcher dialog (tiles by group, the options, a session that is not running yet), starting
an app answers JSON with the API's reason on errors (not running, no such app, the agent is
unreachable, a bad preferred port), the SSH / SFTP dialog and the id_container download, a folder's
File Browser / SFTP server errors, the preferred SSH port preference, and another user's session
or folder is a 404 everywhere.  Real containers: tests/e2e/test_apps.py."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest
from sqlalchemy import update

from tests.support.session_rows import insert_sessions
from tests.support.webserver import WebVisitor, running_system
from workbay.manager.models.compute import Kernel

PASSWORD = "Us3r!pass-word"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-apps")) as s:
        yield s


class Browser(WebVisitor):
    async def login(self, email: str, password: str = "") -> Browser:
        return await super().login(email, password or PASSWORD)

    def headers(self, htmx: bool = True) -> dict[str, str]:
        out = {"X-CSRF-Token": self.token}
        if htmx:
            out["HX-Request"] = "true"
        return out

    async def get(self, url: str) -> httpx.Response:
        return await self.http.get(url, headers=self.headers())

    async def post(self, url: str, data: dict | None = None, htmx: bool = False) -> httpx.Response:
        return await self.http.post(url, data=data or {}, headers=self.headers(htmx))


async def new_user(system) -> str:
    email = f"apps-{uuid.uuid4().hex[:10]}@example.com"
    api = system.manager.admin()
    projects = (await api.get("/admin/projects", params={"limit": 1000}))["items"]
    default = [p["id"] for p in projects if p["name"] == "default"]
    await api.post("/admin/users", json={"email": email, "username": email.split("@")[0], "password": PASSWORD,
                                         "project_ids": default})
    return email


@pytest.fixture
async def user(system):
    email = await new_user(system)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as client:
        yield email, await Browser(client).login(email)


@pytest.fixture
async def stranger(system):
    email = await new_user(system)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as client:
        yield await Browser(client).login(email)


SERVICE_PORTS = [
    {"name": "jupyter", "protocol": "http", "container_ports": [8090]},
    {"name": "jupyterlab", "protocol": "http", "container_ports": [8091]},
    {"name": "ttyd", "protocol": "http", "container_ports": [7681]},
    {"name": "sshd", "protocol": "tcp", "container_ports": [2200]},
    {"name": "filebrowser", "protocol": "http", "container_ports": [8095]},
    {"name": "tensorboard", "protocol": "http", "container_ports": [6006]},
    {"name": "port-5000", "protocol": "preopen", "container_ports": [5000]},
    {"name": "custom-thing", "protocol": "http", "container_ports": [9999]},
]


async def running_session(system, email: str, name: str, agent_addr: str | None = None,
                          status: str = "RUNNING") -> str:
    [sid] = await insert_sessions(system.manager.state, email, 1, status=status, name=name)
    async with system.manager.state.ctx.db.begin() as s:
        values = {"service_ports": SERVICE_PORTS}
        if agent_addr:
            values["agent_addr"] = agent_addr
        await s.execute(update(Kernel).where(Kernel.session_id == uuid.UUID(sid)).values(**values))
    return sid


def toast(resp: httpx.Response) -> str:
    return json.loads(resp.headers.get("HX-Trigger") or "{}").get("wb:toast", {}).get("message", "")


async def test_launcher_dialog_groups_the_apps_with_the_options(system, user):
    email, b = user
    sid = await running_session(system, email, "apps-dialog")
    resp = await b.get(f"/sessions/{sid}/apps")
    assert resp.status_code == 200
    html = resp.text
    assert 'id="app-launcher"' in html and f'data-session-id="{sid}"' in html
    order = [m for m in re.findall(r'data-wb-app="([^"]+)"', html)]
    assert order == ["ttyd", "sshd", "filebrowser", "jupyter", "jupyterlab", "tensorboard", "port-5000", "custom-thing"]
    for label in ("Terminal", "SSH / SFTP", "File Browser", "Jupyter Notebook", "JupyterLab", "TensorBoard"):
        assert f">{label}<" in html
    for group in ("Utilities", "Development", "Machine learning tools", "Preopen ports", "Other apps"):
        assert group in html
    assert 'data-protocol="tcp"' in html and 'data-protocol="preopen"' in html
    assert re.search(r'data-wb-app="ttyd"[^>]*autofocus', html)
    assert 'id="app-public"' in html and 'id="app-try-port"' in html and 'id="app-port"' in html
    assert "app-not-running" not in html and " disabled\n" not in html.split('id="app-status"')[0].split("data-wb-app")[1]


async def test_a_session_that_is_not_running_says_so(system, user):
    email, b = user
    [sid] = await insert_sessions(system.manager.state, email, 1, status="PENDING", name="apps-pending")
    html = (await b.get(f"/sessions/{sid}/apps")).text
    assert 'data-testid="app-not-running"' in html and "PENDING" in html
    started = await b.post(f"/sessions/{sid}/apps/jupyter")
    assert started.status_code == 400
    body = started.json()
    assert "PENDING" in body["message"] and "RUNNING" in body["message"]


async def test_starting_an_app_answers_the_api_reason(system, user):
    email, b = user
    sid = await running_session(system, email, "apps-noagent", agent_addr="http://127.0.0.1:9")
    missing = await b.post(f"/sessions/{sid}/apps/no-such-app")
    assert missing.status_code == 400 and "no-such-app" in missing.json()["message"]
    down = await b.post(f"/sessions/{sid}/apps/jupyter")
    assert down.status_code >= 400
    problem = down.json()
    assert set(problem) == {"title", "message"} and (problem["title"] or problem["message"])
    assert "Traceback" not in down.text
    bad_port = await b.post(f"/sessions/{sid}/apps/jupyter", {"try_preferred_port": "on", "preferred_port": "80"})
    assert bad_port.status_code == 400 and "1024" in bad_port.json()["message"]
    no_port = await b.post(f"/sessions/{sid}/apps/jupyter", {"try_preferred_port": "on", "preferred_port": ""})
    assert no_port.status_code == 400
    # no CSRF token: refused before anything starts
    refused = await b.http.post(f"/sessions/{sid}/apps/jupyter")
    assert refused.status_code == 403


async def test_ssh_dialog_shows_user_host_port_and_commands(system, user):
    email, b = user
    sid = await running_session(system, email, "apps-ssh")
    html = (await b.get(f"/sessions/{sid}/ssh?host=apps.example.org&port=10305")).text
    assert 'data-testid="ssh-dialog"' in html
    assert re.search(r'data-testid="ssh-user">work<', html) and re.search(r'data-testid="ssh-port">10305<', html)
    assert re.search(r'data-testid="ssh-host">apps.example.org<', html)
    assert "ssh -i ./id_container -p 10305 work@apps.example.org" in html
    assert "sftp -i ./id_container -P 10305 work@apps.example.org" in html
    assert "scp -i ./id_container -P 10305 FILE work@apps.example.org:~/" in html
    assert f'href="/sessions/{sid}/ssh-key"' in html and "Download SSH key" in html
    assert ".ssh" in html and "authorized_keys" in html
    sftp = (await b.get(f"/sessions/{sid}/ssh?host=h.example&port=2222&folder=mydata&idle=600")).text
    assert "SFTP server for the folder mydata" in sftp and "/home/work/mydata" in sftp and "10 min" in sftp
    assert "work@h.example:~/mydata/" in sftp
    assert "90 s" in (await b.get(f"/sessions/{sid}/ssh?host=h.example&port=2222&folder=mydata&idle=90")).text
    for bad in ("host=&port=22", "host=h&port=x", "host=h&port=70000", "host=a;rm&port=22"):
        resp = await b.get(f"/sessions/{sid}/ssh?{bad}")
        assert resp.status_code == 400 and toast(resp)


async def test_ssh_key_download_errors_are_messages(system, user):
    email, b = user
    sid = await running_session(system, email, "apps-key")
    resp = await b.get(f"/sessions/{sid}/ssh-key")
    assert resp.status_code >= 400 and toast(resp) and "Traceback" not in resp.text


async def test_another_users_session_is_not_found_everywhere(system, user, stranger):
    email, _ = user
    sid = await running_session(system, email, "apps-private", agent_addr="http://127.0.0.1:9")
    dialog = await stranger.get(f"/sessions/{sid}/apps")
    assert dialog.status_code == 404 and toast(dialog)
    started = await stranger.post(f"/sessions/{sid}/apps/jupyter")
    assert started.status_code == 404 and started.json()["title"]
    ssh = await stranger.get(f"/sessions/{sid}/ssh?host=h&port=22")
    assert ssh.status_code == 404
    key = await stranger.get(f"/sessions/{sid}/ssh-key")
    assert key.status_code == 404 and b"PRIVATE" not in key.content
    gone = await stranger.get(f"/sessions/{uuid.uuid4()}/apps")
    assert gone.status_code == 404


async def test_folder_apps_errors_are_json(system, user):
    _, b = user
    for kind in ("file-browser", "sftp-server"):
        resp = await b.post(f"/data/no-such-folder-{uuid.uuid4().hex[:6]}/{kind}")
        assert resp.status_code == 404, resp.text
        assert set(resp.json()) == {"title", "message"}


async def test_preferred_ssh_port_preference(system, user):
    email, b = user
    settings = (await b.get("/settings")).text
    assert 'id="pref-ssh-port"' in settings and "Preferred SSH port" in settings
    bad = await b.post("/preferences", {"preferred_ssh_port": "22"}, htmx=True)
    assert bad.status_code == 400 and "1024" in toast(bad)
    words = await b.post("/preferences", {"preferred_ssh_port": "ssh"}, htmx=True)
    assert words.status_code == 400
    ok = await b.post("/preferences", {"preferred_ssh_port": "10322"}, htmx=True)
    assert ok.status_code == 200, ok.text
    assert 'value="10322"' in (await b.get("/settings")).text
    sid = await running_session(system, email, "apps-sshport")
    html = (await b.get(f"/sessions/{sid}/apps")).text
    assert 'data-testid="ssh-port-note"' in html and "10322" in html
    cleared = await b.post("/preferences", {"preferred_ssh_port": ""}, htmx=True)
    assert cleared.status_code == 200
    assert 'value="10322"' not in (await b.get("/settings")).text
    assert "ssh-port-note" not in (await b.get(f"/sessions/{sid}/apps")).text


async def test_the_dialogs_in_korean(system, user):
    email, b = user
    sid = await running_session(system, email, "apps-korean")
    assert (await b.post("/preferences", {"language": "ko"}, htmx=True)).status_code == 200
    html = (await b.get(f"/sessions/{sid}/apps")).text
    for text in ("터미널", "유틸리티", "개발", "앱을 외부에 공개", "선호 포트 시도"):
        assert text in html, text
    ssh = (await b.get(f"/sessions/{sid}/ssh?host=h.example&port=2222")).text
    assert "SSH 키 다운로드" in ssh and "접속 예제" in ssh
    refused = await b.post(f"/sessions/{sid}/apps/jupyter", {"try_preferred_port": "on", "preferred_port": "1"})
    assert "1024" in refused.json()["message"] and "사이의 포트" in refused.json()["message"]
