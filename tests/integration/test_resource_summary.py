"""UI-4 / AS-1 data: what a resource group holds, as users and admins see it."""

from __future__ import annotations

import uuid

import pytest

from workbay.client.sdk import APIError
from workbay.manager.models import Agent, ComputeSession


async def _user(h, role="user"):
    name = f"rs-{uuid.uuid4().hex[:8]}"
    u = await h.admin().post("/admin/users", json={"email": f"{name}@example.test", "username": name,
                                                     "password": "Summ4ry!pass", "role": role})
    return u, h.client(u["keypair"]["access_key"], u["keypair"]["secret_key"])


async def test_summary_and_agent_summary(manager):
    h = manager
    alice, ac = await _user(h)
    bob, bc = await _user(h)
    adm, admin = await _user(h, role="admin")
    projects = (await h.admin().get("/admin/projects", params={"domain": "default"}))["items"]
    default = next(p for p in projects if p["name"] == "default")
    await h.admin().post(f"/admin/projects/{default['id']}/members", json={"emails": [alice["email"], bob["email"], adm["email"]]})
    agent_id = f"rs-agent-{uuid.uuid4().hex[:6]}"
    async with h.state.ctx.db.begin() as s:
        s.add(Agent(id=agent_id, status="ALIVE", addr="http://127.0.0.1:9", resource_group="default",
                    available_slots={"cpu": "4", "mem": str(8 << 30)}, occupied_slots={"cpu": "1", "mem": str(1 << 30)},
                    live_stat={"node": {"cpu_util": {"pct": "25"}, "mem": {"current": str(2 << 30), "capacity": str(8 << 30)}}}))
        for owner, status in ((alice, "RUNNING"), (alice, "PENDING"), (bob, "RUNNING")):
            s.add(ComputeSession(name=f"rs-{uuid.uuid4().hex[:6]}", access_key=owner["keypair"]["access_key"],
                                 user_id=uuid.UUID(owner["uuid"]), project_id=uuid.UUID(default["id"]),
                                 domain_name="default", resource_group="default", image="x", status=status))
    mine = await ac.get("/resource/summary")
    assert mine["resource_group"] == "default" and "default" in mine["resource_groups"]
    assert mine["agents"]["alive"] >= 1
    assert mine["sessions"] == {"running": 1, "pending": 1, "live": 2}      # only her own
    assert mine["my_sessions"]["live"] == 2 and mine["my_sessions"]["limit"] == 30
    assert float(mine["capacity"]["cpu"]) >= 4
    assert mine["utilization"]["cpu"] is not None and mine["utilization"]["mem"] is not None  # measured, UI-4
    # Workbay's own endpoint speaks Workbay's names: ``project`` and ``resource_group``
    named = await ac.get("/resource/summary", params={"project": "default", "resource_group": "default"})
    assert named["project"] == {"id": default["id"], "name": "default"} and named["resource_group"] == "default"
    by_id = await ac.get("/resource/agent-summary", params={"project": default["id"]})
    assert agent_id in {a["id"] for a in by_id["items"]}
    for old in ({"group": "default"}, {"scaling_group": "default"}):  # Backend.AI's names are refused, not ignored
        for path in ("/resource/summary", "/resource/agent-summary"):
            with pytest.raises(APIError) as e:
                await ac.get(path, params=old)
            assert e.value.status == 400 and next(iter(old)) in str(e.value)
    seen = await admin.get("/resource/summary")
    assert seen["sessions"]["running"] >= 2                                  # the domain's
    agents = {a["id"]: a for a in (await bc.get("/resource/agent-summary"))["items"]}
    assert agents[agent_id]["available_slots"]["cpu"] == "4" and "addr" not in agents[agent_id]
    async with h.state.ctx.db.begin() as s:
        for row in (await s.execute(ComputeSession.__table__.select().where(
                ComputeSession.access_key.in_([alice["keypair"]["access_key"], bob["keypair"]["access_key"]])))).all():
            (await s.get(ComputeSession, row.id)).status = "TERMINATED"
        (await s.get(Agent, agent_id)).status = "TERMINATED"


async def test_check_presets_for_an_owner(manager):
    """CS-4: an admin launching for someone else sees the owner's limits and use, not their own."""
    h = manager
    name = f"small-{uuid.uuid4().hex[:6]}"
    await h.admin().post("/admin/resource-policies/keypair", json={
        "name": name, "total_resource_slots": {"cpu": "1", "mem": str(1 << 30)}})
    alice, ac = await _user(h)
    bob, bc = await _user(h)
    await h.admin().patch(f"/admin/keypairs/{alice['keypair']['access_key']}", json={"resource_policy": name})
    projects = (await h.admin().get("/admin/projects", params={"domain": "default"}))["items"]
    default = next(p for p in projects if p["name"] == "default")
    await h.admin().post(f"/admin/projects/{default['id']}/members", json={"emails": [alice["email"], bob["email"]]})

    own = await h.admin().post("/resource/check-presets", json={})
    assert own["keypair_limits"].get("cpu") != "1"
    for_alice = await h.admin().post("/resource/check-presets",
                                     json={"owner_access_key": alice["keypair"]["access_key"]})
    assert for_alice["keypair_limits"]["cpu"] == "1" and for_alice["keypair_limits"]["mem"] == str(1 << 30)
    assert for_alice == await ac.post("/resource/check-presets", json={})   # what she sees herself
    # a user may not look at another user's limits this way
    with pytest.raises(APIError) as e:
        await bc.post("/resource/check-presets", json={"owner_access_key": alice["keypair"]["access_key"]})
    assert e.value.status == 403
    with pytest.raises(APIError) as e:
        await h.admin().post("/resource/check-presets", json={"owner_access_key": "AKNOSUCHKEY000000000"})
    assert e.value.status == 404
