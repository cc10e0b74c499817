"""Compute sessions end to end with real Podman containers: one manager and one agent (capacity
cpu=2, mem=4g) over loopback HTTP, driven through the Backend.AI REST API with signed requests.

Covers the lifecycle and status history, execute and logs, batch sessions (success, failure,
timeout, scheduled start), the guide's queue example, single-node cluster sessions with `ssh sub1`,
resource limits inside the container, agent schedulability, usage recalculation and the session
event stream.  Each test leaves no live session behind.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import subprocess

import pytest

from tests.support.sessions import (
    IMAGE,
    SMALL,
    EventStream,
    containers,
    podman_exec,
    running_system,
    wait_for,
)
from workbay.client.sdk import APIError

pytestmark = pytest.mark.timeout(240)
DEAD = ("TERMINATED", "CANCELLED", "ERROR")


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("sessions"), terminate=False) as sysm:
        yield sysm


@pytest.fixture
async def admin(system):
    yield system.admin
    await system.terminate_all()


def history(info: dict) -> list[str]:
    return [h["status"] for h in info["status_history"]]


async def create(client, name: str, **body) -> dict:
    body.setdefault("config", {"resources": SMALL})
    return await client.post("/session", json={"image": IMAGE, "name": name, **body})


# -- 1. lifecycle --------------------------------------------------------------------------------
async def test_create_execute_logs_terminate(system, admin):
    created = await create(admin, "life-1")
    assert created["created"] is True and created["status"] == "RUNNING", created
    sid = created["sessionId"]
    assert {p["name"] for p in created["servicePorts"]} >= {"jupyter", "sshd"}

    result = (await admin.post("/session/life-1", json={"mode": "query", "runId": "", "code": "print(6*7)"}))["result"]
    assert result["status"] == "finished" and result["exitCode"] == 0, result
    assert "".join(d for t, d in result["console"] if t == "stdout").strip() == "42"

    # The interpreter persists between runs of one kernel.
    await admin.post("/session/life-1", json={"mode": "query", "runId": "", "code": "x = 20"})
    result = (await admin.post("/session/life-1", json={"mode": "query", "runId": "", "code": "print(x + 1)"}))["result"]
    assert result["console"] == [["stdout", "21\n"]], result

    logs = (await admin.get("/session/life-1/logs"))["result"]["logs"]
    assert "[workbay-runner]" in logs and "kernel ready" in logs, logs

    info = await admin.get("/session/life-1")
    assert info["status"] == "RUNNING" and info["numQueriesExecuted"] == 3
    [kernel] = info["kernels"]
    assert kernel["cluster_role"] == "main" and kernel["agent_id"] == system.agent_id
    running = containers("ai.backend.session-id", sid)
    assert [c["State"] for c in running] == ["running"]
    assert running[0]["Id"].startswith(kernel["container_id"][:12])

    stats = await admin.delete("/session/life-1")
    assert stats["stats"]["status"] == "terminated"
    info = await system.wait_status(admin, sid, "TERMINATED")
    assert info["statusInfo"] == "user-requested"
    assert history(info) == ["PENDING", "SCHEDULED", "PREPARING", "RUNNING", "TERMINATING", "TERMINATED"]
    assert info["terminationTime"] and info["kernels"][0]["status"] == "TERMINATED"
    hist = await admin.get(f"/session/{sid}/status-history")
    assert [h["status"] for h in hist["result"]] == history(info)
    assert containers("ai.backend.session-id", sid) == []
    # The saved logs outlive the container.
    assert "kernel ready" in (await admin.get(f"/session/{sid}/logs"))["result"]["logs"]
    # Executing in a finished session answers like Backend.AI: a vanished kernel, exit code 130.
    gone = (await admin.post(f"/session/{sid}", json={"mode": "query", "runId": "", "code": "1"}))["result"]
    assert gone["status"] == "finished" and gone["exitCode"] == 130
    # Resources are released: the agent holds nothing any more.
    agent = next(a for a in (await admin.get("/admin/agents"))["items"] if a["id"] == system.agent_id)
    assert agent["occupied_slots"] == {} or all(float(v) == 0 for v in agent["occupied_slots"].values())
    # the heartbeat carries the node's memory and disk use (the Agents tab's utilization)
    node = agent["live_stat"]["node"]
    assert 0 < float(node["mem"]["pct"]) <= 100 and 0 < float(node["disk"]["pct"]) <= 100


async def test_container_death_is_reported(system, admin):
    created = await create(admin, "dies")
    sid = created["sessionId"]
    [ctr] = containers("ai.backend.session-id", sid)
    subprocess.run(["podman", "kill", "--signal", "KILL", ctr["Id"]], check=True, capture_output=True, timeout=60)
    info = await system.wait_status(admin, sid, DEAD, timeout=30)
    assert (info["status"], info["statusInfo"]) == ("TERMINATED", "self-terminated"), info
    assert info["exit_code"] == 137 and info["kernels"][0]["exit_code"] == 137
    assert containers("ai.backend.session-id", sid) == []


async def test_restart_rename_environ_stats(system, admin):
    created = await create(admin, "restartable", config={"resources": SMALL, "environ": {"GREETING": "hello"}})
    sid = created["sessionId"]
    out = (await admin.post(f"/session/{sid}", json={"mode": "query", "runId": "", "code": (
        "import os\n"
        "open('/home/work/kept.txt', 'w').write('kept')\n"
        "state = 1\n"
        "print(os.environ['GREETING'], os.environ['BACKENDAI_SESSION_ID'], os.getuid())\n")}))["result"]
    assert out["console"] == [["stdout", f"hello {sid} 1000\n"]], out

    await admin.post("/session/restartable/rename", params={"name": "renamed"})
    assert (await admin.get("/session/renamed"))["id"] == sid

    await admin.patch("/session/renamed")
    info = await system.wait_status(admin, sid, "RUNNING", timeout=60)
    assert history(info)[-2:] == ["RESTARTING", "RUNNING"] and info["statusInfo"] == "restarted"
    out = (await admin.post(f"/session/{sid}", json={"mode": "query", "runId": "", "code": (
        "print(open('/home/work/kept.txt').read(), 'state' in globals())")}))["result"]
    assert out["console"] == [["stdout", "kept False\n"]], out

    # Agents sample usage; the manager keeps the last sample per kernel (the session's lastStat).
    async def sampled():
        stat = (await admin.get(f"/session/{sid}"))["lastStat"]
        return stat if stat.get("mem", {}).get("current") else None
    stat = await wait_for(sampled, 30, "a usage sample arrives")
    assert 0 < int(stat["mem"]["current"]) <= 256 * 2**20 and "cpu_util" in stat


async def test_admin_launches_for_a_user(system, admin):
    user = await system.login("user@workbay.local")
    me = await user.get("/user/me")
    ak = user.access_key
    created = await create(admin, "on-behalf", owner_access_key=ak)
    assert created["status"] == "RUNNING"
    info = await user.get("/session/on-behalf")
    assert info["id"] == created["sessionId"] and info["access_key"] == ak and info["user_id"] == me["uuid"]
    # A regular user cannot launch for someone else.
    with pytest.raises(APIError) as e:
        await create(user, "not-allowed", owner_access_key=admin.access_key)
    assert e.value.status in (403, 404)
    await user.delete("/session/on-behalf")
    await system.wait_status(user, created["sessionId"], "TERMINATED")


async def test_failure_while_preparing_is_an_error(system, admin):
    # The bootstrap script keeps the session PREPARING; the container dies meanwhile.
    script = base64.b64encode(b"sleep 60").decode()
    created = await create(admin, "dies-early", enqueueOnly=True, bootstrap_script=script)
    sid = created["sessionId"]

    async def preparing_container():
        info = await admin.get(f"/session/{sid}")
        found = containers("ai.backend.session-id", sid)
        return found[0] if info["status"] == "PREPARING" and found and found[0]["State"] == "running" else None
    ctr = await wait_for(preparing_container, 30, "the container runs while the session prepares")
    subprocess.run(["podman", "kill", "--signal", "KILL", ctr["Id"]], check=True, capture_output=True, timeout=60)
    info = await system.wait_status(admin, sid, DEAD, timeout=30)
    assert (info["status"], info["statusInfo"]) == ("ERROR", "failed-to-start"), info
    assert "RUNNING" not in history(info)
    assert info["status_data"]["error"]["message"]
    assert containers("ai.backend.session-id", sid) == []


# -- 2. batch ------------------------------------------------------------------------------------
async def test_batch_success_and_failure(system, admin):
    ok, bad = await asyncio.gather(
        create(admin, "batch-ok", type="batch", startupCommand="echo hi"),
        create(admin, "batch-bad", type="batch", startupCommand="echo oops >&2; exit 3"))
    ok = await system.wait_status(admin, ok["sessionId"], DEAD)
    bad = await system.wait_status(admin, bad["sessionId"], DEAD)
    assert (ok["status"], ok["result"], ok["exit_code"], ok["statusInfo"]) == ("TERMINATED", "SUCCESS", 0, "task-finished"), ok
    assert (bad["status"], bad["result"], bad["exit_code"], bad["statusInfo"]) == ("TERMINATED", "FAILURE", 3, "task-failed"), bad
    assert "RUNNING" in history(ok) and history(ok)[-1] == "TERMINATED"
    assert "hi" in (await admin.get(f"/session/{ok['id']}/logs"))["result"]["logs"]
    assert "oops" in (await admin.get(f"/session/{bad['id']}/logs"))["result"]["logs"]
    for s in (ok, bad):
        assert containers("ai.backend.session-id", s["id"]) == []


async def test_batch_timeout_and_scheduled_start(system, admin):
    slow = await create(admin, "batch-slow", type="batch", startupCommand="sleep 30", batchTimeout=2)
    later = await create(admin, "batch-later", type="batch", startupCommand="echo later", starts_at="5s",
                         enqueueOnly=True)
    assert later["status"] == "PENDING"

    # The reserved start time holds the session back, with the predicate saying why.
    async def start_time_failed():
        hist = await admin.get("/session/batch-later/status-history")
        preds = {p["name"]: p for p in hist["scheduling"].get("predicates", [])}
        return preds.get("reserved start time", {}).get("passed") is False and preds["reserved start time"]
    pred = await wait_for(start_time_failed, 10, "the reserved start time predicate fails")
    assert pred["message"]
    assert (await admin.get("/session/batch-later"))["status"] == "PENDING"

    slow = await system.wait_status(admin, slow["sessionId"], DEAD, timeout=40)
    assert (slow["status"], slow["result"], slow["statusInfo"]) == ("TERMINATED", "FAILURE", "batch-timeout"), slow
    assert slow["exit_code"] == 124
    # It ran about batch_timeout seconds, not the 30 s of its command.
    assert slow["age"] < 20_000

    later = await system.wait_status(admin, later["sessionId"], DEAD, timeout=40)
    assert (later["status"], later["result"], later["exit_code"]) == ("TERMINATED", "SUCCESS", 0), later
    started = next(h for h in later["status_history"] if h["status"] == "SCHEDULED")
    assert started["timestamp"] >= later["starts_at"]


async def test_batch_dependencies(system, admin):
    first = await create(admin, "dep-first", type="batch", startupCommand="sleep 2", enqueueOnly=True)
    failing = await create(admin, "dep-fails", type="batch", startupCommand="exit 1", enqueueOnly=True)
    after = await create(admin, "dep-after", type="batch", startupCommand="echo after", enqueueOnly=True,
                         dependencies=[first["sessionId"]])
    doomed = await create(admin, "dep-doomed", type="batch", startupCommand="echo never", enqueueOnly=True,
                          dependencies=["dep-fails"])

    async def waiting_on_dependency():
        hist = await admin.get(f"/session/{after['sessionId']}/status-history")
        pred = next((p for p in hist["scheduling"].get("predicates", []) if p["name"] == "dependencies"), None)
        return pred if pred and not pred["passed"] else None
    assert (await wait_for(waiting_on_dependency, 10, "the dependency predicate fails"))["message"]

    after = await system.wait_status(admin, after["sessionId"], DEAD, timeout=40)
    first = await admin.get(f"/session/{first['sessionId']}")
    assert (after["status"], after["result"]) == ("TERMINATED", "SUCCESS"), after
    # It started only once the session it depends on had finished.
    started = next(h["timestamp"] for h in after["status_history"] if h["status"] == "SCHEDULED")
    assert started >= first["terminationTime"]
    doomed = await system.wait_status(admin, doomed["sessionId"], DEAD, timeout=30)
    assert (doomed["status"], doomed["statusInfo"]) == ("CANCELLED", "dependency-failed"), doomed
    assert (await admin.get(f"/session/{failing['sessionId']}"))["result"] == "FAILURE"


# -- 3. the guide's queue example ------------------------------------------------------------------
async def test_queue_capacity_for_two(system, admin):
    created = await admin.post("/session", json={
        "image": IMAGE, "name": "queue", "count": 3, "enqueueOnly": True, "config": {"resources": SMALL}})
    ids = [s["sessionId"] for s in created["sessions"]]
    assert len(ids) == 3

    async def settled():
        infos = [await admin.get(f"/session/{i}") for i in ids]
        statuses = sorted(i["status"] for i in infos)
        return infos if statuses == ["PENDING", "RUNNING", "RUNNING"] else None
    async def describe():
        return [(i["status"], i["statusInfo"], (i["status_data"] or {}).get("error")) for i in
                [await admin.get(f"/session/{x}") for x in ids]]
    infos = await wait_for(settled, 60, "two sessions run and one waits", describe)
    # FIFO: the first two requested are the ones running.
    assert [i["status"] for i in infos] == ["RUNNING", "RUNNING", "PENDING"]
    waiting = infos[2]

    async def explained():
        hist = await admin.get(f"/session/{waiting['id']}/status-history")
        preds = {p["name"]: p for p in hist["scheduling"].get("predicates", [])}
        cap = preds.get("resource group capacity")
        return (hist, cap) if cap and cap["passed"] is False else None
    hist, cap = await wait_for(explained, 10, "the capacity predicate is recorded as failed")
    assert cap["message"], cap
    assert hist["scheduling"]["retries"] >= 1
    others = [p for p in hist["scheduling"]["predicates"] if p["name"] != "resource group capacity"]
    assert all(p["passed"] for p in others), others
    assert (await admin.get(f"/session/{waiting['id']}"))["statusInfo"] == "pending"

    # Still pending a few ticks later (nothing freed).
    await asyncio.sleep(1.5)
    assert (await admin.get(f"/session/{waiting['id']}"))["status"] == "PENDING"

    await admin.delete(f"/session/{ids[0]}")
    third = await system.wait_status(admin, ids[2], "RUNNING", timeout=30)
    assert history(third)[:4] == ["PENDING", "SCHEDULED", "PREPARING", "RUNNING"]
    result = (await admin.post(f"/session/{ids[2]}", json={"mode": "query", "runId": "", "code": "print('third')"}))["result"]
    assert result["console"] == [["stdout", "third\n"]]


# -- 4. cluster sessions -------------------------------------------------------------------------
async def test_cluster_of_three_single_node(system, admin):
    # Backend.AI's default keypair policy allows one container per session.
    with pytest.raises(APIError) as e:
        await create(admin, "cluster-3", clusterSize=3)
    assert e.value.status == 400 and "containers per session" in e.value.message
    await admin.patch("/admin/resource-policies/keypair/default", json={"max_containers_per_session": 3})
    # The image asks for at least one core per kernel; three kernels on two cores need less.
    image = await admin.patch(f"/admin/images/{IMAGE}", json={"min_slots": {"cpu": "0.5", "mem": "256m"}})
    assert image["min_slots"] == {"cpu": "0.5", "mem": str(256 * 2**20)}
    try:
        created = await create(admin, "cluster-3", clusterSize=3, clusterMode="single-node",
                               config={"resources": {"cpu": "0.5", "mem": "256m"}})
    finally:
        await admin.patch(f"/admin/images/{IMAGE}", json={"min_slots": {"cpu": "1", "mem": "256m"}})
    assert created["status"] == "RUNNING", created
    sid = created["sessionId"]
    info = await admin.get(f"/session/{sid}")
    assert [k["cluster_hostname"] for k in info["kernels"]] == ["main1", "sub1", "sub2"]
    assert [(k["cluster_role"], k["cluster_idx"]) for k in info["kernels"]] == [("main", 1), ("sub", 1), ("sub", 2)]
    assert all(k["status"] == "RUNNING" for k in info["kernels"])
    assert len(containers("ai.backend.session-id", sid)) == 3

    code = ("import subprocess, os\n"
            "r = subprocess.run(['ssh', 'sub1', 'hostname'], capture_output=True, text=True, timeout=60)\n"
            "print(r.stdout.strip(), r.returncode, r.stderr.strip()[-300:])\n"
            "print(os.environ['BACKENDAI_CLUSTER_HOSTS'], os.environ['BACKENDAI_CLUSTER_ROLE'],"
            " os.environ['BACKENDAI_CLUSTER_SIZE'])\n")
    result = (await admin.post(f"/session/{sid}", json={"mode": "query", "runId": "", "code": code}))["result"]
    while result["status"] == "continued":
        result = (await admin.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"], "code": ""}))["result"]
    out = "".join(d for t, d in result["console"] if t == "stdout").splitlines()
    assert out[0].split()[0] == "sub1", result
    assert out[1] == "main1,sub1,sub2 main 3", out

    # The batch mode of execute runs shell commands: sub2 is reachable too.
    result = (await admin.post(f"/session/{sid}", json={
        "mode": "batch", "runId": "", "code": "", "options": {"exec": "ssh sub2 hostname", "clean": "*", "build": "*"}}))["result"]
    while result["status"] in ("continued", "clean-finished", "build-finished"):
        result = (await admin.post(f"/session/{sid}", json={"mode": "continue", "runId": result["runId"], "code": ""}))["result"]
    assert "sub2" in "".join(d for t, d in result["console"] if t == "stdout"), result

    await admin.delete(f"/session/{sid}")
    info = await system.wait_status(admin, sid, "TERMINATED")
    assert all(k["status"] == "TERMINATED" for k in info["kernels"])
    assert containers("ai.backend.session-id", sid) == []


async def test_cluster_kernel_failing_to_start_fails_the_session(system, admin):
    await admin.patch("/admin/resource-policies/keypair/default", json={"max_containers_per_session": 2})
    script = base64.b64encode(b"sleep 60").decode()
    created = await create(admin, "cluster-fails", clusterSize=2, enqueueOnly=True, bootstrap_script=script)
    sid = created["sessionId"]

    async def sub_preparing():
        found = [c for c in containers("ai.backend.session-id", sid)
                 if c["Labels"].get("ai.backend.cluster-hostname") == "sub1" and c["State"] == "running"]
        return found[0] if found and (await admin.get(f"/session/{sid}"))["status"] == "PREPARING" else None
    sub = await wait_for(sub_preparing, 30, "sub1 runs while the session prepares")
    subprocess.run(["podman", "kill", "--signal", "KILL", sub["Id"]], check=True, capture_output=True, timeout=60)
    # One kernel failing to start fails the whole session; the other kernel is destroyed.
    info = await system.wait_status(admin, sid, DEAD, timeout=40)
    assert (info["status"], info["statusInfo"]) == ("ERROR", "failed-to-start"), info
    assert [k["status"] for k in info["kernels"]] == ["TERMINATED", "TERMINATED"]
    assert {k["cluster_hostname"]: k["status_info"] for k in info["kernels"]}["sub1"] == "failed-to-start"
    assert containers("ai.backend.session-id", sid) == []


# -- 5. resource limits ----------------------------------------------------------------------------
def _cpus(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.strip().split(","):
        if "-" in part:
            a, b = part.split("-")
            out.update(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return out


async def test_resource_limits_applied(system, admin):
    created = await create(admin, "limits", config={"resources": {"cpu": 1, "mem": "320m"},
                                                      "resource_opts": {"shmem": "32m"}})
    sid = created["sessionId"]
    code = ("import os\n"
            "def read(*paths):\n"
            "    for p in paths:\n"
            "        if os.path.exists(p):\n"
            "            return open(p).read().strip()\n"
            "print(read('/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory.max'))\n"
            "print(read('/sys/fs/cgroup/cpuset/cpuset.cpus', '/sys/fs/cgroup/cpuset.cpus.effective'))\n"
            "print(sorted(os.sched_getaffinity(0)))\n"
            "st = os.statvfs('/dev/shm'); print(st.f_blocks * st.f_frsize)\n"
            "print(os.environ.get('OMP_NUM_THREADS'))\n")
    result = (await admin.post(f"/session/{sid}", json={"mode": "query", "runId": "", "code": code}))["result"]
    mem, cpuset, affinity, shm, omp = "".join(d for t, d in result["console"] if t == "stdout").splitlines()
    assert int(mem) == 320 * 2**20
    host_cpus = set(range(__import__("os").cpu_count()))
    assert len(_cpus(cpuset)) == 1 and _cpus(cpuset) <= host_cpus, cpuset
    assert set(eval(affinity)) == _cpus(cpuset)
    assert int(shm) == 32 * 2**20
    assert omp == "1"
    info = await admin.get(f"/session/{sid}")
    assert info["kernels"][0]["occupied_slots"] == {"cpu": "1", "mem": str(320 * 2**20)}
    # The engine agrees (Podman's view of the same container).
    [ctr] = containers("ai.backend.session-id", sid)
    assert podman_exec(ctr["Id"], "cat", "/proc/self/status").count("Cpus_allowed_list") == 1


# -- 7. administration ---------------------------------------------------------------------------
async def test_unschedulable_agent_keeps_sessions_pending(system, admin):
    await admin.patch(f"/admin/agents/{system.agent_id}", json={"schedulable": False})
    try:
        created = await create(admin, "unsched", enqueueOnly=True)
        sid = created["sessionId"]

        async def tried():
            info = await admin.get(f"/session/{sid}")
            return info if info["scheduling_attempts"] >= 2 else None
        info = await wait_for(tried, 10, "the scheduler tried twice")
        assert info["status"] == "PENDING"
        hist = await admin.get(f"/session/{sid}/status-history")
        cap = next(p for p in hist["scheduling"]["predicates"] if p["name"] == "resource group capacity")
        assert cap["passed"] is False and cap["message"]
    finally:
        await admin.patch(f"/admin/agents/{system.agent_id}", json={"schedulable": True})
    await system.wait_status(admin, sid, "RUNNING", timeout=30)


async def _remaining(admin) -> dict:
    check = await admin.post("/resource/check-presets", json={"scaling_group": "default"})
    return check["scaling_groups"]["default"]["remaining"]


async def test_recalculate_usage(system, admin):
    created = await create(admin, "usage")
    assert created["status"] == "RUNNING"
    db = system.data_dir / "workbay.db"

    def occupied() -> dict:
        with sqlite3.connect(db) as con:
            (raw,) = con.execute("SELECT occupied_slots FROM agents WHERE id = ?", (system.agent_id,)).fetchone()
        return __import__("json").loads(raw) if isinstance(raw, str) else raw

    with sqlite3.connect(db) as con:
        con.execute("UPDATE agents SET occupied_slots = ? WHERE id = ?",
                    ('{"cpu": "2", "mem": "4294967296"}', system.agent_id))
    assert (await _remaining(admin))["cpu"] == "0"

    await admin.post("/resource/recalculate-usage")
    assert {k: float(v) for k, v in occupied().items()} == {"cpu": 1.0, "mem": float(256 * 2**20)}
    remaining = await _remaining(admin)
    assert float(remaining["cpu"]) == 1 and int(remaining["mem"]) == 4 * 2**30 - 256 * 2**20
    # Only superadmins may do it.
    user = await system.login("user@workbay.local")
    with pytest.raises(APIError) as e:
        await user.post("/resource/recalculate-usage")
    assert e.value.status == 403


# -- 8. events ----------------------------------------------------------------------------------
async def test_session_events_for_the_owner(system, admin):
    user = await system.login("user@workbay.local")
    other = await system.login("user2@workbay.local")
    async with EventStream(user) as mine, EventStream(other) as theirs:
        await asyncio.sleep(0.3)  # the server subscribes right after answering the headers
        created = await create(user, "evented")
        sid = created["sessionId"]
        await user.delete(f"/session/{sid}")
        await mine.wait("session_terminated", sid)
        names = mine.names(sid)
        for name in ("session_enqueued", "session_scheduled", "session_started", "session_terminated"):
            assert name in names, names
        order = [names.index(n) for n in ("session_enqueued", "session_scheduled", "session_started",
                                          "session_terminated")]
        assert order == sorted(order), names
        data = next(d for e, d in mine.events if e == "session_terminated" and d["sessionId"] == sid)
        assert data["sessionName"] == "evented" and data["reason"] == "user-requested"
        # kernel_* events too, with the kernel's id and cluster position (§2.6)
        assert names.index("kernel_started") < names.index("kernel_terminated"), names
        kernel = next(d for e, d in mine.events if e == "kernel_started" and d["sessionId"] == sid)
        assert kernel["kernelId"] and (kernel["clusterRole"], kernel["clusterIdx"]) == ("main", 1)
        assert theirs.names(sid) == []
