"""Recovery with real containers: the manager and the agent run as separate components (each in
its own lite handle, sharing one data directory) so either can be stopped and started again.

Manager restart and agent restart keep running sessions RUNNING and usable; an agent that stays
away is declared lost and its sessions end with agent-lost (and its containers are removed once it
comes back); a session that waits longer than the resource group's pending timeout is cancelled.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from tests.support.sessions import (
    IMAGE,
    SMALL,
    containers,
    remove_containers,
    running_system,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)
DEAD = ("TERMINATED", "CANCELLED", "ERROR")
LOST_TIMEOUT = 4.0


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("recovery"), terminate=False,
                              manager={"agent_lost_timeout": LOST_TIMEOUT}) as sysm:
        yield sysm


@pytest.fixture
async def admin(system):
    yield system.admin
    await system.terminate_all()


async def run(client, ref: str, code: str) -> str:
    result = (await client.post(f"/session/{ref}", json={"mode": "query", "runId": "", "code": code}))["result"]
    assert result["status"] == "finished" and result["exitCode"] == 0, result
    return "".join(d for t, d in result["console"] if t == "stdout")


async def test_manager_restart_keeps_sessions(system, admin):
    created = await admin.post("/session", json={"image": IMAGE, "name": "survivor", "config": {"resources": SMALL}})
    sid = created["sessionId"]
    await run(admin, sid, "state = 'kept'")
    # A session still preparing (its bootstrap script runs) when the manager goes away.
    preparing = await admin.post("/session", json={
        "image": IMAGE, "name": "preparing", "enqueueOnly": True, "config": {"resources": SMALL},
        "bootstrap_script": base64.b64encode(b"sleep 4").decode()})
    await system.wait_status(admin, preparing["sessionId"], "PREPARING", timeout=30)
    # A queued session waits through the restart too.
    await admin.patch(f"/admin/agents/{system.agent_id}", json={"schedulable": False})
    queued = await admin.post("/session", json={"image": IMAGE, "name": "queued", "enqueueOnly": True,
                                                "config": {"resources": SMALL}})

    system.stop_manager()
    # Longer than agent_lost_timeout: the restarted manager must not take its own absence for the
    # agent's.
    await asyncio.sleep(LOST_TIMEOUT + 2)
    system.start_manager()

    info = await admin.get(f"/session/{sid}")
    assert info["status"] == "RUNNING", info
    assert (await run(admin, sid, "print(state)")).strip() == "kept"
    # Heartbeats resume and the agent stays ALIVE past the lost timeout.
    await asyncio.sleep(LOST_TIMEOUT + 2)
    agent = next(a for a in (await admin.get("/admin/agents"))["items"] if a["id"] == system.agent_id)
    assert agent["status"] == "ALIVE", agent
    assert (await admin.get(f"/session/{sid}"))["status"] == "RUNNING"
    assert (await admin.get(f"/session/{queued['sessionId']}"))["status"] == "PENDING"
    # The start that began before the restart completes after it.
    started = await system.wait_status(admin, preparing["sessionId"], ("RUNNING", *DEAD), timeout=30)
    assert started["status"] == "RUNNING", started
    assert (await run(admin, preparing["sessionId"], "print('ready')")).strip() == "ready"
    await admin.delete(f"/session/{preparing['sessionId']}")
    await admin.patch(f"/admin/agents/{system.agent_id}", json={"schedulable": True})
    await system.wait_status(admin, queued["sessionId"], "RUNNING", timeout=30)

    await admin.delete(f"/session/{sid}")
    await system.wait_status(admin, sid, "TERMINATED")
    assert containers("ai.backend.session-id", sid) == []


async def test_agent_restart_readopts(system, admin):
    created = await admin.post("/session", json={"image": IMAGE, "name": "adopted", "config": {"resources": SMALL}})
    sid = created["sessionId"]
    await run(admin, sid, "state = 41")
    [before] = containers("ai.backend.session-id", sid)

    system.stop_agent()
    # The container keeps running without its agent.
    assert [c["State"] for c in containers("ai.backend.session-id", sid)] == ["running"]
    system.start_agent()
    await system.wait_agent_ready()

    info = await admin.get(f"/session/{sid}")
    assert info["status"] == "RUNNING", info
    [after] = containers("ai.backend.session-id", sid)
    assert after["Id"] == before["Id"]
    # Same container, same interpreter.
    assert (await run(admin, sid, "print(state + 1)")).strip() == "42"
    # The adopted kernel still holds its resources on the agent.
    agent = next(a for a in (await admin.get("/admin/agents"))["items"] if a["id"] == system.agent_id)
    assert float(agent["occupied_slots"]["cpu"]) == 1
    # Still RUNNING well after the restart (no spurious lost/terminated report).
    await asyncio.sleep(2)
    assert (await admin.get(f"/session/{sid}"))["status"] == "RUNNING"
    await admin.delete(f"/session/{sid}")
    await system.wait_status(admin, sid, "TERMINATED")
    assert containers("ai.backend.session-id", sid) == []


async def test_container_removed_while_agent_away(system, admin):
    created = await admin.post("/session", json={"image": IMAGE, "name": "vanished", "config": {"resources": SMALL}})
    sid = created["sessionId"]
    system.stop_agent()
    remove_containers("ai.backend.session-id", sid)
    system.start_agent()
    await system.wait_agent_ready()
    # No event can tell (the agent never saw it end): the manager notices that the agent no longer
    # reports the kernel, and after a grace period for late events ends the session.
    info = await system.wait_status(admin, sid, DEAD, timeout=2 * LOST_TIMEOUT + 20)
    assert (info["status"], info["statusInfo"]) == ("TERMINATED", "kernel-lost"), info
    agent = next(a for a in (await admin.get("/admin/agents"))["items"] if a["id"] == system.agent_id)
    assert agent["status"] == "ALIVE"
    assert agent["occupied_slots"] == {} or all(float(v) == 0 for v in agent["occupied_slots"].values())


async def test_pending_timeout_cancels(system, admin):
    await admin.patch("/admin/resource-groups/default", json={"pending_timeout": 3})
    try:
        # More than the group can ever hold: it waits, then times out.
        created = await admin.post("/session", json={"image": IMAGE, "name": "too-big", "enqueueOnly": True,
                                                     "config": {"resources": {"cpu": 8, "mem": "256m"}}})
        sid = created["sessionId"]
        await asyncio.sleep(1)
        assert (await admin.get(f"/session/{sid}"))["status"] == "PENDING"
        info = await system.wait_status(admin, sid, DEAD, timeout=20)
    finally:
        await admin.patch("/admin/resource-groups/default", json={"pending_timeout": 0})
    assert (info["status"], info["statusInfo"]) == ("CANCELLED", "pending-timeout"), info
    assert [h["status"] for h in info["status_history"]] == ["PENDING", "CANCELLED"]
    assert info["kernels"][0]["status"] == "CANCELLED"
    assert containers("ai.backend.session-id", sid) == []


async def test_agent_lost_then_back(system, admin):
    created = await admin.post("/session", json={"image": IMAGE, "name": "orphaned", "config": {"resources": SMALL}})
    sid = created["sessionId"]
    system.stop_agent()

    info = await system.wait_status(admin, sid, DEAD, timeout=LOST_TIMEOUT + 20)
    assert (info["status"], info["statusInfo"]) == ("TERMINATED", "agent-lost"), info
    assert info["kernels"][0]["status"] == "TERMINATED" and info["kernels"][0]["status_info"] == "agent-lost"
    agent = next(a for a in (await admin.get("/admin/agents"))["items"] if a["id"] == system.agent_id)
    assert agent["status"] == "LOST" and agent["lost_at"], agent
    assert agent["occupied_slots"] == {} or all(float(v) == 0 for v in agent["occupied_slots"].values())
    # Nothing is scheduled on a lost agent.
    # It needs the whole agent, so it fits only once the orphaned container below is gone: the
    # agent may refuse it at first (its bookkeeping still counts that container) and the session
    # is then requeued, not failed.
    waiting = await admin.post("/session", json={"image": IMAGE, "name": "after-loss", "enqueueOnly": True,
                                                 "config": {"resources": {"cpu": 2, "mem": "256m"}}})
    await asyncio.sleep(1.5)
    assert (await admin.get(f"/session/{waiting['sessionId']}"))["status"] == "PENDING"

    # The container outlived its agent; when the agent comes back, the manager has it removed
    # (the session ended) and the waiting session runs.
    assert [c["State"] for c in containers("ai.backend.session-id", sid)] == ["running"]
    system.start_agent()
    await system.wait_agent_ready()

    async def removed():
        return containers("ai.backend.session-id", sid) == []
    await wait_for(removed, 30, "the orphaned container is removed")
    running = await system.wait_status(admin, waiting["sessionId"], ("RUNNING", "ERROR"), timeout=30)
    assert running["status"] == "RUNNING", running
    info = await admin.get(f"/session/{sid}")
    assert (info["status"], info["statusInfo"]) == ("TERMINATED", "agent-lost")
