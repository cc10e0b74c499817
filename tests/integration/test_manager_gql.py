"""POST /admin/gql: the GraphQL queries the official client 23.9.10 sends for ``backend.ai ps`` and
``backend.ai vfolder list``, byte for byte, on SQLite and PostgreSQL: who sees what, pagination and
total_count, and the 400 graphql-error answers (bad queries, unknown fields, mutations, filters)."""

from __future__ import annotations

import json
import uuid

import pytest

from workbay.client.sdk import APIError
from workbay.manager.models import Agent, ComputeSession, Image

# As ai.backend.client.pagination.execute_paginated_query builds them (23.9.10): `backend.ai ps` for an
# admin (a user's has no access_key), `ps --detail`, `vfolder list`, and KeyPair.info() which ps calls first.
PS_QUERY = (
    "query($limit:Int!, $offset:Int!, $status: String, $access_key: String, $filter: String, $order: String) {\n"
    "  compute_session_list(\n"
    "      limit:$limit, offset:$offset, status:$status, access_key:$access_key, filter:$filter, order:$order) {\n"
    "    items { name access_key id group_name main_kernel_id image type status status_info status_changed result }\n"
    "    total_count\n"
    "  }\n"
    "}"
)
PS_DETAIL_QUERY = PS_QUERY.replace("status_changed result }", "status_changed result tag created_at occupying_slots }")
VFOLDER_LIST_QUERY = (
    "query($limit:Int!, $offset:Int!, $group_id: UUID, $filter: String, $order: String) {\n"
    "  vfolder_list(\n"
    "      limit:$limit, offset:$offset, group_id:$group_id, filter:$filter, order:$order) {\n"
    "    items { host name created_at creator group permission ownership_type status }\n"
    "    total_count\n"
    "  }\n"
    "}"
)
KEYPAIR_QUERY = "query {  keypair {    user_id access_key secret_key is_active is_admin  }}"
# `backend.ai admin agent list`
AGENT_LIST_QUERY = (
    "query($limit:Int!, $offset:Int!, $status: String, $scaling_group: String, $filter: String, $order: String) {\n"
    "  agent_list(\n"
    "      limit:$limit, offset:$offset, status:$status, scaling_group:$scaling_group, filter:$filter, "
    "order:$order) {\n"
    "    items { id status architecture scaling_group region first_contact cpu_cur_pct mem_cur_bytes "
    "available_slots occupied_slots }\n"
    "    total_count\n"
    "  }\n"
    "}"
)
# `backend.ai admin user list`, `admin user info --email`, `admin keypair list` (and `--user-id`)
USER_LIST_QUERY = (
    "query($limit:Int!, $offset:Int!, $status: String, $group_id: UUID, $filter: String, $order: String) {\n"
    "  user_list(\n"
    "      limit:$limit, offset:$offset, status:$status, group_id:$group_id, filter:$filter, order:$order) {\n"
    "    items { uuid username role email full_name need_password_change status status_info created_at "
    "domain_name groups { id name } allowed_client_ip sudo_session_enabled main_access_key }\n"
    "    total_count\n"
    "  }\n"
    "}"
)
USER_INFO_QUERY = (
    "query($email: String) {\n"
    "    user(email: $email) {uuid username role email full_name need_password_change status status_info "
    "created_at domain_name groups { id name } allowed_client_ip sudo_session_enabled main_access_key}\n"
    "}\n"
)
KEYPAIR_LIST_QUERY = (
    "query($limit:Int!, $offset:Int!, $is_active: Boolean, $domain_name: String, $filter: String, "
    "$order: String) {\n"
    "  keypair_list(\n"
    "      limit:$limit, offset:$offset, is_active:$is_active, domain_name:$domain_name, filter:$filter, "
    "order:$order) {\n"
    "    items { user_id projects user_info { full_name } access_key secret_key is_active is_admin created_at "
    "last_used resource_policy rate_limit concurrency_used }\n"
    "    total_count\n"
    "  }\n"
    "}"
)
KEYPAIR_LIST_BY_EMAIL_QUERY = (
    KEYPAIR_LIST_QUERY.replace("$order: String)", "$order: String, $email: String)")
    .replace("order:$order)", "order:$order, email:$email)")
)
# `admin group list` / `info`, `admin scaling-group list` / `info`, `admin image list`
GROUPS_QUERY = "query($domain_name: String) {\n    groups(domain_name: $domain_name) {id name is_active created_at integration_id}\n}\n"
GROUP_INFO_QUERY = (
    "query($gid: UUID!) {\n    group(id: $gid) {id name description is_active created_at domain_name "
    "total_resource_slots allowed_vfolder_hosts integration_id}\n}\n"
)
SCALING_GROUPS_QUERY = (
    "query($is_active: Boolean) {\n    scaling_groups(is_active: $is_active) {\n        name description "
    "is_active is_public created_at driver scheduler use_host_network wsproxy_addr wsproxy_api_token\n    }\n}\n"
)
SCALING_GROUP_INFO_QUERY = (
    "query($name: String) {\n    scaling_group(name: $name) {name description is_active is_public created_at "
    "driver driver_opts scheduler scheduler_opts use_host_network wsproxy_addr wsproxy_api_token}\n}\n"
)
IMAGES_QUERY = ("query($is_operation: Boolean) {  images(is_operation: $is_operation) {    name registry "
                "architecture tag digest size_bytes aliases  }}")
ACTIVE = "PENDING,SCHEDULED,PULLING,PREPARING,RUNNING,RUNNING_DEGRADED,TERMINATING,ERROR"
ALL = "PENDING,SCHEDULED,PULLING,PREPARING,RUNNING,RESTARTING,RUNNING_DEGRADED,TERMINATING,TERMINATED,ERROR,CANCELLED"


def ps_vars(status: str = ACTIVE, limit: int = 20, offset: int = 0, **extra) -> dict:
    return {"status": status, "access_key": None, "filter": None, "order": None,
            "limit": limit, "offset": offset, **extra}


async def gql(c, query: str, variables: dict | None = None) -> dict:
    out = await c.post("/admin/gql", json={"query": query, "variables": variables or {}})
    assert set(out) == {"data"}
    return out["data"]


async def gql_error(c, query: str, variables: dict | None = None, body: dict | None = None) -> APIError:
    with pytest.raises(APIError) as e:
        await c.post("/admin/gql", json=body if body is not None else {"query": query, "variables": variables or {}})
    assert e.value.status == 400, e.value
    return e.value


async def _user(h, prefix: str, **fields) -> tuple[dict, object]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    u = await h.admin().post("/admin/users", json={"email": f"{name}@example.test", "username": name,
                                                     "password": "Gql!pass123", **fields})
    return u, h.client(u["keypair"]["access_key"], u["keypair"]["secret_key"])


async def _sessions(h, u: dict, rows: list[tuple[str, str]]) -> None:
    projects = (await h.admin().get("/admin/projects", params={"domain": "default"}))["items"]
    pid = uuid.UUID(next(p["id"] for p in projects if p["name"] == "default"))
    async with h.state.ctx.db.begin() as s:
        for name, status in rows:
            s.add(ComputeSession(name=name, access_key=u["keypair"]["access_key"], user_id=uuid.UUID(u["uuid"]),
                                 project_id=pid, domain_name="default", resource_group="default",
                                 image="cr.example/python:3.11", status=status, status_info="testing",
                                 occupying_slots={"cpu": "1", "mem": "1073741824"}))


async def _terminate_all(h, u: dict) -> None:
    async with h.state.ctx.db.begin() as s:
        for row in (await s.execute(ComputeSession.__table__.select().where(
                ComputeSession.access_key == u["keypair"]["access_key"]))).all():
            (await s.get(ComputeSession, row.id)).status = "TERMINATED"


async def test_ps_lists_own_sessions_with_the_clients_fields(manager):
    h = manager
    alice, ca = await _user(h, "gqa")
    bob, cb = await _user(h, "gqb")
    await _sessions(h, alice, [("a-run", "RUNNING"), ("a-pend", "PENDING"), ("a-done", "TERMINATED")])
    await _sessions(h, bob, [("b-run", "RUNNING")])
    try:
        me = (await gql(ca, KEYPAIR_QUERY))["keypair"]
        assert me == {"user_id": alice["email"], "access_key": alice["keypair"]["access_key"],
                      "secret_key": alice["keypair"]["secret_key"], "is_active": True, "is_admin": False}

        page = (await gql(ca, PS_QUERY, ps_vars()))["compute_session_list"]
        assert page["total_count"] == 2
        by_name = {i["name"]: i for i in page["items"]}
        assert set(by_name) == {"a-run", "a-pend"}          # only alice's, only active ones
        run = by_name["a-run"]
        assert run["access_key"] == alice["keypair"]["access_key"] and run["status"] == "RUNNING"
        assert run["group_name"] == "default" and run["image"] == "cr.example/python:3.11"
        assert run["type"] == "interactive" and run["status_info"] == "testing" and run["result"] == "UNDEFINED"
        assert uuid.UUID(run["id"]) and run["status_changed"] and run["main_kernel_id"] is None

        everything = (await gql(ca, PS_DETAIL_QUERY, ps_vars(ALL)))["compute_session_list"]
        assert everything["total_count"] == 3
        detail = next(i for i in everything["items"] if i["name"] == "a-run")
        assert json.loads(detail["occupying_slots"]) == {"cpu": "1", "mem": "1073741824"} and detail["created_at"]

        # pagination: the total stays, the pages do not overlap
        first = (await gql(ca, PS_QUERY, ps_vars(ALL, limit=2, offset=0)))["compute_session_list"]
        second = (await gql(ca, PS_QUERY, ps_vars(ALL, limit=2, offset=2)))["compute_session_list"]
        assert first["total_count"] == second["total_count"] == 3
        assert len(first["items"]) == 2 and len(second["items"]) == 1
        assert {i["name"] for i in first["items"] + second["items"]} == {"a-run", "a-pend", "a-done"}
        ordered = (await gql(ca, PS_QUERY, ps_vars(ALL, order="name")))["compute_session_list"]["items"]
        assert [i["name"] for i in ordered] == ["a-done", "a-pend", "a-run"]
        ordered = (await gql(ca, PS_QUERY, ps_vars(ALL, order="-name")))["compute_session_list"]["items"]
        assert [i["name"] for i in ordered] == ["a-run", "a-pend", "a-done"]

        # someone else's access key shows a user nothing (as GET /sessions); an admin sees them
        theirs = ps_vars(ALL, access_key=bob["keypair"]["access_key"])
        assert (await gql(ca, PS_QUERY, theirs))["compute_session_list"] == {"items": [], "total_count": 0}
        admin_view = (await gql(h.admin(), PS_QUERY, theirs))["compute_session_list"]
        assert [i["name"] for i in admin_view["items"]] == ["b-run"] and admin_view["total_count"] == 1
        admin_all = (await gql(h.admin(), PS_QUERY, ps_vars(ALL, limit=100)))["compute_session_list"]["items"]
        assert {"a-run", "b-run"} <= {i["name"] for i in admin_all}
        assert (await gql(h.admin(), KEYPAIR_QUERY))["keypair"]["is_admin"] is True
        # another user's keypair is not a user's to read
        err = await gql_error(ca, "query($ak: String) { keypair(access_key: $ak) { access_key secret_key } }",
                              {"ak": bob["keypair"]["access_key"]})
        assert bob["keypair"]["secret_key"] not in json.dumps(err.body)
    finally:
        await _terminate_all(h, alice)
        await _terminate_all(h, bob)


async def test_vfolder_list_shows_only_visible_folders(manager):
    h = manager
    alice, ca = await _user(h, "gqfa")
    bob, cb = await _user(h, "gqfb")
    names = [f"gq-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    for name in names:
        await ca.post("/folders", json={"name": name})
    bobs = f"gq-bob-{uuid.uuid4().hex[:6]}"
    await cb.post("/folders", json={"name": bobs})
    variables = {"group_id": None, "filter": None, "order": None, "limit": 20, "offset": 0}

    listed = (await gql(ca, VFOLDER_LIST_QUERY, variables))["vfolder_list"]
    rest = {f["name"] for f in await ca.get("/folders")}
    assert {i["name"] for i in listed["items"]} == rest and set(names) <= rest and bobs not in rest
    assert listed["total_count"] == len(rest)
    mine = next(i for i in listed["items"] if i["name"] == names[0])
    assert mine["permission"] == "wd" and mine["ownership_type"] == "user" and mine["status"] == "ready"
    assert mine["group"] is None and mine["host"] and mine["created_at"] and mine["creator"] == alice["email"]

    page = (await gql(ca, VFOLDER_LIST_QUERY, {**variables, "limit": 2, "order": "-name"}))["vfolder_list"]
    assert page["total_count"] == len(rest) and len(page["items"]) == 2
    assert [i["name"] for i in page["items"]] == sorted(rest, reverse=True)[:2]
    tail = (await gql(ca, VFOLDER_LIST_QUERY, {**variables, "limit": 2, "offset": 2, "order": "-name"}))
    assert [i["name"] for i in tail["vfolder_list"]["items"]] == sorted(rest, reverse=True)[2:4]
    assert bobs in {i["name"] for i in (await gql(cb, VFOLDER_LIST_QUERY, variables))["vfolder_list"]["items"]}


async def test_bad_queries_answer_400_graphql_errors(manager):
    c = manager.admin()
    variables = ps_vars()
    # an unknown field, an unknown root field, a syntax error: validation errors, never a 5xx
    e = await gql_error(c, PS_QUERY.replace("result }", "result password }"), variables)
    assert e.type == "https://api.backend.ai/probs/graphql-error" and e.title == "GraphQL-generated error"
    assert "password" in e.data[0]["message"] and e.body["errors"] == e.data
    await gql_error(c, "query { user_list { items { email } } }")
    await gql_error(c, "query { compute_session_list(limit: 1, offset: 0 { items { id } } }")
    # mutations are refused: the schema has none
    e = await gql_error(c, "mutation { modify_keypair(access_key: \"x\", props: {}) { ok } }")
    assert "mutation" in e.data[0]["message"].lower()
    # filter expressions are refused rather than ignored; bad statuses, orders, pages and UUIDs too
    e = await gql_error(c, PS_QUERY, {**variables, "filter": 'name == "x"'})
    assert "filter" in e.data[0]["message"]
    await gql_error(c, PS_QUERY, {**variables, "status": "RUNNING,BOGUS"})
    await gql_error(c, PS_QUERY, {**variables, "order": "password"})
    await gql_error(c, PS_QUERY, {**variables, "limit": 0})
    await gql_error(c, PS_QUERY, {**variables, "limit": 2**40})
    await gql_error(c, PS_QUERY, {**variables, "offset": -1})
    await gql_error(c, VFOLDER_LIST_QUERY, {"group_id": "not-a-uuid", "limit": 5, "offset": 0})
    await gql_error(c, VFOLDER_LIST_QUERY, {"group_id": None, "filter": None, "order": "-secret",
                                            "limit": 5, "offset": 0})
    # a body that is no GraphQL request at all
    e = await gql_error(c, "", body={"variables": {}})
    assert e.type.endswith("invalid-api-params")
    await gql_error(c, "", body={"query": "query { keypair { access_key } }", "variables": [1, 2]})
    # one request cannot ask for a list thousands of times
    many = "query {" + " ".join(f"a{i}: keypair {{ access_key }}" for i in range(600)) + "}"
    await gql_error(c, many)


async def test_agent_list_for_administrators(manager):
    h = manager
    prefix = f"gqag-{uuid.uuid4().hex[:6]}"
    async with h.state.ctx.db.begin() as s:
        s.add_all([
            Agent(id=f"{prefix}-a", status="ALIVE", addr="http://127.0.0.1:9", resource_group="default",
                  region="local", available_slots={"cpu": "4", "mem": "8589934592"},
                  live_stat={"node": {"cpu_util": {"pct": "12.5"}, "mem": {"current": "1048576"}}}),
            Agent(id=f"{prefix}-b", status="ALIVE", addr="http://127.0.0.1:9", resource_group="default",
                  available_slots={"cpu": "2"}),
            Agent(id=f"{prefix}-c", status="LOST", addr="http://127.0.0.1:9", resource_group="default"),
        ])
    variables = {"status": "ALIVE", "scaling_group": None, "filter": None, "order": None, "limit": 100, "offset": 0}
    try:
        found = (await gql(h.admin(), AGENT_LIST_QUERY, variables))["agent_list"]
        mine = {i["id"]: i for i in found["items"] if i["id"].startswith(prefix)}
        assert set(mine) == {f"{prefix}-a", f"{prefix}-b"} and found["total_count"] == len(found["items"])
        a = mine[f"{prefix}-a"]
        assert a["status"] == "ALIVE" and a["scaling_group"] == "default" and a["region"] == "local"
        assert a["cpu_cur_pct"] == 12.5 and a["mem_cur_bytes"] == 1048576.0
        assert json.loads(a["available_slots"]) == {"cpu": "4", "mem": "8589934592"}
        assert json.loads(a["occupied_slots"]) == {}
        assert mine[f"{prefix}-b"]["cpu_cur_pct"] is None and mine[f"{prefix}-b"]["mem_cur_bytes"] == 0
        lost = (await gql(h.admin(), AGENT_LIST_QUERY, {**variables, "status": "LOST"}))["agent_list"]["items"]
        assert f"{prefix}-c" in {i["id"] for i in lost}
        page = (await gql(h.admin(), AGENT_LIST_QUERY, {**variables, "order": "-id", "limit": 1}))["agent_list"]
        assert len(page["items"]) == 1 and page["total_count"] == found["total_count"]
        assert page["items"][0]["id"] == max(i["id"] for i in found["items"])
        await gql_error(h.admin(), AGENT_LIST_QUERY, {**variables, "status": "BOGUS"})
        # plain users are no administrators
        _, c = await _user(h, "gqag")
        e = await gql_error(c, AGENT_LIST_QUERY, variables)
        assert e.data[0]["extensions"]["status"] == 403
    finally:
        async with h.state.ctx.db.begin() as s:
            for suffix in "abc":
                await s.delete(await s.get(Agent, f"{prefix}-{suffix}"))


async def test_anonymous_callers_are_refused(manager):
    with pytest.raises(APIError) as e:
        await manager.client().post("/admin/gql", json={"query": KEYPAIR_QUERY})
    assert e.value.status == 401


async def _other_domain_with_people(h, prefix: str) -> dict:
    """A fresh domain with a domain admin, a monitor and a user in a project; a user of "default" too."""
    domain = f"{prefix}-{uuid.uuid4().hex[:6]}"
    await h.admin().post("/admin/domains", json={"name": domain})
    project = await h.admin().post("/admin/projects", json={"name": f"{prefix}-p-{uuid.uuid4().hex[:6]}",
                                                          "domain_name": domain})
    admin, ca = await _user(h, f"{prefix}-adm", role="admin", domain_name=domain)
    monitor, cm = await _user(h, f"{prefix}-mon", role="monitor", domain_name=domain)
    member, cu = await _user(h, f"{prefix}-usr", domain_name=domain, full_name="Member Person",
                             project_ids=[project["id"]])
    outsider, _ = await _user(h, f"{prefix}-out")
    return {"domain": domain, "project": project, "admin": (admin, ca), "monitor": (monitor, cm),
            "member": (member, cu), "outsider": outsider}


def user_vars(**extra) -> dict:
    return {"status": None, "group_id": None, "filter": None, "order": None, "limit": 100, "offset": 0, **extra}


def keypair_vars(**extra) -> dict:
    return {"is_active": None, "domain_name": None, "filter": None, "order": None, "limit": 100, "offset": 0,
            **extra}


async def test_user_list_per_role(manager):
    h = manager
    d = await _other_domain_with_people(h, "gqu")
    (admin, ca), (monitor, cm), (member, _cu) = d["admin"], d["monitor"], d["member"]
    mine = {admin["email"], monitor["email"], member["email"]}

    # the domain admin and the monitor see their domain's users, nobody else's (as GET /admin/users)
    for c in (ca, cm):
        found = (await gql(c, USER_LIST_QUERY, user_vars()))["user_list"]
        assert {u["email"] for u in found["items"]} == mine and found["total_count"] == 3
        assert {u["domain_name"] for u in found["items"]} == {d["domain"]}
    row = next(u for u in found["items"] if u["email"] == member["email"])
    assert row["uuid"] == member["uuid"] and row["role"] == "user" and row["status"] == "active"
    assert row["full_name"] == "Member Person" and row["need_password_change"] is False
    assert row["groups"] == [{"id": d["project"]["id"], "name": d["project"]["name"]}]
    assert row["main_access_key"] == member["keypair"]["access_key"] and row["created_at"]
    assert row["sudo_session_enabled"] is False and row["allowed_client_ip"] is None

    # the superadmin sees every domain; group_id, order and pages as the client sends them
    everyone = (await gql(h.admin(), USER_LIST_QUERY, user_vars()))["user_list"]
    emails = {u["email"] for u in everyone["items"]}
    assert mine | {d["outsider"]["email"]} <= emails or everyone["total_count"] > 100
    in_project = (await gql(h.admin(), USER_LIST_QUERY, user_vars(group_id=d["project"]["id"])))["user_list"]
    assert [u["email"] for u in in_project["items"]] == [member["email"]] and in_project["total_count"] == 1
    ordered = (await gql(ca, USER_LIST_QUERY, user_vars(order="-email", limit=2)))["user_list"]
    assert [u["email"] for u in ordered["items"]] == sorted(mine, reverse=True)[:2]
    assert ordered["total_count"] == 3
    rest = (await gql(ca, USER_LIST_QUERY, user_vars(order="-email", limit=2, offset=2)))["user_list"]
    assert [u["email"] for u in rest["items"]] == sorted(mine, reverse=True)[2:]
    paged = (await gql(ca, USER_LIST_QUERY, user_vars(limit=1, offset=1)))["user_list"]
    assert len(paged["items"]) == 1 and paged["total_count"] == 3
    await h.admin().patch(f"/admin/users/{member['email']}", json={"need_password_change": True})
    flagged = (await gql(ca, USER_LIST_QUERY, user_vars(order="-need_password_change")))["user_list"]["items"]
    assert [u["email"] for u in flagged][0] == member["email"]
    await h.admin().patch(f"/admin/users/{member['email']}", json={"status": "inactive"})
    inactive = (await gql(ca, USER_LIST_QUERY, user_vars(status="inactive")))["user_list"]
    assert [u["email"] for u in inactive["items"]] == [member["email"]]
    await gql_error(ca, USER_LIST_QUERY, user_vars(status="bogus"))
    await gql_error(ca, USER_LIST_QUERY, user_vars(order="password"))
    await gql_error(ca, USER_LIST_QUERY, user_vars(filter='email == "x"'))

    # a user is refused the list, and reads only themselves with `admin user info`
    _, plain = await _user(h, "gqu-plain")
    e = await gql_error(plain, USER_LIST_QUERY, user_vars())
    assert e.data[0]["extensions"]["status"] == 403
    me = (await gql(ca, USER_INFO_QUERY, {"email": None}))["user"]
    assert me["email"] == admin["email"] and me["role"] == "admin"
    other = (await gql(cm, USER_INFO_QUERY, {"email": member["email"]}))["user"]
    assert other["uuid"] == member["uuid"] and other["status"] == "inactive"
    e = await gql_error(ca, USER_INFO_QUERY, {"email": d["outsider"]["email"]})   # another domain
    assert e.data[0]["extensions"]["status"] == 404
    e = await gql_error(plain, USER_INFO_QUERY, {"email": member["email"]})
    assert e.data[0]["extensions"]["status"] == 403


async def test_keypair_list_shows_secret_keys_only_where_allowed(manager):
    h = manager
    d = await _other_domain_with_people(h, "gqk")
    (admin, ca), (monitor, cm), (member, cu) = d["admin"], d["monitor"], d["member"]
    keys_of = {u["keypair"]["access_key"]: u for u in (admin, monitor, member)}
    await _sessions(h, member, [("k-run", "RUNNING"), ("k-done", "TERMINATED")])
    try:
        # the domain admin: their domain's keypairs, with secret keys (they may modify those users)
        found = (await gql(ca, KEYPAIR_LIST_QUERY, keypair_vars()))["keypair_list"]
        assert {k["access_key"] for k in found["items"]} == set(keys_of) and found["total_count"] == 3
        for k in found["items"]:
            assert k["secret_key"] == keys_of[k["access_key"]]["keypair"]["secret_key"]
        row = next(k for k in found["items"] if k["access_key"] == member["keypair"]["access_key"])
        assert row["user_id"] == member["email"] and row["user_info"] == {"full_name": "Member Person"}
        assert row["projects"] == [d["project"]["name"]] and row["concurrency_used"] == 1
        assert row["is_active"] is True and row["is_admin"] is False and row["resource_policy"] == "default"
        assert row["rate_limit"] > 0 and row["created_at"]

        # the monitor: the same rows, but never a secret key but their own
        seen = (await gql(cm, KEYPAIR_LIST_QUERY, keypair_vars()))["keypair_list"]["items"]
        assert {k["access_key"] for k in seen} == set(keys_of)
        assert {k["access_key"]: k["secret_key"] for k in seen if k["secret_key"]} == {
            monitor["keypair"]["access_key"]: monitor["keypair"]["secret_key"]}

        # the superadmin: every domain; domain_name, email, order and pages as the client sends them
        in_domain = (await gql(h.admin(), KEYPAIR_LIST_QUERY, keypair_vars(domain_name=d["domain"])))["keypair_list"]
        assert {k["access_key"] for k in in_domain["items"]} == set(keys_of) and in_domain["total_count"] == 3
        by_email = (await gql(h.admin(), KEYPAIR_LIST_BY_EMAIL_QUERY,
                              keypair_vars(email=d["outsider"]["email"])))["keypair_list"]
        assert [k["access_key"] for k in by_email["items"]] == [d["outsider"]["keypair"]["access_key"]]
        assert by_email["items"][0]["secret_key"] == d["outsider"]["keypair"]["secret_key"]
        # a domain admin asking for another domain's user gets nothing
        theirs = (await gql(ca, KEYPAIR_LIST_BY_EMAIL_QUERY, keypair_vars(email=d["outsider"]["email"])))
        assert theirs["keypair_list"] == {"items": [], "total_count": 0}
        ordered = (await gql(ca, KEYPAIR_LIST_QUERY, keypair_vars(order="-access_key", limit=2)))["keypair_list"]
        assert [k["access_key"] for k in ordered["items"]] == sorted(keys_of, reverse=True)[:2]
        assert ordered["total_count"] == 3
        # boolean and number columns order too (false and 0 are values, not missing)
        await h.admin().patch(f"/admin/keypairs/{member['keypair']['access_key']}", json={"rate_limit": 1})
        by_limit = (await gql(ca, KEYPAIR_LIST_QUERY, keypair_vars(order="rate_limit")))["keypair_list"]["items"]
        assert by_limit[0]["access_key"] == member["keypair"]["access_key"]
        by_admin = (await gql(ca, KEYPAIR_LIST_QUERY, keypair_vars(order="-is_admin")))["keypair_list"]["items"]
        assert [k["is_admin"] for k in by_admin] == sorted((k["is_admin"] for k in by_admin), reverse=True)
        inactive = (await gql(ca, KEYPAIR_LIST_QUERY, keypair_vars(is_active=False)))["keypair_list"]
        assert inactive == {"items": [], "total_count": 0}
        await gql_error(ca, KEYPAIR_LIST_QUERY, keypair_vars(order="secret_key"))
        await gql_error(ca, KEYPAIR_LIST_QUERY, keypair_vars(filter='access_key == "x"'))

        # a superadmin's secret key is not a domain admin's to see
        sa = (await gql(h.admin(), KEYPAIR_LIST_QUERY, keypair_vars(domain_name="default", limit=1000)))
        admin_row = next(k for k in sa["keypair_list"]["items"] if k["access_key"] == h.admin_access_key)
        assert admin_row["secret_key"] == h.admin_secret_key

        # users are refused, and learn no secret
        e = await gql_error(cu, KEYPAIR_LIST_QUERY, keypair_vars())
        assert e.data[0]["extensions"]["status"] == 403
        assert admin["keypair"]["secret_key"] not in json.dumps(e.body)
    finally:
        await _terminate_all(h, member)


async def test_domain_admin_never_sees_a_superadmins_secret_key(manager):
    h = manager
    _, ca = await _user(h, "gqk-dadm", role="admin")     # an admin of "default", where the superadmin lives
    rows = (await gql(ca, KEYPAIR_LIST_QUERY, keypair_vars(limit=1000)))["keypair_list"]["items"]
    superadmin = next(k for k in rows if k["access_key"] == h.admin_access_key)
    assert superadmin["secret_key"] is None and superadmin["is_admin"] is True


async def test_groups_per_role(manager):
    h = manager
    d = await _other_domain_with_people(h, "gqg")
    (_admin, ca), (_monitor, cm), (_member, cu) = d["admin"], d["monitor"], d["member"]
    second = await h.admin().post("/admin/projects", json={"name": f"gqg-q-{uuid.uuid4().hex[:6]}",
                                                         "domain_name": d["domain"], "description": "second"})
    mine = {d["project"]["id"], second["id"]}
    for c in (ca, cm):   # a domain's administrators and monitors: their domain's projects only
        groups = (await gql(c, GROUPS_QUERY, {"domain_name": None}))["groups"]
        assert {g["id"] for g in groups} == mine
        # another domain asked for by name still answers their own (as GET /admin/projects)
        assert {g["id"] for g in (await gql(c, GROUPS_QUERY, {"domain_name": "default"}))["groups"]} == mine
    row = next(g for g in groups if g["id"] == second["id"])
    assert row["name"] == second["name"] and row["is_active"] is True and row["created_at"]
    assert row["integration_id"] is None
    everywhere = (await gql(h.admin(), GROUPS_QUERY, {"domain_name": None}))["groups"]
    assert mine <= {g["id"] for g in everywhere} and "default" in {g["name"] for g in everywhere}
    only = (await gql(h.admin(), GROUPS_QUERY, {"domain_name": d["domain"]}))["groups"]
    assert {g["id"] for g in only} == mine

    info = (await gql(ca, GROUP_INFO_QUERY, {"gid": second["id"]}))["group"]
    assert info["description"] == "second" and info["domain_name"] == d["domain"]
    assert isinstance(json.loads(info["total_resource_slots"]), dict)
    default_id = next(g["id"] for g in everywhere if g["name"] == "default" and g["id"] not in mine)
    e = await gql_error(ca, GROUP_INFO_QUERY, {"gid": default_id})   # another domain's project
    assert e.data[0]["extensions"]["status"] == 404
    for query, variables in ((GROUPS_QUERY, {"domain_name": None}), (GROUP_INFO_QUERY, {"gid": second["id"]})):
        e = await gql_error(cu, query, variables)
        assert e.data[0]["extensions"]["status"] == 403


async def test_scaling_groups_and_images(manager):
    h = manager
    name = f"gqrg-{uuid.uuid4().hex[:6]}"
    await h.admin().post("/admin/resource-groups", json={"name": name, "description": "gql rg"})
    d = await _other_domain_with_people(h, "gqs")
    (_, ca), (_, cm), (_, cu) = d["admin"], d["monitor"], d["member"]
    for c in (h.admin(), ca, cm):   # administrators and monitors (as GET /admin/resource-groups)
        groups = {g["name"]: g for g in (await gql(c, SCALING_GROUPS_QUERY, {"is_active": None}))["scaling_groups"]}
        assert {"default", name} <= set(groups)
    mine = groups[name]
    assert mine["description"] == "gql rg" and mine["is_active"] is True and mine["driver"] == "static"
    assert mine["scheduler"] and mine["wsproxy_api_token"] is None and mine["use_host_network"] is False
    await h.admin().patch(f"/admin/resource-groups/{name}", json={"is_active": False})
    active = (await gql(ca, SCALING_GROUPS_QUERY, {"is_active": True}))["scaling_groups"]
    assert name not in {g["name"] for g in active} and "default" in {g["name"] for g in active}
    info = (await gql(cm, SCALING_GROUP_INFO_QUERY, {"name": name}))["scaling_group"]
    assert info["name"] == name and info["is_active"] is False and isinstance(json.loads(info["scheduler_opts"]), dict)
    e = await gql_error(cm, SCALING_GROUP_INFO_QUERY, {"name": f"{name}-nope"})
    assert e.data[0]["extensions"]["status"] == 404
    for query, variables in ((SCALING_GROUPS_QUERY, {"is_active": None}), (SCALING_GROUP_INFO_QUERY, {"name": name})):
        e = await gql_error(cu, query, variables)
        assert e.data[0]["extensions"]["status"] == 403

    # `admin image list`: every signed-in user sees the registry's images (as GET /images)
    tag = uuid.uuid4().hex[:6]
    async with h.state.ctx.db.begin() as s:
        s.add_all([Image(name=f"cr.example/gq-{tag}:1.0", image_registry="cr.example", tag="1.0",
                         digest="sha256:abc", size_bytes=1234),
                   Image(name=f"cr.example/gq-op-{tag}:1.0", image_registry="cr.example", tag="1.0",
                         labels={"ai.backend.features": "operation uid-match"})])
    for c in (h.admin(), cu):
        images = {i["name"]: i for i in (await gql(c, IMAGES_QUERY, {"is_operation": False}))["images"]}
        assert {f"cr.example/gq-{tag}:1.0", f"cr.example/gq-op-{tag}:1.0"} <= set(images)
    plain = images[f"cr.example/gq-{tag}:1.0"]
    assert plain == {"name": f"cr.example/gq-{tag}:1.0", "registry": "cr.example", "architecture": "x86_64",
                     "tag": "1.0", "digest": "sha256:abc", "size_bytes": 1234.0, "aliases": []}
    operational = (await gql(cu, IMAGES_QUERY, {"is_operation": True}))["images"]
    assert f"cr.example/gq-op-{tag}:1.0" in {i["name"] for i in operational}
    assert f"cr.example/gq-{tag}:1.0" not in {i["name"] for i in operational}
