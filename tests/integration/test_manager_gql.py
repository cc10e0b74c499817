"""POST /admin/gql: the GraphQL queries the official client 23.9.10 sends for ``backend.ai ps`` and
``backend.ai vfolder list``, byte for byte, on SQLite and PostgreSQL: who sees what, pagination and
total_count, and the 400 graphql-error answers (bad queries, unknown fields, mutations, filters)."""

from __future__ import annotations

import json
import uuid

import pytest

from workbay.client.sdk import APIError
from workbay.manager.models import Agent, ComputeSession

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


async def _user(h, prefix: str) -> tuple[dict, object]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    u = await h.admin().post("/admin/users", json={"email": f"{name}@example.test", "username": name,
                                                     "password": "Gql!pass123"})
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
