"""/services (docs/serving.md "API") through the manager's API with a real storage-proxy, no agents:
creation and its checks (name, model folder, extra mounts, image, the owner's replica limit),
list and info in Backend.AI's and Workbay's keys, edit and its generation, scale, tokens, routes,
errors, autoscaling rules, delete; other users get 404 everywhere.  SQLite and PostgreSQL.

The serving reconciler is stopped here: these tests check what the service layer writes (routes
are inserted by hand), not what the reconciler makes of it (tests/integration/test_serving*.py)."""

from __future__ import annotations

import platform
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.integration.test_folders import expect_error, new_user, unique, upload
from workbay.appproxy.tokens import verify_service_token
from workbay.manager.api.services import (
    ErrorsOut,
    RuleListOut,
    ServiceDetailOut,
    ServiceItemOut,
    TokenListOut,
    TokenOut,
)
from workbay.manager.models import Image
from workbay.manager.models.serving import ModelService, Route, ServiceError, ServiceToken

DEFINITION = b"""models:
  - name: echo
    model_path: /models
    service:
      start_command: ["python3", "-m", "http.server", "8000"]
      port: 8000
      health_check:
        path: /
"""


def svc_name() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def world(manager):
    h = manager
    await h.state.serving_reconciler.stop()
    image = f"cr.test/serving/python-{uuid.uuid4().hex[:6]}:3.11"
    async with h.state.ctx.db.begin() as s:
        s.add(Image(name=image, image_registry="cr.test", tag="3.11", architecture=platform.machine()))
    user, c = await new_user(h)
    await join_default_project(h, user)
    model = unique("model")
    await c.post("/folders", json={"name": model, "usage_mode": "model"})
    await upload(h, c, model, "model-definition.yaml", DEFINITION)
    data = unique("data")
    await c.post("/folders", json={"name": data, "usage_mode": "data"})
    other_model = unique("m2")
    await c.post("/folders", json={"name": other_model, "usage_mode": "model"})
    await upload(h, c, other_model, "model-definition.yaml", DEFINITION)
    return {"h": h, "c": c, "user": user, "image": image, "model": model, "data": data, "other_model": other_model}


async def join_default_project(h, user) -> None:
    sa = h.admin()
    default = next(p for p in (await sa.get("/admin/projects", params={"domain": "default"}))["items"]
                   if p["name"] == "default")
    await sa.post(f"/admin/projects/{default['id']}/members", json={"emails": [user["email"]]})


def body(w, **over):
    out = {"name": svc_name(), "desired_session_count": 1, "image": w["image"], "arch": None, "group": None,
           "domain": None, "cluster_size": 1, "cluster_mode": "single-node", "tag": None, "startup_command": None,
           "bootstrap_script": None, "owner_access_key": None, "open_to_public": False,
           "config": {"model": w["model"], "model_version": None, "model_mount_destination": None,
                      "environ": None, "scaling_group": None, "resources": {"cpu": 1, "mem": "1g"},
                      "resource_opts": None}}
    config = over.pop("config", {})
    out.update(over)
    out["config"].update(config)
    return out


async def create(w, **over) -> tuple[str, dict]:
    req = body(w, **over)
    created = await w["c"].post("/services", json=req)
    return created["endpoint_id"], req


def field_errors(err) -> dict:
    return err.body.get("field_errors") or {}


async def test_create_list_info_edit_scale_delete(world):
    w, c, h = world, world["c"], world["h"]
    sid, req = await create(w, config={"extra_mounts": {w["data"]: "/data"}, "environ": {"A": "1"}})
    assert uuid.UUID(sid)
    name = req["name"]
    # list: Backend.AI's keys and Workbay's
    listed = {i["id"]: i for i in await c.get("/services")}
    item = listed[sid]
    port = h.state.ctx.config.appproxy.inference_port
    assert item["name"] == name and item["desired_session_count"] == 1 and item["active_route_count"] == 0
    assert item["is_public"] is False and item["service_endpoint"].endswith(f":{port}/{name}/")
    assert item["status"] == "PROVISIONING" and item["model_folder"]["name"] == w["model"]
    assert item["owner_email"] == w["user"]["email"] and item["runtime_variant"] == "custom"
    assert "delete" in item["allowed_actions"] and "scale" in item["allowed_actions"]
    ServiceItemOut.model_validate(item)  # the documented answer (the fuzzer sees few 200s)
    assert [i["id"] for i in await c.get("/services", params={"name": name})] == [sid]
    assert await c.get("/services", params={"name": "nope-nope"}) == []
    # info: routes and stats
    async with h.state.ctx.db.begin() as s:
        s.add(Route(endpoint_id=uuid.UUID(sid), status="HEALTHY", traffic_ratio=1.0))
        svc = await s.get(ModelService, uuid.UUID(sid))
        svc.live_stat = {"rps": 2.5, "requests": 7, "errors": 1, "p50_ms": 12.0, "p95_ms": 30.0}
    info = await c.get(f"/services/{sid}")
    assert info["endpoint_id"] == sid and info["name"] == name and len(info["active_routes"]) == 1
    route_id = info["active_routes"][0]["route_id"]
    assert info["routes"][0]["status"] == "HEALTHY" and info["healthy_route_count"] == 1
    assert info["stats"]["rps"] == 2.5 and info["stats"]["requests"] == 7
    assert info["config"]["environ"] == {"A": "1"} and info["generation"] == 1
    assert list(info["config"]["extra_mounts"].values()) == ["/data"]
    ServiceDetailOut.model_validate(info)
    # edit: the desired count leaves the generation, the image's environment bumps it
    edited = await c.patch(f"/services/{sid}", json={"desired_session_count": 2})
    assert edited["desired_session_count"] == 2 and edited["generation"] == 1
    edited = await c.patch(f"/services/{sid}", json={"config": {"environ": {"A": "2"}}})
    assert edited["generation"] == 2 and edited["config"]["environ"] == {"A": "2"}
    assert edited["config"]["extra_mounts"] == info["config"]["extra_mounts"]  # unsent: unchanged
    # scale, and the owner's policy limit (MS-12)
    scaled = await c.post(f"/services/{sid}/scale", json={"to": 3})
    assert scaled == {"current_route_count": 1, "target_count": 3}
    err = await expect_error(400, c.post(f"/services/{sid}/scale", json={"to": 11}))
    assert "max_session_count_per_model_session" in err.body["msg"] and "to" in field_errors(err)
    await expect_error(400, c.post(f"/services/{sid}/scale", json={"to": -1}))
    # routes
    assert (await c.put(f"/services/{sid}/routings/{route_id}", json={"traffic_ratio": 50}))["success"]
    await expect_error(400, c.put(f"/services/{sid}/routings/{route_id}", json={"traffic_ratio": 101}))
    await expect_error(404, c.put(f"/services/{sid}/routings/{uuid.uuid4()}", json={"traffic_ratio": 5}))
    assert (await c.delete(f"/services/{sid}/routings/{route_id}"))["success"]
    info = await c.get(f"/services/{sid}")
    assert info["routes"][0]["status"] == "TERMINATING" and info["routes"][0]["traffic_ratio"] == 50
    assert info["active_routes"] == []
    assert (await c.post(f"/services/{sid}/sync"))["success"]
    # delete: TERMINATING (the reconciler ends the replicas), the name stays taken until DESTROYED
    assert await c.delete(f"/services/{sid}") == {"success": True}
    assert (await c.get(f"/services/{sid}"))["status"] == "TERMINATING"
    await expect_error(409, c.post(f"/services/{sid}/scale", json={"to": 1}))
    await expect_error(409, c.post("/services", json=body(w, name=name)))
    async with h.state.ctx.db.begin() as s:
        (await s.get(ModelService, uuid.UUID(sid))).status = "DESTROYED"
    assert sid not in {i["id"] for i in await c.get("/services")}
    assert sid in {i["id"] for i in await c.get("/services", params={"status": "DESTROYED"})}
    await create(w, name=name)  # a destroyed service's name is free again


async def test_creation_checks_name_the_field(world):
    w, c = world, world["c"]
    cases = [
        (body(w, name="abc"), 400, "name"),                                   # 4-24 characters
        (body(w, name="x" * 25), 400, "name"),
        (body(w, name="bad name!"), 400, "name"),
        (body(w, image="cr.test/serving/vllm-missing:0.1"), 404, "image"),
        (body(w, config={"model": w["data"]}), 400, "config.model"),          # not a model folder
        (body(w, config={"model": "no-such-folder"}), 400, "config.model"),
        (body(w, config={"extra_mounts": {w["other_model"]: "/other"}}), 400, f"config.extra_mounts.{w['other_model']}"),
        (body(w, config={"extra_mounts": {w["data"]: "/models"}}), 400, f"config.extra_mounts.{w['data']}"),
        (body(w, config={"scaling_group": "nope"}), 400, "config.scaling_group"),
        (body(w, config={"resources": {"cpu": 0}}), 400, "config.resources.cpu"),
        (body(w, config={"environ": {"WORKBAY_X": "1"}}), 400, "config.environ"),
        (body(w, desired_session_count=11), 400, "desired_session_count"),   # the owner's policy
        (body(w, bootstrap_script="not base64!"), 400, "bootstrap_script"),
    ]
    for req, status, field in cases:
        err = await expect_error(status, c.post("/services", json=req))
        assert field in field_errors(err), (req, err.body)
    err = await expect_error(400, c.post("/services", json=body(w, desired_session_count=11)))
    assert "max_session_count_per_model_session" in err.body["msg"]
    # a definition file that is missing
    empty = unique("empty")
    await c.post("/folders", json={"name": empty, "usage_mode": "model"})
    err = await expect_error(400, c.post("/services", json=body(w, config={"model": empty})))
    assert field_errors(err), err.body
    # the name is unique among live services
    _, req = await create(w)
    err = await expect_error(409, c.post("/services", json=body(w, name=req["name"])))
    assert "name" in field_errors(err)
    # nothing was created by the refusals
    assert not [i for i in await c.get("/services") if i["name"] in ("abc", "x" * 25)]


async def test_tokens(world):
    w, c, h = world, world["c"], world["h"]
    sid, _ = await create(w)
    issued = await c.post(f"/services/{sid}/token", json={"duration": "1h"})
    claims = verify_service_token(h.state.ctx.config.secrets.appproxy, issued["token"], sid)
    assert claims["jti"] == issued["token_id"]
    TokenOut.model_validate(issued)
    assert abs(claims["exp"] - (datetime.now(UTC) + timedelta(hours=1)).timestamp()) < 60
    default = await c.post(f"/services/{sid}/token", json={})
    exp = jwt.decode(default["token"], options={"verify_signature": False})["exp"]
    assert abs(exp - (datetime.now(UTC) + timedelta(hours=24)).timestamp()) < 60
    until = int((datetime.now(UTC) + timedelta(days=2)).timestamp())
    dated = await c.post(f"/services/{sid}/token", json={"valid_until": until})
    assert jwt.decode(dated["token"], options={"verify_signature": False})["exp"] == until
    for bad, field in (({"duration": "soon"}, "duration"), ({"duration": "400d"}, "duration"),
                       ({"valid_until": 1}, "valid_until")):
        err = await expect_error(400, c.post(f"/services/{sid}/token", json=bad))
        assert field in err.body["msg"], err.body
    # an expired one (stored as if issued long ago), and a revoked one
    async with h.state.ctx.db.begin() as s:
        row = await s.get(ServiceToken, uuid.UUID(default["token_id"]))
        row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    await c.delete(f"/services/{sid}/tokens/{dated['token_id']}")
    tokens = await c.get(f"/services/{sid}/tokens")
    TokenListOut.model_validate(tokens)
    listed = {t["id"]: t for t in tokens["items"]}
    assert listed[issued["token_id"]]["status"] == "valid" and listed[issued["token_id"]]["token"] == issued["token"]
    assert listed[default["token_id"]]["status"] == "expired"
    assert listed[dated["token_id"]]["status"] == "revoked"
    await expect_error(404, c.delete(f"/services/{sid}/tokens/{uuid.uuid4()}"))


async def test_autoscaling_rules(world):
    w, c = world, world["c"]
    sid, _ = await create(w)
    rules = f"/services/{sid}/auto-scaling-rules"
    rule = await c.post(rules, json={"metric_source": "inference-framework", "metric_name": "rps",
                                     "comparator": ">=", "threshold": "10.5", "step_size": 1,
                                     "cooldown_seconds": 60, "min_replicas": 1, "max_replicas": 3})
    assert rule["comparator"] == "ge" and rule["threshold"] == "10.5" and rule["max_replicas"] == 3
    good = {"metric_source": "kernel", "metric_name": "cpu_util", "comparator": "LESS_THAN", "threshold": 5,
            "step_size": -1}
    assert (await c.post(rules, json=good))["comparator"] == "lt"
    for field, value in (("metric_source", "gpu"), ("metric_name", ""), ("comparator", "=="),
                         ("threshold", "ten"), ("step_size", 0), ("cooldown_seconds", -1),
                         ("max_replicas", 11), ("min_replicas", 4)):
        extra = {"max_replicas": 3} if field == "min_replicas" else {}
        err = await expect_error(400, c.post(rules, json={**good, **extra, field: value}))
        assert field in field_errors(err) or field in err.body["msg"], (field, err.body)
    patched = await c.patch(f"{rules}/{rule['id']}", json={"threshold": "20", "comparator": "<="})
    assert patched["threshold"] == "20" and patched["comparator"] == "le" and patched["metric_name"] == "rps"
    await expect_error(400, c.patch(f"{rules}/{rule['id']}", json={"min_replicas": 5}))
    assert len(RuleListOut.model_validate(await c.get(rules)).items) == 2
    await c.delete(f"{rules}/{rule['id']}")
    assert [r["comparator"] for r in (await c.get(rules))["items"]] == ["lt"]
    await expect_error(404, c.delete(f"{rules}/{rule['id']}"))


async def test_errors_clear_and_logs(world):
    w, c, h = world, world["c"], world["h"]
    sid, _ = await create(w)
    async with h.state.ctx.db.begin() as s:
        s.add(ServiceError(endpoint_id=uuid.UUID(sid), message="exited with 1", log_tail="boom"))
        svc = await s.get(ModelService, uuid.UUID(sid))
        svc.retries, svc.next_retry_at = 3, datetime.now(UTC) + timedelta(minutes=5)
    found = await c.get(f"/services/{sid}/errors")
    ErrorsOut.model_validate(found)
    assert found["retries"] == 3 and found["errors"][0]["error"] == "exited with 1"
    assert found["errors"][0]["log_tail"] == "boom" and "session_id" in found["errors"][0]
    assert (await c.get(f"/services/{sid}"))["error_count"] == 1
    await c.post(f"/services/{sid}/errors/clear")
    assert await c.get(f"/services/{sid}/errors") == {"errors": [], "retries": 0}
    async with h.state.ctx.db() as s:
        assert (await s.get(ModelService, uuid.UUID(sid))).next_retry_at is None
    assert (await c.get(f"/services/{sid}/logs")) == {"logs": "", "kernel_id": None}  # no replica yet
    runtimes = (await c.get("/services/_/runtimes"))["runtimes"]
    assert {"custom", "vllm"} <= {r["name"] for r in runtimes}


async def test_other_users_get_404_and_admins_see_all(world):
    w, c, h = world, world["c"], world["h"]
    sid, req = await create(w)
    other, stranger = await new_user(h)
    await join_default_project(h, other)
    rid, tid = uuid.uuid4(), uuid.uuid4()
    for method, path, payload in (
            ("GET", f"/services/{sid}", None), ("PATCH", f"/services/{sid}", {"desired_session_count": 1}),
            ("DELETE", f"/services/{sid}", None), ("POST", f"/services/{sid}/sync", None),
            ("POST", f"/services/{sid}/scale", {"to": 1}), ("POST", f"/services/{sid}/token", {}),
            ("GET", f"/services/{sid}/tokens", None), ("DELETE", f"/services/{sid}/tokens/{tid}", None),
            ("PUT", f"/services/{sid}/routings/{rid}", {"traffic_ratio": 1}),
            ("DELETE", f"/services/{sid}/routings/{rid}", None), ("GET", f"/services/{sid}/errors", None),
            ("POST", f"/services/{sid}/errors/clear", None), ("GET", f"/services/{sid}/auto-scaling-rules", None),
            ("POST", f"/services/{sid}/auto-scaling-rules", {"metric_source": "kernel", "metric_name": "x",
                                                             "comparator": "lt", "threshold": 1, "step_size": 1}),
            ("PATCH", f"/services/{sid}/auto-scaling-rules/{rid}", {"threshold": 1}),
            ("DELETE", f"/services/{sid}/auto-scaling-rules/{rid}", None), ("GET", f"/services/{sid}/logs", None)):
        await expect_error(404, stranger.request(method, path, json=payload))
    assert sid not in {i["id"] for i in await stranger.get("/services")}
    await expect_error(403, stranger.get("/services", params={"all": "true"}))
    # the superadmin sees and manages it
    assert sid in {i["id"] for i in await h.admin().get("/services", params={"all": "true"})}
    assert (await h.admin().get(f"/services/{sid}"))["owner_email"] == w["user"]["email"]
    # an admin creates a service for the user (owner_access_key)
    ak = w["user"]["keypair"]["access_key"]
    created = await h.admin().post("/services", json=body(w, owner_access_key=ak))
    assert (await c.get(f"/services/{created['endpoint_id']}"))["owner_access_key"] == ak
    await expect_error(403, stranger.post("/services", json=body(w, owner_access_key=ak)))
