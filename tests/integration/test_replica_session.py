"""A model service's replica in a real container (docs/serving.md, "The replica"): an inference
session made through ``SessionService.create(..., replica=ReplicaLaunch(...))`` runs its pre-start
actions as the user, serves its start command's port behind the app gate, mounts the model folder
read-only although its owner may write it, and ends with its start command's exit code and output
in the logs.  A client cannot make a replica: ``model_service`` in POST /session goes nowhere."""

from __future__ import annotations

import asyncio
import gc
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.support.sessions import IMAGE, SMALL, running_system
from workbay.manager.models import Keypair, User
from workbay.manager.models.compute import ComputeSession
from workbay.manager.services.access import Actor
from workbay.manager.services.session_apps import app_secret, wait_listening
from workbay.manager.services.session_request import CreateSession, ReplicaLaunch
from workbay.manager.state import ManagerState
from workbay.runner.protocol import gate_hello

pytestmark = pytest.mark.timeout(300)
PORT = 8000


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("replica")) as sysm:
        yield sysm


def manager_state(system) -> ManagerState:
    """The manager's state in the system's manager thread (replicas are made by the manager
    itself, through no API)."""
    states = [o for o in gc.get_objects() if isinstance(o, ManagerState)
              and o.ctx.config.manager.port == system.config.manager.port]
    assert states, "the manager's state was not found"
    return states[-1]


async def on_manager(system, coro) -> Any:
    """Run ``coro`` on the manager's event loop (its database engine lives there)."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, system.manager_handle.loop))


async def actor_of(state: ManagerState, email: str) -> Actor:
    async with state.ctx.db() as s:
        user = (await s.execute(select(User).where(User.email == email))).scalar_one()
        kp = (await s.execute(select(Keypair).where(Keypair.user_id == user.uuid))).scalars().first()
    return Actor(user_id=user.uuid, email=user.email, role=user.role, domain_name=user.domain_name,
                 access_key=kp.access_key)


async def session_row(state: ManagerState, sid: uuid.UUID | str) -> ComputeSession:
    async with state.ctx.db() as s:
        row = await s.get(ComputeSession, uuid.UUID(str(sid)))
        assert row is not None
        return row


async def start_replica(system, email: str, model_service: dict[str, Any], folder: str | None = None,
                        folder_id: uuid.UUID | None = None, wait: bool = True):
    state = manager_state(system)

    async def create():
        actor = await actor_of(state, email)
        req = CreateSession.model_validate({
            "image": IMAGE, "name": f"replica-{uuid.uuid4().hex[:6]}", "type": "inference",
            "enqueueOnly": not wait, "maxWaitSeconds": 120,
            "config": {"resources": SMALL, **({"mounts": [folder], "mount_map": {folder: "/models"}}
                                              if folder else {})}})
        replica = ReplicaLaunch(model_service=model_service,
                                read_only_folders=frozenset({folder_id} if folder_id else ()))
        return await state.sessions.create(actor, req, replica=replica)
    return state, await on_manager(system, create())


async def upload(client, folder: str, path: str, data: bytes) -> None:
    r = await client.post(f"/folders/{folder}/request-upload", json={"path": path, "size": len(data)})
    async with httpx.AsyncClient() as http:
        resp = await http.patch(r["url"], params={"token": r["token"]}, content=data, headers={
            "Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
        assert resp.status_code == 204, resp.text


async def gate_get(port: int, secret: str, path: str) -> tuple[int, str]:
    """An HTTP GET through the app gate, as the app-proxy sends it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(gate_hello(secret) + f"GET {path} HTTP/1.0\r\nHost: replica\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, body = raw.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_a_replica_prepares_serves_behind_the_gate_and_reads_its_model_read_only(system):
    user = await system.login("user@workbay.local")
    folder = f"model-{uuid.uuid4().hex[:6]}"
    folder_id = uuid.UUID((await user.post("/folders", json={"name": folder}))["id"])
    await upload(user, folder, "weights.bin", b"model weights\n")
    spec = {
        "start_command": ["python3", "-m", "http.server", str(PORT)], "port": PORT,
        "model_path": "/models", "definition_name": "test-model",
        "pre_start_actions": [
            {"action": "mkdir", "args": {"path": "cache/deep"}},
            {"action": "write_file", "args": {"filename": "cache/deep/cfg.json", "body": '{"a": 1}'}},
            {"action": "write_tempfile", "args": {"body": "from a tempfile"}},
            {"action": "run_command", "args": {"command": (
                'cat "$WORKBAY_TEMPFILE_1" > tempfile.txt; id -u > uid.txt; cp /models/weights.bin . ; '
                'if touch /models/probe 2>/dev/null; then echo writable; else echo read-only; fi > mount.txt')}},
            {"action": "log", "args": {"message": "replica prepared"}}]}
    state, created = await start_replica(system, "user@workbay.local", spec, folder, folder_id)
    assert created.status == "RUNNING", created
    row = await on_manager(system, session_row(state, created.id))
    assert row.session_type == "inference" and row.model_service == spec and PORT in row.preopen_ports
    mount = next(m for m in row.mounts if m["folder_id"] == str(folder_id))
    assert mount["read_only"] is True and mount["target"] == "/models" and mount["permission"] != "ro"

    published = next(sp for sp in created.service_ports if sp["container_ports"] == [PORT])
    assert published["protocol"] == "preopen" and published["gate_ports"]
    host_port = published["host_ports"][0]
    secret = app_secret(system.config, created.id)
    assert await wait_listening("127.0.0.1", host_port, 90, secret)
    assert await gate_get(host_port, secret, "/cache/deep/cfg.json") == (200, '{"a": 1}')
    assert await gate_get(host_port, secret, "/tempfile.txt") == (200, "from a tempfile")
    assert await gate_get(host_port, secret, "/weights.bin") == (200, "model weights\n")
    assert (await gate_get(host_port, secret, "/mount.txt")) == (200, "read-only\n")
    assert (await gate_get(host_port, secret, "/uid.txt"))[1].strip() != "0"  # the user, not root
    # without the app secret the port answers nothing of the model's
    reader, writer = await asyncio.open_connection("127.0.0.1", host_port)
    writer.write(b"GET /cache/deep/cfg.json HTTP/1.0\r\n\r\n")
    refused = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    assert b"403" in refused.split(b"\r\n")[0]

    logs = (await user.get(f"/session/{created.id}/logs"))["result"]["logs"]
    assert "pre-start action #5 (log): starting" in logs and "replica prepared" in logs, logs
    await user.delete(f"/session/{created.id}")
    await system.wait_status(user, str(created.id), "TERMINATED")


async def test_a_replica_ends_with_its_start_commands_exit_code_or_its_failing_action(system):
    """The container's end is the replica's: the start command's exit code, or 1 when a pre-start
    action fails, saying which -- and the log outlives the container."""
    user = await system.login("user@workbay.local")
    exits = {"start_command": ["sh", "-c", "echo the-model-gave-up; exit 3"], "port": PORT,
             "pre_start_actions": [{"action": "log", "args": {"message": "about to fail"}}]}
    fails = {"start_command": ["python3", "-m", "http.server", str(PORT)], "port": PORT,
             "pre_start_actions": [{"action": "mkdir", "args": {"path": "ok"}},
                                   {"action": "run_command", "args": {"command": ["sh", "-c", "exit 7"]}}]}
    _, exited = await start_replica(system, "user@workbay.local", exits, wait=False)
    _, failed = await start_replica(system, "user@workbay.local", fails, wait=False)
    info = await system.wait_status(user, str(exited.id), ("TERMINATED", "ERROR"), timeout=120)
    assert info["status"] == "TERMINATED" and info["exit_code"] == 3, info
    logs = (await user.get(f"/session/{exited.id}/logs"))["result"]["logs"]
    assert "the-model-gave-up" in logs and "the model service exited with code 3" in logs, logs
    info = await system.wait_status(user, str(failed.id), ("TERMINATED", "ERROR"), timeout=120)
    assert info["status"] == "TERMINATED" and info["exit_code"] == 1, info
    logs = (await user.get(f"/session/{failed.id}/logs"))["result"]["logs"]
    assert "pre-start action #2 (run_command) failed: sh exited with code 7" in logs, logs
    assert "Serving HTTP" not in logs  # the start command never ran


async def test_a_client_cannot_make_a_replica(system):
    user = await system.login("user@workbay.local")
    forged = {"start_command": ["sh", "-c", "id"], "port": 9000}
    created = await user.post("/session", json={
        "image": IMAGE, "name": f"forged-{uuid.uuid4().hex[:6]}", "type": "inference", "enqueueOnly": True,
        "model_service": forged, "modelService": forged,
        "config": {"resources": SMALL, "model_service": forged}})
    state = manager_state(system)
    row = await on_manager(system, session_row(state, created["sessionId"]))
    assert row.model_service is None and 9000 not in (row.preopen_ports or [])
    await user.delete(f"/session/{created['sessionId']}", params={"forced": "true"})


async def test_only_an_inference_session_is_a_replica(system):
    with pytest.raises(ValueError, match="inference session"):
        state = manager_state(system)

        async def create():
            actor = await actor_of(state, "user@workbay.local")
            req = CreateSession.model_validate({"image": IMAGE, "type": "interactive", "config": {"resources": SMALL}})
            await state.sessions.create(actor, req, replica=ReplicaLaunch(model_service={"port": PORT}))
        await on_manager(system, create())
