"""`workbay service validate` with real containers: the dry run of one replica streams its
container log to the terminal as it comes and ends with the verdict — exit 0 when the replica
turned healthy, 1 with the failing step and the log when its start command exits (a start command
that ends is never success).  One system (manager, storage-proxy, agent) for the module."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.sessions import IMAGE, running_system

pytestmark = pytest.mark.timeout(600)
WORKBAY = [sys.executable, "-m", "workbay.client.cli_entry"]
SERVER = Path(__file__).resolve().parent.parent / "support" / "model_server.py"
HEALTH = "      health_check: {path: /health, interval: 0.5, max_retries: 10, max_wait_time: 2.0, initial_delay: 0.5}\n"
GOOD = ("models:\n  - name: test-model\n    model_path: /models\n    service:\n"
        "      start_command: [python3, /models/model_server.py, --port, '8000']\n      port: 8000\n" + HEALTH)
BAD = ("models:\n  - name: bad-model\n    model_path: /models\n    service:\n"
       "      start_command: 'echo the model cannot load: boom; exit 3'\n      port: 8000\n" + HEALTH)


async def upload(client, folder: str, path: str, data: bytes) -> None:
    r = await client.post(f"/folders/{folder}/request-upload", json={"path": path, "size": len(data)})
    async with httpx.AsyncClient() as http:
        resp = await http.patch(r["url"], params={"token": r["token"]}, content=data, headers={
            "Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
        assert resp.status_code == 204, resp.text


@pytest.fixture(scope="module")
async def world(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("cli-validate"), agent_slots={"cpu": "2", "mem": "2g"}) as sysm:
        user = await sysm.login("user@workbay.local")
        model = f"model-{uuid.uuid4().hex[:6]}"
        await user.post("/folders", json={"name": model, "usage_mode": "model"})
        await upload(user, model, "model_server.py", SERVER.read_bytes())
        await upload(user, model, "model-definition.yaml", GOOD.encode())
        await upload(user, model, "bad-definition.yaml", BAD.encode())
        env = {**os.environ, "WORKBAY_ACCESS_KEY": user.access_key, "WORKBAY_SECRET_KEY": user.secret_key,
               "WORKBAY_ENDPOINT": sysm.url, "COLUMNS": "200",
               "WORKBAY_CONFIG_DIR": str(tmp_path_factory.mktemp("cli-config"))}
        yield {"env": env, "model": model}


async def validate(world, *extra: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *WORKBAY, "service", "validate", "--model-folder", world["model"], "--image", IMAGE, "-c", "cpu=1",
        "-c", "mem=256m", *extra, env=world["env"], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_validate_a_healthy_and_a_failing_replica(world):
    code, out, err = await validate(world)
    assert code == 0, out + err
    assert "✓ Healthy" in out and "health-check" in err

    code, out, err = await validate(world, "--definition-path", "bad-definition.yaml")
    assert code == 1, out + err
    assert "the model cannot load: boom" in out  # the container's log, streamed
    assert "✗ Failed at" in out and "Healthy" not in out
