"""The official Backend.AI client (``backend.ai-client`` 23.9.10, in ``.venv-bai``) in session mode
(``BACKEND_ENDPOINT_TYPE=session``) on the streaming API of a real session, through the
webserver's ``/func`` proxy with only the login cookie that ``backend.ai login`` saved:
``backend.ai app SESSION sshd -b 127.0.0.1:PORT`` carrying a real ssh login, and the SDK's
``stream_execute`` and ``stream_pty``.  Another user's login is refused (404)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import pytest

from tests.conformance.official_app import BAI_BIN, ssh_through_app_command
from tests.support.sessions import DEMO_PASSWORD, IMAGE, running_system

pytestmark = pytest.mark.timeout(500)

SDK_SCRIPT = r'''
import asyncio, base64, json, os
from ai.backend.client.exceptions import BackendClientError
from ai.backend.client.session import AsyncSession


async def run(sess, code, answers):
    results = []
    async with sess.stream_execute(code, mode="query") as ws:
        while True:
            msg = await ws.receive_json()
            results.append(msg)
            if msg["status"] == "waiting-input":
                await ws.send_str(answers.pop(0))
            elif msg["status"] in ("finished", "error"):
                return results


async def main():
    out = {}
    async with AsyncSession() as api:  # the endpoint and session mode come from the environment
        sess = api.ComputeSession(os.environ["NAME"])
        if os.environ.get("OTHER"):
            try:
                await run(sess, "print(1)", [])
                out["other"] = "attached"
            except BackendClientError as e:
                out["other"] = str(e)
            print(json.dumps(out))
            return
        out["query"] = await run(sess, "print(6 * 7)", [])
        out["input"] = await run(sess, "x = input('number? ')\nprint(int(x) * 2)", ["21"])
        seen = ""
        async with sess.stream_pty() as pty:
            await pty.send_str(json.dumps({"type": "resize", "rows": 24, "cols": 80}))
            await pty.send_str(json.dumps({"type": "stdin",
                                           "chars": base64.b64encode(b"echo pty-$((6*7))\r").decode()}))
            while "pty-42" not in seen:  # only the output has it (the command line says $((6*7)))
                try:
                    msg = await asyncio.wait_for(pty.receive_json(), 60)
                except asyncio.TimeoutError:
                    raise SystemExit(f"no pty-42 in the terminal's output: {seen[-800:]!r}")
                seen += base64.b64decode(msg["data"]).decode("utf-8", "replace")
        out["pty"] = "pty-42" in seen
    print(json.dumps(out))


asyncio.run(main())
'''


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    assert (BAI_BIN / "python").exists(), (
        f"{BAI_BIN / 'python'} is missing: the official client needs its own venv "
        "(python3 -m venv .venv-bai && .venv-bai/bin/pip install backend.ai-client==23.9.10 yarl==1.9.4)")
    async with running_system(tmp_path_factory.mktemp("bai-session-stream"), webserver=True) as sysm:
        yield sysm


@pytest.fixture(scope="module")
async def session(system):
    user = await system.login("user@workbay.local")
    name = f"bai-ws-{uuid.uuid4().hex[:6]}"
    created = await user.post("/session", json={"image": IMAGE, "name": name,
                                                "config": {"resources": {"cpu": 1, "mem": "512m"}}})
    assert created["status"] == "RUNNING", created
    return user, created["sessionId"], name


def session_mode_env(system, home: Path) -> dict[str, str]:
    """What a user of session mode sets: the webserver as the endpoint, no keypair."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "BACKEND_ENDPOINT": system.web_url,
            "BACKEND_ENDPOINT_TYPE": "session"}


async def cli_login(system, home: Path, email: str) -> None:
    """``backend.ai login``: asks for the user and password, saves the cookie under ``home``."""
    proc = await asyncio.create_subprocess_exec(
        str(BAI_BIN / "backend.ai"), "login", env=session_mode_env(system, home),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)  # no terminal: the password prompt reads stdin
    out, _ = await asyncio.wait_for(proc.communicate(f"{email}\n{DEMO_PASSWORD}\n".encode()), 120)
    assert proc.returncode == 0 and "Login succeeded" in out.decode(), out.decode()[-2000:]


async def run_sdk(system, home: Path, name: str, other: bool = False) -> dict:
    env = {**session_mode_env(system, home), "NAME": name, **({"OTHER": "1"} if other else {})}
    proc = await asyncio.create_subprocess_exec(str(BAI_BIN / "python"), "-c", SDK_SCRIPT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode().strip().splitlines()[-1])


def stdout(results: list[dict]) -> str:
    return "".join(d for r in results for t, d in (r.get("console") or []) if t == "stdout")


async def test_cli_app_command_proxies_ssh_in_session_mode(system, session, tmp_path):
    user, sid, name = session
    await cli_login(system, tmp_path, "user@workbay.local")
    lines = await ssh_through_app_command(user, sid, name, session_mode_env(system, tmp_path), tmp_path)
    assert lines[0] == "42"


async def test_sdk_streams_execute_and_pty_in_session_mode(system, session, tmp_path):
    _, _, name = session
    home = tmp_path / "user"
    await cli_login(system, home, "user@workbay.local")
    got = await run_sdk(system, home, name)
    assert got["query"][-1]["status"] == "finished" and stdout(got["query"]).strip() == "42"
    assert [r["status"] for r in got["input"]][0] == "waiting-input"
    assert stdout(got["input"]).strip().endswith("42")
    assert got["pty"] is True

    other_home = tmp_path / "other"
    await cli_login(system, other_home, "user2@workbay.local")
    refused = await run_sdk(system, other_home, name, other=True)
    assert "404" in refused["other"]   # the handshake was refused: not their session
