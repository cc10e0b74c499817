"""Several agents (what `workbay up --agents N` runs): two agents of one core and 2 GiB each on the
same engine.  Multi-node cluster sessions span agents and their containers reach each other
(`ssh sub1` from main1); a single-node cluster that no one agent can hold waits and says why;
placement honours the admin-designated agent and avoids unschedulable ones."""

from __future__ import annotations

import httpx
import pytest

from tests.support.sessions import IMAGE, SMALL, containers, running_system, wait_for
from workbay.client.sdk import APIError

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("multi"), terminate=False, agents=2, agent_slots={"cpu": "1", "mem": "2g"}) as sysm:
        await sysm.admin.patch("/admin/resource-policies/keypair/default", json={"max_containers_per_session": 4})
        yield sysm


@pytest.fixture
async def admin(system):
    yield system.admin
    await system.terminate_all()


async def run(client, sid: str, code: str) -> str:
    result = (await client.post(f"/session/{sid}", json={"mode": "query", "runId": "", "code": code}))["result"]
    while result["status"] == "continued":
        result = (await client.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"], "code": ""}))["result"]
    assert result["status"] == "finished", result
    return "".join(d for t, d in result["console"] if t == "stdout")


async def put_file(client, folder: str, path: str, data: bytes) -> None:
    r = await client.post(f"/folders/{folder}/request-upload", json={"path": path, "size": len(data)})
    async with httpx.AsyncClient() as http:
        resp = await http.patch(r["url"], params={"token": r["token"]}, content=data, headers={
            "Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
        assert resp.status_code == 204, resp.text


async def folder_bytes(client, folder: str) -> dict[str, tuple]:
    out = {}
    for item in (await client.get(f"/folders/{folder}/files"))["items"]:
        r = await client.post(f"/folders/{folder}/request-download", json={"path": item["name"]})
        async with httpx.AsyncClient() as http:
            out[item["name"]] = (item["size"], item["modified"],
                                 (await http.get(r["url"], params={"token": r["token"]})).content)
    return out


async def test_multi_node_cluster_spans_agents(system, admin):
    # the owner's persistent .ssh folder (automounted): `ssh sub1` works next to it, untouched
    await admin.post("/folders", json={"name": ".ssh"})
    await put_file(admin, ".ssh", "authorized_keys", b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwnKeyOfTheUser me@laptop\n")
    await put_file(admin, ".ssh", "config", b"Host github.com\n  User git\n")
    ssh_before = await folder_bytes(admin, ".ssh")
    created = await admin.post("/session", json={
        "image": IMAGE, "name": "multi-node", "clusterSize": 2, "clusterMode": "multi-node",
        "config": {"resources": SMALL}})
    assert created["status"] == "RUNNING", created
    sid = created["sessionId"]
    info = await admin.get(f"/session/{sid}")
    placed = {k["cluster_hostname"]: k["agent_id"] for k in info["kernels"]}
    assert set(placed) == {"main1", "sub1"} and set(placed.values()) == set(system.agent_ids), placed
    assert sorted(info["agents"]) == sorted(system.agent_ids)
    out = await run(admin, sid, (
        "import os, subprocess\n"
        "r = subprocess.run(['ssh', 'sub1', 'hostname'], capture_output=True, text=True, timeout=60)\n"
        "print(r.stdout.strip(), r.returncode)\n"
        "print(os.environ['BACKENDAI_CLUSTER_MODE'], os.environ['BACKENDAI_CLUSTER_HOSTS'])\n"
        "print(sorted(os.listdir(os.path.expanduser('~/.ssh'))))\n"))
    assert out.splitlines() == ["sub1 0", "multi-node main1,sub1", "['authorized_keys', 'config']"], out
    # Each agent's container is labelled with its agent.
    by_agent = {c["Labels"]["ai.backend.agent-id"] for c in containers("ai.backend.session-id", sid)}
    assert by_agent == set(system.agent_ids)

    await admin.delete(f"/session/{sid}")
    info = await system.wait_status(admin, sid, "TERMINATED")
    assert all(k["status"] == "TERMINATED" for k in info["kernels"])
    assert containers("ai.backend.session-id", sid) == []
    assert await folder_bytes(admin, ".ssh") == ssh_before
    await admin.delete("/folders/.ssh")
    await admin.delete("/folders/.ssh/purge")


async def test_single_node_cluster_too_big_for_any_agent(system, admin):
    created = await admin.post("/session", json={
        "image": IMAGE, "name": "single-node-2", "clusterSize": 2, "clusterMode": "single-node",
        "enqueueOnly": True, "config": {"resources": SMALL}})
    sid = created["sessionId"]

    async def refused():
        hist = await admin.get(f"/session/{sid}/status-history")
        cap = next((p for p in hist["scheduling"].get("predicates", []) if p["name"] == "resource group capacity"), None)
        return cap if cap and not cap["passed"] else None
    cap = await wait_for(refused, 15, "the capacity predicate fails")
    assert cap["message"]
    assert (await admin.get(f"/session/{sid}"))["status"] == "PENDING"
    # It does not hold back the queue: a session that fits runs meanwhile.
    fits = await admin.post("/session", json={"image": IMAGE, "name": "fits", "config": {"resources": SMALL}})
    assert fits["status"] == "RUNNING"
    await admin.delete(f"/session/{sid}")
    assert (await admin.get(f"/session/{sid}"))["status"] == "CANCELLED"


async def test_designated_and_unschedulable_agents(system, admin):
    first, second = system.agent_ids
    created = await admin.post("/session", json={
        "image": IMAGE, "name": "designated", "config": {"resources": SMALL, "agentList": [second]}})
    info = await admin.get(f"/session/{created['sessionId']}")
    assert info["status"] == "RUNNING" and info["kernels"][0]["agent_id"] == second
    user = await system.login("user@workbay.local")
    with pytest.raises(APIError) as e:
        await user.post("/session", json={"image": IMAGE, "name": "choosy", "config": {
            "resources": SMALL, "agentList": [first]}})
    assert e.value.status == 403

    await admin.patch(f"/admin/agents/{first}", json={"schedulable": False})
    try:
        # The only free agent is unschedulable: the next session waits.
        waiting = await admin.post("/session", json={"image": IMAGE, "name": "waits", "enqueueOnly": True,
                                                     "config": {"resources": SMALL}})

        async def tried():
            got = await admin.get(f"/session/{waiting['sessionId']}")
            return got if got["scheduling_attempts"] >= 2 else None
        assert (await wait_for(tried, 10, "two scheduling attempts"))["status"] == "PENDING"
        # Freeing the schedulable agent lets it run there.
        await admin.delete(f"/session/{created['sessionId']}")
        running = await system.wait_status(admin, waiting["sessionId"], "RUNNING", timeout=30)
        assert running["kernels"][0]["agent_id"] == second
    finally:
        await admin.patch(f"/admin/agents/{first}", json={"schedulable": True})
