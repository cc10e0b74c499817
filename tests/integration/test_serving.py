"""Model services end to end with real containers (docs/serving.md): the serving reconciler starts
replicas (inference sessions running tests/support/model_server.py from a model folder), checks
their health through the app gate, pushes the routing table to the app-proxy's inference listener
and replaces what fails; autoscaling, scale to zero and the Validate dry run."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.sessions import IMAGE, containers, running_system, wait_for
from workbay.client.sdk import APIError

pytestmark = pytest.mark.timeout(600)
SERVER = Path(__file__).resolve().parent.parent / "support" / "model_server.py"
RESOURCES = {"cpu": 1, "mem": "256m"}
HEALTH = "    health_check: {path: /health, interval: 0.5, max_retries: 10, max_wait_time: 2.0, initial_delay: 0.5}\n"
GOOD = ("models:\n  - name: test-model\n    model_path: /models\n    service:\n"
        "      start_command: [python3, /models/model_server.py, --port, '8000']\n      port: 8000\n"
        + "  " + HEALTH)
# Prints, then exits: "finished" is never success.
BAD = ("models:\n  - name: bad-model\n    model_path: /models\n    service:\n"
       "      start_command: 'echo the model cannot load: boom; exit 3'\n      port: 8000\n" + "  " + HEALTH)


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("serving"), appproxy=True,
                              agent_slots={"cpu": "6", "mem": "4g"},
                              manager={"serving_interval": 0.5, "service_wake_timeout": 120.0}) as sysm:
        yield sysm


async def upload(client, folder: str, path: str, data: bytes) -> None:
    r = await client.post(f"/folders/{folder}/request-upload", json={"path": path, "size": len(data)})
    async with httpx.AsyncClient() as http:
        resp = await http.patch(r["url"], params={"token": r["token"]}, content=data, headers={
            "Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"})
        assert resp.status_code == 204, resp.text


@pytest.fixture(scope="module")
async def user(system):
    return await system.login("user@workbay.local")


@pytest.fixture(scope="module")
async def model(user) -> str:
    """A model folder with the stand-in model server, a good and a bad definition."""
    name = f"model-{uuid.uuid4().hex[:6]}"
    await user.post("/folders", json={"name": name, "usage_mode": "model"})
    await upload(user, name, "model_server.py", SERVER.read_bytes())
    await upload(user, name, "model-definition.yaml", GOOD.encode())
    await upload(user, name, "bad-definition.yaml", BAD.encode())
    return name


def body(name: str, model: str, replicas: int = 1, **config: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "desired_session_count": replicas, "open_to_public": True,
            "config": {"model": model, "resources": RESOURCES, **config}}


async def info(user, sid: str) -> dict[str, Any]:
    return await user.get(f"/services/{sid}")


async def wait_healthy(user, sid: str, replicas: int, timeout: float = 240) -> dict[str, Any]:
    async def healthy():
        svc = await info(user, sid)
        ok = [r for r in svc["routes"] if r["status"] == "HEALTHY"]
        return svc if svc["status"] == "HEALTHY" and len(ok) == replicas else None
    return await wait_for(healthy, timeout, f"service {sid} with {replicas} healthy replicas")


def endpoint(system, name: str) -> str:
    return f"http://127.0.0.1:{system.config.appproxy.inference_port}/{name}"


@pytest.fixture(scope="module")
async def service(system, user, model):
    name = f"svc-{uuid.uuid4().hex[:6]}"
    sid = (await user.post("/services", json=body(name, model, replicas=2)))["endpoint_id"]
    await wait_healthy(user, sid, 2)
    return sid, name


async def test_two_replicas_turn_healthy_and_both_serve(system, user, service):
    sid, name = service
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(20):
            resp = await http.get(f"{endpoint(system, name)}/echo")
            assert resp.status_code == 200, resp.text
    svc = await info(user, sid)
    assert len({r["session_id"] for r in svc["routes"]}) == 2
    assert all(r["session_name"].startswith(name) for r in svc["routes"])

    async def both_served():  # the app-proxy's per-replica figures, pulled by the reconciler
        routes = (await info(user, sid))["routes"]
        return routes if all((r.get("requests") or 0) > 0 for r in routes) else None
    routes = await wait_for(both_served, 60, "both replicas served requests")
    assert sum(r["requests"] for r in routes) >= 20


async def test_a_killed_replica_loses_no_request_and_is_replaced(system, user, service):
    sid, name = service
    before = await info(user, sid)
    victim = before["routes"][0]
    [ctr] = [c for c in containers("ai.backend.session-id", victim["session_id"]) if c.get("State") == "running"]
    results: list[int] = []
    stop = asyncio.Event()

    async def traffic():
        async with httpx.AsyncClient(timeout=60) as http:
            while not stop.is_set():
                resp = await http.get(f"{endpoint(system, name)}/echo")
                results.append(resp.status_code)
                await asyncio.sleep(0.02)

    load = asyncio.create_task(traffic())
    try:
        await asyncio.sleep(1)
        subprocess.run(["podman", "kill", ctr["Id"]], check=True, capture_output=True, timeout=60)

        async def replaced():
            svc = await info(user, sid)
            ids = {r["route_id"] for r in svc["routes"] if r["status"] == "HEALTHY"}
            return svc if len(ids) == 2 and victim["route_id"] not in ids and svc["status"] == "HEALTHY" else None
        await wait_for(replaced, 240, "the killed replica replaced")
        await asyncio.sleep(1)
    finally:
        stop.set()
        await load
    assert len(results) > 20 and set(results) == {200}, [r for r in results if r != 200]
    errors = (await user.get(f"/services/{sid}/errors"))["errors"]
    assert any(e["session_id"] == victim["session_id"] for e in errors)


async def test_an_edit_rolls_the_replicas_over_without_losing_a_healthy_one(system, user, service):
    sid, name = service
    before = await wait_healthy(user, sid, 2)
    old = {r["route_id"] for r in before["routes"]}
    await user.patch(f"/services/{sid}", json={"config": {"environ": {"MODEL_ID": "rolled"}}})
    healthy_counts: list[int] = []
    results: list[int] = []

    async def rolled():
        svc = await info(user, sid)
        healthy = [r for r in svc["routes"] if r["status"] == "HEALTHY"]
        healthy_counts.append(len(healthy))
        async with httpx.AsyncClient(timeout=60) as http:
            results.append((await http.get(f"{endpoint(system, name)}/echo")).status_code)
        fresh = {r["route_id"] for r in healthy} - old
        return svc if len(fresh) == 2 and len(svc["routes"]) == 2 else None
    svc = await wait_for(rolled, 240, "both replicas rolled over")
    assert min(healthy_counts) >= 2, healthy_counts  # surge one: never fewer healthy than before
    assert max(healthy_counts) <= 3 and set(results) == {200}
    assert {r["generation"] for r in svc["routes"]} == {before["routes"][0]["generation"] + 1}
    async with httpx.AsyncClient(timeout=30) as http:
        models = (await http.get(f"{endpoint(system, name)}/v1/models")).json()
    assert models["data"][0]["id"] == "rolled"  # the new replicas run with the edit


async def test_the_policy_limit_refuses_more_replicas(user, service):
    sid, _ = service
    with pytest.raises(APIError) as refused:
        await user.post(f"/services/{sid}/scale", json={"to": 1000})
    assert refused.value.status == 400 and "max_session_count_per_model_session" in json.dumps(refused.value.data)


async def test_autoscaling_on_rps_scales_up_under_load_and_back_down(system, user, service):
    sid, name = service
    await user.post(f"/services/{sid}/scale", json={"to": 1})
    await wait_healthy(user, sid, 1)
    up = {"metric_source": "endpoint", "metric_name": "requests_per_second", "comparator": "gt",
          "threshold": "3", "step_size": 1, "cooldown_seconds": 5, "max_replicas": 2}
    down = {"metric_source": "endpoint", "metric_name": "requests_per_second", "comparator": "lt",
            "threshold": "0.5", "step_size": -1, "cooldown_seconds": 5, "min_replicas": 1}
    rules = [(await user.post(f"/services/{sid}/auto-scaling-rules", json=r))["id"] for r in (up, down)]
    stop = asyncio.Event()

    async def traffic():
        async with httpx.AsyncClient(timeout=60) as http:
            while not stop.is_set():
                await http.get(f"{endpoint(system, name)}/echo")
                await asyncio.sleep(0.05)

    load = asyncio.create_task(traffic())
    try:
        await wait_healthy(user, sid, 2)
    finally:
        stop.set()
        await load
    assert (await info(user, sid))["desired_session_count"] == 2

    async def scaled_down():
        svc = await info(user, sid)
        return svc if svc["desired_session_count"] == 1 else None
    await wait_for(scaled_down, 120, "scaled back down after the cooldown")
    await wait_healthy(user, sid, 1)
    for rid in rules:
        await user.delete(f"/services/{sid}/auto-scaling-rules/{rid}")


async def test_scaled_to_zero_a_request_wakes_it(system, user, service):
    sid, name = service
    await user.post(f"/services/{sid}/scale", json={"to": 0})

    async def zero():
        svc = await info(user, sid)
        return svc if not svc["routes"] and svc["status"] == "HEALTHY" else None
    svc = await wait_for(zero, 120, "no replica left")
    assert "scaled to zero" in (svc["status_info"] or "")
    async with httpx.AsyncClient(timeout=150) as http:
        resp = await http.get(f"{endpoint(system, name)}/whoami")  # held until a replica serves
    assert resp.status_code == 200, resp.text
    assert (await info(user, sid))["desired_session_count"] == 1


async def test_a_failing_start_shows_its_error_and_retries_after_clear(system, user, model):
    name = f"bad-{uuid.uuid4().hex[:6]}"
    sid = (await user.post("/services", json=body(name, model, model_definition_path="bad-definition.yaml"))
           )["endpoint_id"]

    async def failed():
        errs = (await user.get(f"/services/{sid}/errors"))
        return errs if errs["errors"] else None
    errs = await wait_for(failed, 180, "the failure recorded")
    first = errs["errors"][0]
    assert "exit code 3" in first["error"] or "ended" in first["error"], first
    assert "boom" in first["log_tail"], first
    assert errs["retries"] >= 1
    svc = await info(user, sid)
    assert svc["status"] == "UNHEALTHY" and svc["status_info"]
    sessions_before = {e["session_id"] for e in errs["errors"]}
    await user.post(f"/services/{sid}/errors/clear")
    cleared = await user.get(f"/services/{sid}/errors")
    assert cleared["retries"] == 0 or cleared["errors"] == [] or len(cleared["errors"]) <= 1

    async def retried():
        errs = (await user.get(f"/services/{sid}/errors"))
        new = {e["session_id"] for e in errs["errors"]} - sessions_before
        return new or None
    await wait_for(retried, 180, "a new replica tried after clearing the errors")
    await user.delete(f"/services/{sid}")

    async def destroyed():
        items = (await user.get("/services", params={"name": name}))
        rows = items if isinstance(items, list) else items.get("items", [])
        return True if all(r.get("status") == "DESTROYED" for r in rows) else None
    await wait_for(destroyed, 120, "the failing service destroyed")


async def validate(user, payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The dry run's events up to its verdict."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    async with user.stream("/services/_/validate", method="POST", json=payload,
                           timeout=httpx.Timeout(300)) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:") and name:
                events.append((name, json.loads(line.partition(":")[2])))
                if name == "verdict":
                    break
    return events


async def test_validate_reports_healthy_and_the_failing_step(system, user, model):
    started = time.monotonic()
    good = await validate(user, body(f"val-{uuid.uuid4().hex[:6]}", model))
    assert good[-1] == ("verdict", {"ok": True, "message": good[-1][1]["message"]}), good
    steps = [d["step"] for n, d in good if n == "step"]
    assert steps[0] == "scheduling" and "health-check" in steps
    bad = await validate(user, body(f"val-{uuid.uuid4().hex[:6]}", model,
                                            model_definition_path="bad-definition.yaml"))
    verdict = bad[-1][1]
    assert bad[-1][0] == "verdict" and verdict["ok"] is False and verdict["step"] in ("pre-start", "health-check")
    assert "boom" in verdict.get("log", "") or any("boom" in d.get("line", "") for n, d in bad if n == "log")
    assert time.monotonic() - started < 600

    async def no_dry_runs():
        rows = await system.admin.get("/sessions", params={"status": "running"})
        items = rows if isinstance(rows, list) else rows.get("items", [])
        return True if not [s for s in items if str(s.get("name", "")).startswith("validate-")] else None
    await wait_for(no_dry_runs, 120, "the dry-run sessions terminated")
