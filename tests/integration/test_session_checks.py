"""What the manager tells the WebUI about sessions (docs/api.md "For the WebUI"): the session-name
rule at POST /session, ``field_errors`` keyed as the client spelled each field, the dry run
POST /session/_/validate (every check, nothing created), an image without a build for the asked
architecture refused by name, and ``allowed_actions`` per caller."""

from __future__ import annotations

import uuid

import pytest

from workbay.client.sdk import APIError
from workbay.common.domain import SESSION_NAME_RULE
from workbay.manager.models.compute import ComputeSession, Image

PASSWORD = "Ch3cks!pass-word"
RULE_WORDS = "4 to 64 characters"


async def new_member(h, role: str = "user") -> tuple[dict, object]:
    """A user of the default project, and a client signed with their keypair."""
    admin = h.admin()
    name = f"sc-{uuid.uuid4().hex[:8]}"
    u = await admin.post("/admin/users", json={"email": f"{name}@example.test", "username": name,
                                               "password": PASSWORD, "role": role})
    projects = (await admin.get("/admin/projects", params={"domain": "default"}))["items"]
    await admin.patch(f"/admin/users/{u['email']}", json={
        "project_ids": [p["id"] for p in projects if p["name"] == "default"]})
    return u, h.client(u["keypair"]["access_key"], u["keypair"]["secret_key"])


@pytest.fixture(scope="module")
async def images(manager):
    """One image per case: built for one architecture, for two, and for this machine."""
    tag = uuid.uuid4().hex[:6]
    names = {"riscv": f"cr.test/checks/riscv-{tag}:1", "two": f"cr.test/checks/two-{tag}:1"}
    async with manager.state.ctx.db.begin() as s:
        s.add(Image(name=names["riscv"], image_registry="cr.test", tag="1", architecture="riscv64"))
        for arch in ("x86_64", "aarch64"):
            s.add(Image(name=names["two"], image_registry="cr.test", tag="1", architecture=arch))
    return names


async def refused(call, status: int = 400) -> APIError:
    with pytest.raises(APIError) as got:
        await call
    assert got.value.status == status, got.value.body
    return got.value


@pytest.mark.parametrize("name", ["my.sess", "세션이름", "_abc_", "abc", "a" * 65])
async def test_the_session_name_rule_at_the_manager(manager, images, name):
    _, c = await new_member(manager)
    for path in ("/session", "/session/_/validate"):
        err = await refused(c.post(path, json={"name": name, "image": images["two"], "architecture": "x86_64",
                                               "enqueueOnly": True}))
        assert RULE_WORDS in err.message and set(err.body["field_errors"]) == {"name"}
        assert SESSION_NAME_RULE in err.body["field_errors"]["name"]
    # the spelling the client used names the field
    err = await refused(c.post("/session", json={"clientSessionToken": name, "image": images["two"]}))
    assert set(err.body["field_errors"]) == {"clientSessionToken"}
    assert (await c.get("/sessions"))["total_count"] == 0


async def test_a_good_name_passes_and_the_dry_run_creates_nothing(manager, images):
    _, c = await new_member(manager)
    body = {"name": "ok-name_1", "image": images["two"], "architecture": "aarch64", "enqueueOnly": True}
    assert await c.post("/session/_/validate", json=body) == {"ok": True}
    assert (await c.get("/sessions"))["total_count"] == 0
    created = await c.post("/session", json=body)
    assert created["sessionName"] == "ok-name_1" and created["created"] is True
    info = await c.get(f"/session/{created['sessionId']}")
    assert info["architecture"] == "aarch64" and info["status"] == "PENDING"
    # a live session of that name: reused when asked (the dry run agrees), refused otherwise
    assert await c.post("/session/_/validate", json=body) == {"ok": True}
    err = await refused(c.post("/session/_/validate", json={**body, "reuseIfExists": False}))
    assert err.type.endswith("session-already-exists") and set(err.body["field_errors"]) == {"name"}
    assert err.data == {"existingSessionId": created["sessionId"]}
    await c.delete(f"/session/{created['sessionId']}")


async def test_an_image_without_the_asked_architecture_is_refused_by_name(manager, images):
    _, c = await new_member(manager)
    err = await refused(c.post("/session", json={"image": images["riscv"], "architecture": "aarch64",
                                                 "enqueueOnly": True}))
    assert images["riscv"] in err.message and "aarch64" in err.message and "riscv64" in err.message
    assert set(err.body["field_errors"]) == {"image"}
    assert err.data == {"image": images["riscv"], "architecture": "aarch64", "architectures": ["riscv64"]}
    err = await refused(c.post("/session/_/validate", json={"lang": images["two"], "architecture": "s390x"}))
    assert "aarch64, x86_64" in err.message and set(err.body["field_errors"]) == {"lang"}
    # nothing asked: an image built for one architecture only is that one
    assert await c.post("/session/_/validate", json={"image": images["riscv"]}) == {"ok": True}
    assert (await c.get("/sessions"))["total_count"] == 0


@pytest.mark.parametrize("extra, field", [
    ({"config": {"resources": {"cpu": 0, "mem": "256m"}}}, "config.resources.cpu"),
    ({"config": {"resources": {"cpu": 1, "mem": "256m", "evil.slot": 1}}}, "config.resources.evil.slot"),
    ({"config": {"resources": {"cpu": "many"}}}, "config.resources"),
    ({"config": {"resources": {"cpu": 1, "mem": "256m"}, "resourceOpts": {"shmem": "1g"}}},
     "config.resourceOpts.shmem"),
    ({"config": {"scalingGroup": "nowhere"}}, "config.scalingGroup"),
    ({"config": {"scaling_group": "nowhere"}}, "config.scaling_group"),
    ({"group": "no-such-project"}, "group"),
    ({"type": "batch"}, "startupCommand"),
    ({"startsAt": "1h"}, "startsAt"),
    ({"type": "batch", "startupCommand": "true", "starts_at": "soon"}, "starts_at"),
    ({"clusterSize": 0}, "clusterSize"),
    ({"dependencies": ["no-such-session"]}, "dependencies"),
    ({"image": "cr.test/checks/none:0"}, "image"),
])
async def test_field_errors_name_the_field_as_sent(manager, images, extra, field):
    _, c = await new_member(manager)
    body = {"image": images["two"], "architecture": "x86_64", "enqueueOnly": True, **extra}
    for path in ("/session/_/validate", "/session"):
        with pytest.raises(APIError) as got:
            await c.post(path, json=body)
        assert 400 <= got.value.status < 500
        assert field in got.value.body.get("field_errors", {}), (path, got.value.body)
        assert got.value.body["field_errors"][field]
    assert (await c.get("/sessions"))["total_count"] == 0


async def test_resource_group_errors_keep_backend_ai_data(manager, images):
    _, c = await new_member(manager)
    err = await refused(c.post("/session", json={"image": images["two"], "config": {"scalingGroup": "nowhere"}}))
    assert err.data == {"scaling_group": "not allowed"}


async def test_allowed_actions_per_caller_and_status(manager):
    owner, oc = await new_member(manager)
    _, monitor = await new_member(manager, "monitor")
    projects = (await manager.admin().get("/admin/projects", params={"domain": "default"}))["items"]
    pid = uuid.UUID(next(p["id"] for p in projects if p["name"] == "default"))
    ids = {}
    async with manager.state.ctx.db.begin() as s:
        for status in ("RUNNING", "PENDING", "TERMINATED"):
            row = ComputeSession(name=f"aa-{status.lower()}", access_key=owner["keypair"]["access_key"],
                                 user_id=uuid.UUID(owner["uuid"]), project_id=pid, domain_name="default",
                                 resource_group="default", image="x", status=status)
            s.add(row)
            await s.flush()
            ids[status] = str(row.id)
    every = ["download", "exec", "logs", "open_app", "rename", "restart", "terminate"]
    expected = {"RUNNING": every, "PENDING": ["logs", "terminate"], "TERMINATED": ["logs"]}
    listed = {i["status"]: i["allowed_actions"] for i in (await oc.get("/sessions"))["items"]}
    assert listed == expected
    for status, sid in ids.items():
        assert (await oc.get(f"/session/{sid}"))["allowed_actions"] == expected[status]
        # an admin of the domain may do what the owner may; a monitor only reads
        assert (await manager.admin().get(f"/session/{sid}"))["allowed_actions"] == expected[status]
        assert (await monitor.get(f"/session/{sid}"))["allowed_actions"] == ["logs"]
    mon_list = (await monitor.get("/sessions", params={"all": "true", "owner": owner["email"]}))["items"]
    assert {i["name"]: i["allowed_actions"] for i in mon_list} == {f"aa-{s.lower()}": ["logs"] for s in ids}
