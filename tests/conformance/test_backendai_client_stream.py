"""The official Backend.AI client (``backend.ai-client`` 23.9.10, in ``.venv-bai``) on the streaming
API of a real session: ``stream_execute`` with an input() round trip, ``stream_pty``, and
``backend.ai app SESSION sshd -b 127.0.0.1:PORT`` (the CLI's local proxy over /tcpproxy) carrying a
real ssh login.  Another user's SDK is refused."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import pytest

from tests.conformance.official_app import BAI_BIN, ssh_through_app_command
from tests.support.sessions import IMAGE, System, running_system

pytestmark = pytest.mark.timeout(400)

SDK_SCRIPT = r'''
import asyncio, base64, json, os
from ai.backend.client.config import APIConfig
from ai.backend.client.exceptions import BackendClientError
from ai.backend.client.session import AsyncSession


def config(ak, sk):
    return APIConfig(endpoint=os.environ["EP"], endpoint_type="api", access_key=ak, secret_key=sk)


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
    async with AsyncSession(config=config(os.environ["AK"], os.environ["SK"])) as api:
        sess = api.ComputeSession(os.environ["NAME"])
        out["apps"] = sorted(a["name"] for a in await sess.stream_app_info())
        out["query"] = await run(sess, "print(6 * 7)", [])
        out["input"] = await run(sess, "x = input('number? ')\nprint(int(x) * 2)", ["21"])
        seen = ""
        async with sess.stream_pty() as pty:
            # StreamPty.resize() of 23.9.10 uses an attribute it never sets: send the message itself
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
    async with AsyncSession(config=config(os.environ["AK2"], os.environ["SK2"])) as api:
        try:
            await run(api.ComputeSession.from_session_id(os.environ["SID"]), "print(1)", [])
            out["other"] = "attached"
        except BackendClientError as e:
            out["other"] = str(e)
    print(json.dumps(out))


asyncio.run(main())
'''


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    assert (BAI_BIN / "python").exists(), (
        f"{BAI_BIN / 'python'} is missing: the official client needs its own venv "
        "(python3 -m venv .venv-bai && .venv-bai/bin/pip install backend.ai-client==23.9.10 yarl==1.9.4)")
    async with running_system(tmp_path_factory.mktemp("bai-stream")) as sysm:
        yield sysm


@pytest.fixture(scope="module")
async def session(system):
    user = await system.login("user@workbay.local")
    name = f"bai-{uuid.uuid4().hex[:6]}"
    created = await user.post("/session", json={"image": IMAGE, "name": name,
                                                "config": {"resources": {"cpu": 1, "mem": "512m"}}})
    assert created["status"] == "RUNNING", created
    return user, created["sessionId"], name


def client_env(system: System, home: Path, access_key: str, secret_key: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "BACKEND_ENDPOINT": system.url,
            "BACKEND_ENDPOINT_TYPE": "api", "BACKEND_ACCESS_KEY": access_key,
            "BACKEND_SECRET_KEY": secret_key}


def stdout(results: list[dict]) -> str:
    return "".join(d for r in results for t, d in (r.get("console") or []) if t == "stdout")


async def test_sdk_streams_execute_and_pty(system, session, tmp_path):
    user, sid, name = session
    other = await system.login("user2@workbay.local")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "EP": system.url, "NAME": name,
           "SID": sid, "AK": user.access_key, "SK": user.secret_key, "AK2": other.access_key,
           "SK2": other.secret_key}
    proc = await asyncio.create_subprocess_exec(str(BAI_BIN / "python"), "-c", SDK_SCRIPT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()[-3000:]
    got = json.loads(out.decode().strip().splitlines()[-1])
    assert {"sshd", "ttyd", "jupyter"} <= set(got["apps"])
    assert got["query"][-1]["status"] == "finished" and stdout(got["query"]).strip() == "42"
    assert [r["status"] for r in got["input"]][0] == "waiting-input"
    assert stdout(got["input"]).strip().endswith("42")
    assert got["pty"] is True
    assert "404" in got["other"]   # the handshake was refused: not their session


async def test_cli_app_command_proxies_ssh(system, session, tmp_path):
    user, sid, name = session
    env = client_env(system, tmp_path, user.access_key, user.secret_key)
    lines = await ssh_through_app_command(user, sid, name, env, tmp_path)
    assert lines[0] == "42"
