"""Administration API: users (ID-11, ID-12), keypairs (ID-9, ID-10), domains, projects and
members, the three kinds of resource policy (AD-1), settings.  SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pyotp
import pytest
from sqlalchemy import update

from workbay.client.sdk import APIError
from workbay.manager.models import Keypair
from workbay.manager.services import keys

PASSWORD = "Us3r!pass"
PROBLEM = "https://api.backend.ai/probs/"


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def fails(coro, status: int, kind: str | None = None) -> APIError:
    with pytest.raises(APIError) as e:
        await coro
    assert e.value.status == status, e.value.body
    if kind:
        assert e.value.type == PROBLEM + kind, e.value.body
    return e.value


async def new_user(h, **fields: Any) -> dict[str, Any]:
    name = unique()
    body = {"email": f"{name}@example.test", "username": name, "password": PASSWORD, **fields}
    return await h.admin().post("/admin/users", json=body)


async def authorize_status(h, email: str, password: str = PASSWORD, **extra) -> int:
    try:
        await h.client().post("/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": email, "password": password, **extra})
    except APIError as e:
        return e.status
    return 200


# -- users ----------------------------------------------------------------------------------------
async def test_create_user_with_every_field(manager):
    admin = manager.admin()
    project = await admin.post("/admin/projects", json={"name": unique("p")})
    policy = await admin.post("/admin/resource-policies/user", json={"name": unique("up")})
    name = unique()
    created = await admin.post("/admin/users", json={
        "email": f"{name.upper()}@Example.test", "username": name, "password": PASSWORD,
        "full_name": "Full Name", "description": "desc", "status": "active", "role": "monitor",
        "domain_name": "default", "need_password_change": True, "sudo_session_enabled": True,
        "resource_policy": policy["name"], "project_ids": [project["id"]],
        "container_uid": 2000, "container_gid": 3000})
    email = f"{name}@example.test"                       # e-mails are stored lower-case
    assert created["email"] == email
    kp = created["keypair"]
    assert keys.valid_access_key(kp["access_key"]) and keys.valid_secret_key(kp["secret_key"])
    assert kp["is_active"] and kp["is_default"] and not kp["is_admin"]
    got = await admin.get(f"/admin/users/{email}")
    for key, value in {"username": name, "full_name": "Full Name", "description": "desc",
                       "status": "active", "role": "monitor", "domain_name": "default",
                       "need_password_change": True, "sudo_session_enabled": True,
                       "resource_policy": policy["name"], "container_uid": 2000,
                       "container_gid": 3000, "totp_activated": False}.items():
        assert got[key] == value, key
    assert got["projects"] == [{"id": project["id"], "name": project["name"]}]
    assert "password" not in got and "keypair" not in got
    await fails(admin.get("/admin/users/nobody@example.test"), 404, "object-not-found")


@pytest.mark.parametrize("patch, field", [
    ({"password": "short"}, "password"),
    ({"password": "abcdefgh1"}, "password"),
    ({"email": "x" * 60 + "@a.bc"}, "email"),
    ({"email": "no-at-sign"}, "email"),
    ({"username": "u" * 65}, "username"),
    ({"full_name": "f" * 65}, "full_name"),
    ({"role": "root"}, "role"),
    ({"status": "sleeping"}, "status"),
    ({"resource_policy": "nosuch"}, "resource_policy"),
    ({"domain_name": "nosuch"}, "domain_name"),
    ({"project_ids": [str(uuid.uuid4())]}, "project_ids"),
    ({"container_uid": -1}, "container_uid"),
    ({"allowed_client_ip": ["300.1.1.1"]}, "allowed_client_ip"),
    ({"unknown": 1}, "unknown"),
])
async def test_create_user_validation(manager, patch, field):
    name = unique()
    body = {"email": f"{name}@example.test", "username": name, "password": PASSWORD, **patch}
    err = await fails(manager.admin().post("/admin/users", json=body), 400, "invalid-api-params")
    assert field in (err.data or {}) or field in str(err.msg)
    await fails(manager.admin().get(f"/admin/users/{name}@example.test"), 404)


async def test_duplicate_email_or_username_refused(manager):
    admin = manager.admin()
    user = await new_user(manager)
    err = await fails(admin.post("/admin/users", json={
        "email": user["email"].upper(), "username": unique(), "password": PASSWORD}),
        400, "generic-bad-request")
    assert err.data == {"email": "already exists"}
    err = await fails(admin.post("/admin/users", json={
        "email": f"{unique()}@example.test", "username": user["username"], "password": PASSWORD}),
        400, "generic-bad-request")
    assert err.data == {"username": "already exists"}
    other = await new_user(manager)
    err = await fails(admin.patch(f"/admin/users/{other['email']}", json={"username": user["username"]}),
                      400, "generic-bad-request")
    assert err.data == {"username": "already exists"}


async def test_list_users_filters(manager):
    admin = manager.admin()
    tag = uuid.uuid4().hex[:8]
    a = await admin.post("/admin/users", json={"email": f"alpha-{tag}@example.test", "username": f"al-{tag}",
                                               "password": PASSWORD, "full_name": f"Ann {tag}"})
    b = await admin.post("/admin/users", json={"email": f"beta-{tag}@example.test", "username": f"be-{tag}",
                                               "password": PASSWORD, "status": "inactive"})

    async def emails(**params) -> list[str]:
        out = await admin.get("/admin/users", params={"q": tag, **params})
        assert out["total_count"] == len(out["items"]) or "limit" in params
        return sorted(u["email"] for u in out["items"])

    assert await emails() == [a["email"], b["email"]]
    assert await emails(status="active") == [a["email"]]
    assert await emails(status="inactive") == [b["email"]]
    # q matches e-mail, user name, full name and access key
    assert [u["email"] for u in (await admin.get("/admin/users", params={"q": f"BETA-{tag}"}))["items"]] == [b["email"]]
    assert [u["email"] for u in (await admin.get("/admin/users", params={"q": f"al-{tag}"}))["items"]] == [a["email"]]
    assert [u["email"] for u in (await admin.get("/admin/users", params={"q": f"ann {tag}"}))["items"]] == [a["email"]]
    ak = b["keypair"]["access_key"]
    by_key = await admin.get("/admin/users", params={"q": ak[4:16].lower()})
    assert [u["email"] for u in by_key["items"]] == [b["email"]]
    # q is literal text: SQL wildcards match only themselves
    assert (await admin.get("/admin/users", params={"q": "%"}))["total_count"] == 0
    assert (await admin.get("/admin/users", params={"q": "_"}))["total_count"] == 0
    assert (await admin.get("/admin/keypairs", params={"q": "%"}))["total_count"] == 0
    assert (await admin.get("/admin/projects", params={"q": "_"}))["total_count"] == 0
    page = await admin.get("/admin/users", params={"q": tag, "limit": 1, "offset": 1})
    assert page["total_count"] == 2 and len(page["items"]) == 1
    await fails(admin.get("/admin/users", params={"limit": 0}), 400, "invalid-api-params")
    await fails(admin.get("/admin/users", params={"offset": 2**40}), 400, "invalid-api-params")
    in_default = await admin.get("/admin/users", params={"domain": "default", "limit": 1000})
    assert all(u["domain_name"] == "default" for u in in_default["items"])
    assert (await admin.get("/admin/users", params={"domain": "nosuch"}))["total_count"] == 0


async def test_update_user_but_not_the_email(manager):
    admin = manager.admin()
    user = await new_user(manager)
    email = user["email"]
    err = await fails(admin.patch(f"/admin/users/{email}", json={"email": "new@example.test"}),
                      400, "invalid-api-params")
    assert "email" in err.data
    assert (await admin.get(f"/admin/users/{email}"))["email"] == email
    await fails(admin.get("/admin/users/new@example.test"), 404)
    updated = await admin.patch(f"/admin/users/{email}", json={
        "full_name": "Renamed", "description": "d2", "need_password_change": True,
        "sudo_session_enabled": True, "container_uid": 1234, "role": "admin"})
    assert (updated["full_name"], updated["description"], updated["role"]) == ("Renamed", "d2", "admin")
    assert updated["need_password_change"] and updated["sudo_session_enabled"]
    assert updated["container_uid"] == 1234
    kps = (await admin.get("/admin/keypairs", params={"user_email": email}))["items"]
    assert [k["is_admin"] for k in kps] == [True]            # the role reaches the keypairs
    await fails(admin.patch(f"/admin/users/{email}", json={"password": "weakpass"}), 400, "invalid-api-params")
    assert await authorize_status(manager, email) == 200
    await admin.patch(f"/admin/users/{email}", json={"password": "R3set!pass"})
    assert await authorize_status(manager, email) == 401
    assert await authorize_status(manager, email, "R3set!pass") == 200
    await fails(admin.patch("/admin/users/nobody@example.test", json={"full_name": "x"}), 404)


async def test_deactivate_deactivates_keypairs_and_reactivate_does_not(manager):
    admin = manager.admin()
    user = await new_user(manager)
    email = user["email"]
    extra = await admin.post("/admin/keypairs", json={"user_email": email})
    out = await admin.patch(f"/admin/users/{email}", json={"status": "inactive"})
    assert out["status"] == "inactive" and "inactive" in out["status_info"]
    kps = (await admin.get("/admin/keypairs", params={"user_email": email}))["items"]
    assert len(kps) == 2 and not any(k["is_active"] for k in kps)
    assert await authorize_status(manager, email) == 401
    out = await admin.patch(f"/admin/users/{email}", json={"status": "active"})
    assert out["status"] == "active"
    kps = (await admin.get("/admin/keypairs", params={"user_email": email}))["items"]
    assert not any(k["is_active"] for k in kps)               # ID-11: stays off
    assert await authorize_status(manager, email) == 401      # no active keypair yet
    await admin.patch(f"/admin/keypairs/{extra['access_key']}", json={"is_active": True})
    assert await authorize_status(manager, email) == 200


async def test_admin_disables_another_users_totp(manager):
    user = await new_user(manager)
    client = manager.client(user["keypair"]["access_key"], user["keypair"]["secret_key"])
    secret = (await client.post("/auth/totp"))["secret"]
    await client.post("/auth/totp/confirm", json={"otp": pyotp.TOTP(secret).now()})
    assert (await manager.admin().get(f"/admin/users/{user['email']}"))["totp_activated"]
    assert await authorize_status(manager, user["email"]) == 401
    out = await manager.admin().delete(f"/admin/users/{user['email']}/totp")
    assert out["totp_activated"] is False
    assert await authorize_status(manager, user["email"]) == 200
    assert (await client.get("/auth/totp")) == {"enabled": False}


async def test_changing_a_users_domain_drops_other_domain_projects(manager):
    admin = manager.admin()
    domain = unique("dom")
    await admin.post("/admin/domains", json={"name": domain})
    project = await admin.post("/admin/projects", json={"name": unique("p")})
    user = await new_user(manager, project_ids=[project["id"]])
    moved = await admin.patch(f"/admin/users/{user['email']}", json={"domain_name": domain})
    assert moved["domain_name"] == domain and moved["projects"] == []


# -- keypairs -------------------------------------------------------------------------------------
async def test_keypair_lists_and_explicit_keys(manager):
    admin = manager.admin()
    user = await new_user(manager)
    email = user["email"]
    ak = "AKIA" + uuid.uuid4().hex[:16].upper()
    sk = keys.generate_secret_key()
    created = await admin.post("/admin/keypairs", json={
        "user_email": email, "access_key": ak, "secret_key": sk, "rate_limit": 777, "is_active": False})
    assert (created["access_key"], created["secret_key"], created["rate_limit"]) == (ak, sk, 777)
    assert created["is_active"] is False and created["is_default"] is False
    active = (await admin.get("/admin/keypairs", params={"user_email": email, "is_active": "true"}))["items"]
    inactive = (await admin.get("/admin/keypairs", params={"user_email": email, "is_active": "false"}))["items"]
    assert [k["access_key"] for k in active] == [user["keypair"]["access_key"]]
    assert [k["access_key"] for k in inactive] == [ak]
    by_q = await admin.get("/admin/keypairs", params={"q": ak[4:14].lower()})
    assert [k["access_key"] for k in by_q["items"]] == [ak]
    got = await admin.get(f"/admin/keypairs/{ak}")
    assert got["user_email"] == email and got["secret_key"] == sk
    # the explicit keys sign requests once active
    await admin.patch(f"/admin/keypairs/{ak}", json={"is_active": True})
    assert (await manager.client(ak, sk).get("/user/me"))["email"] == email
    for bad in [{"access_key": "SHORT"}, {"access_key": "A" * 19 + "!"}, {"secret_key": "s" * 39},
                {"secret_key": "s" * 39 + "\u00e9"}, {"rate_limit": 0}, {"rate_limit": 2**31},
                {"resource_policy": "nosuch"}, {"bogus": True}]:
        await fails(admin.post("/admin/keypairs", json={"user_email": email, **bad}), 400, "invalid-api-params")
    err = await fails(admin.post("/admin/keypairs", json={"user_email": email, "access_key": ak}),
                      400, "generic-bad-request")
    assert err.data == {"access_key": "already exists"}
    await fails(admin.post("/admin/keypairs", json={"user_email": "nobody@example.test"}), 404, "object-not-found")
    await fails(admin.get("/admin/keypairs/AKIANOSUCHKEY0000000"), 404, "object-not-found")


async def test_edit_keypair_policy_and_rate_limit(manager):
    admin = manager.admin()
    user = await new_user(manager)
    ak = user["keypair"]["access_key"]
    policy = await admin.post("/admin/resource-policies/keypair", json={"name": unique("kp")})
    out = await admin.patch(f"/admin/keypairs/{ak}", json={"resource_policy": policy["name"], "rate_limit": 42})
    assert out["resource_policy"] == policy["name"] and out["rate_limit"] == 42
    got = await admin.get(f"/admin/keypairs/{ak}")
    assert got["resource_policy"] == policy["name"] and got["rate_limit"] == 42
    await fails(admin.patch(f"/admin/keypairs/{ak}", json={"resource_policy": "nosuch"}), 400)
    await fails(admin.patch(f"/admin/keypairs/{ak}", json={"rate_limit": -5}), 400)
    await fails(admin.patch(f"/admin/keypairs/{ak}", json={"access_key": "X" * 20}), 400)
    assert (await admin.get(f"/admin/keypairs/{ak}"))["rate_limit"] == 42


async def test_delete_keypair_rules(manager):
    admin = manager.admin()
    user = await new_user(manager)
    only = user["keypair"]["access_key"]
    err = await fails(admin.delete(f"/admin/keypairs/{only}"), 409, "generic-bad-request")
    assert "only keypair" in err.msg
    extra = await admin.post("/admin/keypairs", json={"user_email": user["email"]})
    # a keypair that ever created a session is kept (deactivate it instead)
    async with manager.state.ctx.db.begin() as s:
        await s.execute(update(Keypair).where(Keypair.access_key == extra["access_key"])
                        .values(has_ever_run_session=True))
    err = await fails(admin.delete(f"/admin/keypairs/{extra['access_key']}"), 409, "generic-bad-request")
    assert "sessions" in err.msg
    assert (await admin.get(f"/admin/keypairs/{extra['access_key']}"))["has_ever_run_session"] is True
    third = await admin.post("/admin/keypairs", json={"user_email": user["email"]})
    assert await admin.delete(f"/admin/keypairs/{third['access_key']}") == {}
    await fails(admin.get(f"/admin/keypairs/{third['access_key']}"), 404)
    await fails(admin.delete(f"/admin/keypairs/{third['access_key']}"), 404)


# -- domains --------------------------------------------------------------------------------------
async def test_domains_crud(manager):
    admin = manager.admin()
    name = unique("dom")
    created = await admin.post("/admin/domains", json={
        "name": name, "description": "d", "total_resource_slots": {"cpu": 4, "mem": "8589934592"},
        "allowed_folder_hosts": {"local": ["create-vfolder"]}, "allowed_docker_registries": ["cr.io"]})
    assert created["total_resource_slots"] == {"cpu": "4", "mem": "8589934592"}
    assert (await admin.get(f"/admin/domains/{name}"))["allowed_docker_registries"] == ["cr.io"]
    assert name in [d["name"] for d in (await admin.get("/admin/domains"))["items"]]
    err = await fails(admin.post("/admin/domains", json={"name": name}), 400, "generic-bad-request")
    assert err.data == {"name": "already exists"}
    for bad in [{"name": "bad name"}, {"name": ""}, {"name": "x" * 65},
                {"name": unique("d"), "total_resource_slots": {"cpu": -1}}]:
        await fails(admin.post("/admin/domains", json=bad), 400, "invalid-api-params")
    patched = await admin.patch(f"/admin/domains/{name}", json={"description": "d2", "is_active": False})
    assert (patched["description"], patched["is_active"]) == ("d2", False)
    await fails(admin.patch(f"/admin/domains/{name}", json={"name": "renamed"}), 400)
    # refused while it has users or projects
    project = await admin.post("/admin/projects", json={"name": "p", "domain_name": name})
    err = await fails(admin.delete(f"/admin/domains/{name}"), 409, "generic-bad-request")
    assert "1 projects" in err.msg
    await admin.delete(f"/admin/projects/{project['id']}")
    await admin.delete(f"/admin/domains/{name}")
    await fails(admin.get(f"/admin/domains/{name}"), 404, "object-not-found")
    await fails(admin.delete("/admin/domains/default"), 409)


# -- projects -------------------------------------------------------------------------------------
async def test_projects_and_members(manager):
    admin = manager.admin()
    name = unique("proj")
    project = await admin.post("/admin/projects", json={
        "name": name, "description": "d", "total_resource_slots": {"cpu": "2"}})
    pid = project["id"]
    assert project["domain_name"] == "default" and project["member_count"] == 0
    assert project["resource_policy"] == "default"
    err = await fails(admin.post("/admin/projects", json={"name": name}), 400, "generic-bad-request")
    assert err.data == {"name": "already exists"}
    await fails(admin.post("/admin/projects", json={"name": "bad/name"}), 400, "invalid-api-params")
    await fails(admin.post("/admin/projects", json={"name": unique(), "resource_policy": "nosuch"}), 400)
    await fails(admin.post("/admin/projects", json={"name": unique(), "domain_name": "nosuch"}), 400)
    listed = await admin.get("/admin/projects", params={"q": name})
    assert [p["id"] for p in listed["items"]] == [pid]
    # members
    u1, u2 = await new_user(manager), await new_user(manager)
    added = await admin.post(f"/admin/projects/{pid}/members", json={"emails": [u1["email"], u2["email"].upper()]})
    assert sorted(added["added"]) == sorted([u1["email"], u2["email"]])
    again = await admin.post(f"/admin/projects/{pid}/members", json={"emails": [u1["email"]]})
    assert again == {"added": []}
    members = await admin.get(f"/admin/projects/{pid}/members")
    assert sorted(m["email"] for m in members["items"]) == sorted([u1["email"], u2["email"]])
    assert (await admin.get(f"/admin/projects/{pid}"))["member_count"] == 2
    assert {"id": pid, "name": name} in (await admin.get(f"/admin/users/{u1['email']}"))["projects"]
    err = await fails(admin.post(f"/admin/projects/{pid}/members", json={"emails": ["nobody@example.test"]}), 400)
    assert err.data == {"emails": ["nobody@example.test"]}
    await fails(admin.post(f"/admin/projects/{pid}/members", json={"emails": []}), 400)
    # a user of another domain cannot join
    dom = unique("dom")
    await admin.post("/admin/domains", json={"name": dom})
    foreign = await new_user(manager, domain_name=dom)
    await fails(admin.post(f"/admin/projects/{pid}/members", json={"emails": [foreign["email"]]}), 400)
    # rename and validation on update
    renamed = await admin.patch(f"/admin/projects/{pid}", json={"name": name + "-x", "description": "d2"})
    assert renamed["name"] == name + "-x" and renamed["member_count"] == 2
    await fails(admin.patch(f"/admin/projects/{pid}", json={"name": "bad name"}), 400, "invalid-api-params")
    await fails(admin.patch(f"/admin/projects/{pid}", json={"name": "default"}), 400, "generic-bad-request")
    await fails(admin.patch(f"/admin/projects/{pid}", json={"total_resource_slots": {"gpu": "x"}}), 400)
    # delete refused while it has members
    await fails(admin.delete(f"/admin/projects/{pid}"), 409, "generic-bad-request")
    removed = await admin.delete(f"/admin/projects/{pid}/members", json={"emails": [u1["email"], u2["email"]]})
    assert sorted(removed["removed"]) == sorted([u1["email"], u2["email"]])
    await admin.delete(f"/admin/projects/{pid}")
    await fails(admin.get(f"/admin/projects/{pid}"), 404, "object-not-found")
    await fails(admin.get(f"/admin/projects/{uuid.uuid4()}"), 404, "object-not-found")
    await fails(admin.get("/admin/projects/not-a-uuid"), 400, "invalid-api-params")


# -- resource policies ------------------------------------------------------------------------------
POLICY_BODIES = {
    "keypair": {"total_resource_slots": {"cpu": "4", "mem": "8589934592", "cuda.shares": "1.5"},
                "max_containers_per_session": 2, "max_session_lifetime": 7200,
                "max_concurrent_sessions": 3, "max_concurrent_sftp_sessions": 2,
                "max_pending_session_count": 4, "idle_timeout": 600,
                "allowed_folder_hosts": {"local:vol1": ["create-vfolder", "mount-in-session"]}},
    "user": {"max_folder_count": 5, "max_quota_scope_size": 10**12,
             "max_session_count_per_model_session": 3, "max_customized_image_count": 2},
    "project": {"max_folder_count": 7, "max_quota_scope_size": -1, "max_network_count": 4},
}
PATCHES = {
    "keypair": {"total_resource_slots": {"cpu": "Infinity"}, "max_containers_per_session": 8,
                "max_session_lifetime": 0, "max_concurrent_sessions": 10,
                "max_concurrent_sftp_sessions": 5, "max_pending_session_count": None,
                "idle_timeout": 0, "allowed_folder_hosts": {}},
    "user": {"max_folder_count": 0, "max_quota_scope_size": -1,
             "max_session_count_per_model_session": 1, "max_customized_image_count": 0},
    "project": {"max_folder_count": 1, "max_quota_scope_size": 2**40, "max_network_count": 0},
}


async def _use_policy(h, kind: str, name: str) -> callable:
    """Make something use the policy; returns a coroutine function that releases it."""
    admin = h.admin()
    if kind == "keypair":
        user = await new_user(h)
        ak = user["keypair"]["access_key"]
        await admin.patch(f"/admin/keypairs/{ak}", json={"resource_policy": name})
        return lambda: admin.patch(f"/admin/keypairs/{ak}", json={"resource_policy": "default"})
    if kind == "user":
        user = await new_user(h, resource_policy=name)
        return lambda: admin.patch(f"/admin/users/{user['email']}", json={"resource_policy": "default"})
    project = await admin.post("/admin/projects", json={"name": unique("p"), "resource_policy": name})
    return lambda: admin.patch(f"/admin/projects/{project['id']}", json={"resource_policy": "default"})


@pytest.mark.parametrize("kind", ["keypair", "user", "project"])
async def test_policy_crud(manager, kind):
    admin = manager.admin()
    name = unique(kind)
    base = f"/admin/resource-policies/{kind}"
    created = await admin.post(base, json={"name": name, **POLICY_BODIES[kind]})
    for key, value in POLICY_BODIES[kind].items():
        assert created[key] == value, key
    assert await admin.get(f"{base}/{name}") == created
    assert name in [p["name"] for p in (await admin.get(base))["items"]]
    err = await fails(admin.post(base, json={"name": name}), 400, "generic-bad-request")
    assert err.data == {"name": "already exists"}
    for key, value in PATCHES[kind].items():               # every field can be edited
        out = await admin.patch(f"{base}/{name}", json={key: value})
        assert out[key] == value, key
    # the name cannot change (repeating it is fine)
    await fails(admin.patch(f"{base}/{name}", json={"name": "renamed"}), 400, "invalid-api-params")
    assert (await admin.patch(f"{base}/{name}", json={"name": name}))["name"] == name
    await fails(admin.patch(f"{base}/{name}", json={"bogus": 1}), 400, "invalid-api-params")
    # refused while in use
    release = await _use_policy(manager, kind, name)
    err = await fails(admin.delete(f"{base}/{name}"), 400, "invalid-api-params")
    assert "cannot be deleted" in err.msg
    assert await admin.get(f"{base}/{name}")
    await release()
    await admin.delete(f"{base}/{name}")
    await fails(admin.get(f"{base}/{name}"), 404, "object-not-found")
    await fails(admin.patch(f"{base}/{name}", json={}), 404)
    await fails(admin.delete(f"{base}/{name}"), 404)


async def test_policy_kind_must_be_known(manager):
    await fails(manager.admin().get("/admin/resource-policies/group"), 400, "invalid-api-params")


async def test_default_policies_exist_and_are_in_use(manager):
    admin = manager.admin()
    for kind in ("keypair", "user", "project"):
        assert (await admin.get(f"/admin/resource-policies/{kind}/default"))["name"] == "default"
        await fails(admin.delete(f"/admin/resource-policies/{kind}/default"), 400)


# -- settings -------------------------------------------------------------------------------------
async def test_settings(manager):
    admin = manager.admin()
    assert await admin.get("/admin/settings") == {"signup_enabled": False, "signup_invitation_token": None}
    try:
        out = await admin.patch("/admin/settings", json={"signup_enabled": True, "signup_invitation_token": "tok"})
        assert out == {"signup_enabled": True, "signup_invitation_token": "tok"}
        assert await admin.get("/admin/settings") == out
        assert (await admin.patch("/admin/settings", json={"signup_enabled": False}))["signup_invitation_token"] == "tok"
        await fails(admin.patch("/admin/settings", json={"frozen": True}), 400, "invalid-api-params")
        await fails(admin.patch("/admin/settings", json={"signup_enabled": "maybe"}), 400)
        await fails(admin.patch("/admin/settings", json={"signup_enabled": None}), 400)  # on or off, not unset
    finally:
        await admin.patch("/admin/settings", json={"signup_enabled": False, "signup_invitation_token": None})


@pytest.mark.parametrize("what", ["user", "domain", "project", "policy", "keypair"])
async def test_concurrent_duplicate_creates_give_one_object_and_400s(manager, what):
    """The check-then-insert race: one request wins, the others get 400, never a 500."""
    admin = manager.admin()
    name = unique()
    owner = (await new_user(manager))["email"] if what == "keypair" else None
    path, body = {
        "user": ("/admin/users", {"email": f"{name}@example.test", "username": name, "password": PASSWORD}),
        "domain": ("/admin/domains", {"name": name}),
        "project": ("/admin/projects", {"name": name}),
        "policy": ("/admin/resource-policies/keypair", {"name": name}),
        "keypair": ("/admin/keypairs", {"user_email": owner, "access_key": "AKIA" + uuid.uuid4().hex[:16].upper(),
                                        "secret_key": keys.generate_secret_key()}),
    }[what]
    results = await asyncio.gather(*(admin.post(path, json=body) for _ in range(4)), return_exceptions=True)
    created = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, APIError)]
    assert len(created) == 1 and len(refused) == 3, results
    assert all(e.status == 400 and e.type == PROBLEM + "generic-bad-request" for e in refused), refused
