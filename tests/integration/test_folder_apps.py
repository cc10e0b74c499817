"""A folder's SFTP server (AP-7) with real containers: a system session mounting the folder,
`sftp` with the session's key uploads into it, the file stays after the session, the session is
not counted in the owner's usage, the policy's SFTP limit holds, and idle sessions are reclaimed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import httpx
import pytest

from tests.support.sessions import running_system
from workbay.client.sdk import APIError

pytestmark = pytest.mark.timeout(300)
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"]


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("folder-apps"), appproxy=True,
                              manager={"system_idle_timeout": 3600}) as sysm:
        yield sysm


async def test_sftp_server_for_a_folder(system, tmp_path):
    user = await system.login("user@workbay.local")
    name = f"sftp-{uuid.uuid4().hex[:6]}"
    await user.post("/folders", json={"name": name})
    info = await user.post(f"/folders/{name}/sftp-server")
    assert info["user"] == "work" and info["root"] == f"/home/work/{name}"
    assert info["sftp_command"].startswith("sftp -i id_container -P ")
    key = (await user.request("GET", info["key_path"], raw=True)).content
    key_file = tmp_path / "id_container"
    key_file.write_bytes(key)
    os.chmod(key_file, 0o600)
    local = tmp_path / "hello.txt"
    local.write_text("over sftp\n")
    batch = tmp_path / "batch"
    batch.write_text(f"put {local} /home/work/{name}/hello.txt\n")
    out = await asyncio.to_thread(subprocess.run, ["sftp", *SSH_OPTS, "-i", str(key_file), "-P", str(info["port"]),
                                                   "-b", str(batch), f"work@{info['host']}"],
                                  capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # a system session, not counted in the owner's usage
    listed = (await user.get("/sessions", params={"status": "live"}))["items"]
    assert {s["id"]: s["type"] for s in listed}[info["session_id"]] == "system"
    presets = await user.post("/resource/check-presets", json={})
    assert presets["keypair_using"].get("cpu", "0") in ("0", 0)
    # the policy allows one SFTP session at a time
    with pytest.raises(APIError) as e:
        await user.post(f"/folders/{name}/sftp-server")
    assert e.value.status == 400 and "SFTP" in e.value.message
    # clients cannot create system sessions themselves
    with pytest.raises(APIError) as e:
        await user.post("/session", json={"image": system.config.manager.system_image, "type": "system",
                                          "name": f"sys-{uuid.uuid4().hex[:6]}"})
    assert e.value.status == 400
    # the file stays in the folder after the session
    await user.delete(f"/session/{info['session_id']}")
    await system.wait_status(user, info["session_id"], "TERMINATED")
    r = await user.post(f"/folders/{name}/request-download", json={"path": "hello.txt"})
    async with httpx.AsyncClient() as http:
        assert (await http.get(r["url"], params={"token": r["token"]})).text == "over sftp\n"


async def test_idle_sftp_sessions_are_reclaimed(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("reclaim"), appproxy=True,
                              manager={"system_idle_timeout": 2}) as sysm:
        user = await sysm.login("user@workbay.local")
        await user.post("/folders", json={"name": "idle"})
        info = await user.post("/folders/idle/sftp-server")
        final = await sysm.wait_status(user, info["session_id"], ("TERMINATED",), timeout=60)
        assert final["status_info"] == "idle-timeout"


async def test_file_browser_for_a_folder(system):
    user = await system.login("user@workbay.local")
    name = f"fb-{uuid.uuid4().hex[:6]}"
    await user.post("/folders", json={"name": name})
    opened = await user.post(f"/folders/{name}/file-browser")
    assert opened["root"] == f"/home/work/{name}" and opened["protocol"] == "http"
    async with httpx.AsyncClient(follow_redirects=True, timeout=60) as browser:
        page = await browser.get(opened["url"])
        assert page.status_code == 200
        base = f"http://127.0.0.1:{opened['port']}"
        listing = await browser.get(f"{base}/api/list", params={"path": ""})
        assert listing.status_code == 200, listing.text
    listed = (await user.get("/sessions", params={"status": "live"}))["items"]
    assert {s["id"]: s["type"] for s in listed}[opened["session_id"]] == "system"
    await user.delete(f"/session/{opened['session_id']}")
