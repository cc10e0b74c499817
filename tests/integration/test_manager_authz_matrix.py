"""The authorization matrix: every manager endpoint × every kind of caller, exact statuses.

Identity endpoints (issue 2) and compute endpoints (sessions, resources, compute administration,
the agents' internal API) alike; compute objects the cases need (an image, an agent, sessions)
are inserted straight into the database.

Callers: the superadmin, an admin of the default domain, an admin of ANOTHER domain, a user and a
monitor of the default domain, and an anonymous client.  Every (method, path) the app serves must
have at least one case here: a new endpoint without a matrix entry fails
``test_every_endpoint_has_a_matrix_entry``.  SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import platform
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute

from tests.support.manager import ADMIN_PASSWORD
from workbay.common import signing
from workbay.manager.models import Agent, ComputeSession, Image
from workbay.manager.services import keys

VERSION = "v7.20230615"
PASSWORD = "Matr1x!pass"
ACTORS = ("superadmin", "admin", "other_admin", "user", "monitor", "anon")
PROBLEM = "https://api.backend.ai/probs/"


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- the world the matrix runs in -----------------------------------------------------------------
@dataclass
class World:
    h: Any
    creds: dict[str, tuple[str, str]]            # actor -> (access key, secret key)
    passwords: dict[str, str]
    target: dict[str, Any]                       # a plain user of the default domain
    foreign: dict[str, Any]                      # a plain user of the other domain
    project: dict[str, Any]                      # a project of the default domain, target is a member
    emails: dict[str, str] = field(default_factory=dict)
    default_project: str = ""                    # id of the default domain's "default" project
    image: str = ""                              # an image in the catalog
    image_id: str = ""
    agent_id: str = ""                           # a TERMINATED agent (never scheduled on)
    session_id: str = ""                         # a PENDING session of the target user
    user_session_id: str = ""                    # a PENDING session of the "user" actor

    @property
    def sa(self):
        return self.h.admin()


async def _create_user(h, **fields) -> dict[str, Any]:
    name = unique("mu")
    return await h.admin().post("/admin/users", json={
        "email": f"{name}@example.test", "username": name, "password": PASSWORD, **fields})


@pytest.fixture(scope="module")
async def world(manager) -> World:
    sa = manager.admin()
    await sa.post("/admin/domains", json={"name": "other"})
    users = {
        "admin": await _create_user(manager, role="admin"),
        "other_admin": await _create_user(manager, role="admin", domain_name="other"),
        "user": await _create_user(manager),
        "monitor": await _create_user(manager, role="monitor"),
    }
    target = await _create_user(manager)
    foreign = await _create_user(manager, domain_name="other")
    project = await sa.post("/admin/projects", json={"name": unique("mp")})
    await sa.post(f"/admin/projects/{project['id']}/members", json={"emails": [target["email"]]})
    for kind in ("keypair", "user", "project"):
        await sa.post(f"/admin/resource-policies/{kind}", json={"name": f"matrix-{kind}"})
    creds = {a: (u["keypair"]["access_key"], u["keypair"]["secret_key"]) for a, u in users.items()}
    creds["superadmin"] = (manager.admin_access_key, manager.admin_secret_key)
    passwords = {a: PASSWORD for a in users} | {"superadmin": ADMIN_PASSWORD}
    emails = {a: u["email"] for a, u in users.items()} | {"superadmin": "admin@workbay.local"}
    w = World(manager, creds, passwords, target, foreign, project, emails)
    # compute: everyone of the default domain is in its "default" project (as after sign-up)
    default = next(p for p in (await sa.get("/admin/projects", params={"domain": "default"}))["items"]
                   if p["name"] == "default")
    w.default_project = default["id"]
    await sa.post(f"/admin/projects/{default['id']}/members", json={"emails": [
        target["email"], users["admin"]["email"], users["user"]["email"], users["monitor"]["email"]]})
    w.image = f"cr.test/matrix/python-{uuid.uuid4().hex[:6]}:3.11"
    async with manager.state.ctx.db.begin() as s:
        image = Image(name=w.image, image_registry="cr.test", tag="3.11", architecture=platform.machine())
        agent = Agent(id=unique("agent"), status="TERMINATED", addr="http://127.0.0.1:9", resource_group="default")
        s.add_all([image, agent])
        await s.flush()
        w.image_id, w.agent_id = str(image.id), agent.id
    w.session_id = await _session_row(w, target)
    w.user_session_id = await _session_row(w, users["user"])
    return w


async def _session_row(w: World, owner: dict[str, Any]) -> str:
    async with w.h.state.ctx.db.begin() as s:
        sess = ComputeSession(name=unique("ms"), access_key=owner["keypair"]["access_key"],
                              user_id=uuid.UUID(owner["uuid"]), project_id=uuid.UUID(w.default_project),
                              domain_name="default", resource_group="default", image=w.image,
                              status="PENDING")
        s.add(sess)
        await s.flush()
        return str(sess.id)


# -- requests -----------------------------------------------------------------------------------
def _headers(w: World, actor: str, method: str, path_and_query: str, ctype: str) -> dict[str, str]:
    hdrs = {"X-BackendAI-Version": VERSION, "Content-Type": ctype}
    if actor != "anon":
        ak, sk = w.creds[actor]
        hdrs.update(signing.sign_headers(ak, sk, method, path_and_query, "manager.test", ctype, VERSION))
    return hdrs


async def send(w: World, actor: str, method: str, path: str, body: Any = None,
               query: str = "") -> tuple[int, dict[str, Any] | None]:
    pq = f"{path}?{query}" if query else path
    content = jsonlib.dumps(body).encode() if body is not None else None
    hdrs = _headers(w, actor, method, pq, "application/json" if body is not None else "text/plain")
    transport = httpx.ASGITransport(app=w.h.app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://manager.test") as c:
        resp = await c.request(method, pq, content=content, headers=hdrs)
    problem = resp.json() if resp.headers.get("content-type") == "application/problem+json" else None
    return resp.status_code, problem


async def send_streaming(w: World, actor: str, method: str, path: str, body: Any = None,
                         query: str = "") -> tuple[int, dict[str, Any] | None]:
    """For endless responses (SSE): the status of the response start, then disconnect."""
    pq = f"{path}?{query}" if query else path
    content = jsonlib.dumps(body).encode() if body is not None else b""
    hdrs = _headers(w, actor, method, pq, "application/json" if body is not None else "text/plain")
    hdrs["host"] = "manager.test"
    started: asyncio.Future = asyncio.get_running_loop().create_future()
    chunks: list[bytes] = []
    gone = asyncio.Event()
    first = True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": content, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send_(msg):
        if msg["type"] == "http.response.start" and not started.done():
            started.set_result((msg["status"], dict(msg.get("headers") or [])))
            if msg["status"] == 200:
                gone.set()                       # an event stream: no need to wait for events
        elif msg["type"] == "http.response.body":
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                gone.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query.encode(), "client": ("127.0.0.1", 5000),
             "server": ("manager.test", 80),
             "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()]}
    task = asyncio.create_task(w.h.app(scope, receive, send_))
    try:
        status, headers = await asyncio.wait_for(asyncio.shield(started), 10)
        await asyncio.wait_for(gone.wait(), 10)
    finally:
        gone.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    problem = None
    if headers.get(b"content-type") == b"application/problem+json":
        problem = jsonlib.loads(b"".join(chunks))
    else:
        assert headers.get(b"content-type", b"").startswith(b"text/event-stream")
    return status, problem


async def send_websocket(w: World, actor: str, method: str, path: str, body: Any = None,
                         query: str = "") -> tuple[int, dict[str, Any] | None]:
    """A WebSocket handshake (method "WS"): the denial response's status, or 101 when accepted."""
    pq = f"{path}?{query}" if query else path
    hdrs = _headers(w, actor, "GET", pq, "application/octet-stream")
    del hdrs["Content-Type"]                     # clients send none on a handshake
    hdrs["host"] = "manager.test"
    outcome: asyncio.Future = asyncio.get_running_loop().create_future()
    chunks: list[bytes] = []
    gone = asyncio.Event()
    first = True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "websocket.connect"}
        await gone.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send_(msg):
        if msg["type"] == "websocket.http.response.start" and not outcome.done():
            outcome.set_result((msg["status"], dict(msg.get("headers") or [])))
        elif msg["type"] == "websocket.http.response.body":
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                gone.set()
        elif msg["type"] in ("websocket.accept", "websocket.close") and not outcome.done():
            outcome.set_result((101 if msg["type"] == "websocket.accept" else 403, {}))
            gone.set()

    scope = {"type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query.encode(),
             "client": ("127.0.0.1", 5000), "server": ("manager.test", 80), "subprotocols": [],
             "extensions": {"websocket.http.response": {}},
             "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()]}
    task = asyncio.create_task(w.h.app(scope, receive, send_))
    try:
        status, headers = await asyncio.wait_for(asyncio.shield(outcome), 10)
        await asyncio.wait_for(gone.wait(), 10)
    finally:
        gone.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    problem = None
    if headers.get(b"content-type") == b"application/problem+json":
        problem = jsonlib.loads(b"".join(chunks))
    return status, problem


# -- the matrix -----------------------------------------------------------------------------------
Prep = Callable[[World, str], Awaitable[dict[str, Any]]]


@dataclass
class Case:
    method: str
    route: str                                   # the route's path template, as the app has it
    expect: dict[str, int]
    prep: Prep | None = None                     # -> {"path", "body", "query", "after"}
    variant: str = ""
    streaming: bool = False                      # method "WS": a WebSocket handshake

    @property
    def id(self) -> str:
        return f"{self.method} {self.route}{' [' + self.variant + ']' if self.variant else ''}"


def row(sa, admin, other_admin, user, monitor, anon) -> dict[str, int]:
    return dict(zip(ACTORS, (sa, admin, other_admin, user, monitor, anon), strict=False))


EVERYONE_200 = row(200, 200, 200, 200, 200, 200)
OWN_200 = row(200, 200, 200, 200, 200, 401)
READ_SCOPED = row(200, 200, 200, 403, 200, 401)          # lists: filtered to the caller's domain
READ_DEFAULT = row(200, 200, 404, 403, 200, 401)         # an object of the default domain
WRITE_DEFAULT = lambda ok: row(ok, ok, 404, 403, 403, 401)   # noqa: E731
SUPERADMIN_ONLY = lambda ok: row(ok, 403, 403, 403, 403, 401)  # noqa: E731


def body(b: dict[str, Any] | Callable[[World, str], dict[str, Any]]) -> Prep:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        return {"body": b(w, actor) if callable(b) else b}
    return prep


async def _login_body(w: World, actor: str) -> dict[str, Any]:
    return {"body": {"type": "keypair", "domain": "default", "username": w.target["email"],
                     "password": PASSWORD}}


async def _password_body(w: World, actor: str) -> dict[str, Any]:
    pw = w.passwords.get(actor, PASSWORD)
    return {"body": {"old_password": pw, "new_password": pw, "new_password2": pw}}


async def _ssh_pair(w: World, actor: str) -> dict[str, Any]:
    pub, priv = keys.generate_ssh_keypair()
    return {"body": {"pubkey": pub, "privkey": priv}}


def _own_client(w: World, actor: str):
    return w.h.client(*w.creds[actor])


async def _totp_registered(w: World, actor: str) -> dict[str, Any]:
    if actor == "anon":
        return {"body": {"otp": "123456"}}
    secret = (await _own_client(w, actor).post("/auth/totp"))["secret"]

    async def after(status: int) -> None:
        if status == 200:
            await _own_client(w, actor).delete("/auth/totp", json={"otp": pyotp.TOTP(secret).now()})
    return {"body": {"otp": pyotp.TOTP(secret).now()}, "after": after}


async def _totp_enabled(w: World, actor: str) -> dict[str, Any]:
    if actor == "anon":
        return {"body": {"otp": "123456"}}
    client = _own_client(w, actor)
    secret = (await client.post("/auth/totp"))["secret"]
    await client.post("/auth/totp/confirm", json={"otp": pyotp.TOTP(secret).now()})

    async def after(status: int) -> None:
        if status != 200:
            await client.delete("/auth/totp", json={"otp": pyotp.TOTP(secret).now()})
    return {"body": {"otp": pyotp.TOTP(secret).now()}, "after": after}


async def _totp_register(w: World, actor: str) -> dict[str, Any]:
    async def after(status: int) -> None:
        assert actor == "anon" or (await _own_client(w, actor).get("/auth/totp")) == {"enabled": False}
    return {"after": after}


def _path(fmt: Callable[[World], str]) -> Prep:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        return {"path": fmt(w)}
    return prep


def _new_user_body(**extra) -> Prep:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        name = unique("nu")
        return {"body": {"email": f"{name}@example.test", "username": name, "password": PASSWORD, **extra}}
    return prep


async def _extra_keypair(w: World, actor: str) -> dict[str, Any]:
    kp = await w.sa.post("/admin/keypairs", json={"user_email": w.target["email"]})
    return {"path": f"/admin/keypairs/{kp['access_key']}"}


async def _fresh_domain(w: World, actor: str) -> dict[str, Any]:
    name = unique("md")
    await w.sa.post("/admin/domains", json={"name": name})
    return {"path": f"/admin/domains/{name}"}


async def _fresh_project(w: World, actor: str) -> dict[str, Any]:
    project = await w.sa.post("/admin/projects", json={"name": unique("mp")})
    return {"path": f"/admin/projects/{project['id']}"}


async def _remove_target(w: World, actor: str) -> dict[str, Any]:
    pid = w.project["id"]
    await w.sa.post(f"/admin/projects/{pid}/members", json={"emails": [w.target["email"]]})

    async def after(status: int) -> None:
        await w.sa.post(f"/admin/projects/{pid}/members", json={"emails": [w.target["email"]]})
    return {"path": f"/admin/projects/{pid}/members", "body": {"emails": [w.target["email"]]}, "after": after}


def _fresh_policy(kind: str) -> Prep:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        name = unique("mpol")
        await w.sa.post(f"/admin/resource-policies/{kind}", json={"name": name})
        return {"path": f"/admin/resource-policies/{kind}/{name}"}
    return prep


def _policy_cases() -> list[Case]:
    out = []
    patch = {"keypair": {"idle_timeout": 1200}, "user": {"max_folder_count": 3},
             "project": {"max_network_count": 2}}
    for kind in ("keypair", "user", "project"):
        base = f"/admin/resource-policies/{kind}"
        out += [
            Case("GET", "/admin/resource-policies/{kind}", READ_SCOPED, _path(lambda w, b=base: b), kind),
            Case("POST", "/admin/resource-policies/{kind}", SUPERADMIN_ONLY(201),
                 _p(lambda w, b=base: b, lambda w: {"name": unique("mpol")}), kind),
            Case("GET", "/admin/resource-policies/{kind}/{name}", READ_SCOPED,
                 _path(lambda w, b=base, k=kind: f"{b}/matrix-{k}"), kind),
            Case("PATCH", "/admin/resource-policies/{kind}/{name}", SUPERADMIN_ONLY(200),
                 (lambda b, k, p: (lambda w, a: _ret({"path": f"{b}/matrix-{k}", "body": p})))(base, kind, patch[kind]),
                 kind),
            Case("DELETE", "/admin/resource-policies/{kind}/{name}", SUPERADMIN_ONLY(204),
                 _fresh_policy(kind), kind),
        ]
    return out


async def _ret(value: dict[str, Any]) -> dict[str, Any]:
    return value


def _p(fmt: Callable[[World], str], b: Any = None) -> Prep:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        out: dict[str, Any] = {"path": fmt(w)}
        if b is not None:
            out["body"] = b(w) if callable(b) else b
        return out
    return prep


# -- compute ----------------------------------------------------------------------------------------
SESSION_READ = row(200, 200, 404, 404, 200, 401)          # someone else's session: hidden from others
SESSION_WRITE = lambda ok: row(ok, ok, 404, 404, 403, 401)  # noqa: E731  monitors read, never change


def _sess(suffix: str = "", b: Any = None, query: str = "", own: bool = False) -> Prep:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        sid = w.user_session_id if own else w.session_id
        return {"path": f"/session/{sid}{suffix}", "body": b, "query": query}
    return prep


def _stream_app(prefix: str, what: str) -> Prep:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        return {"path": f"/stream/{prefix}/{w.session_id}/{what}", "query": "app=sshd"}
    return prep


def _fresh_session(own: bool = False) -> Prep:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        owner = await w.sa.get(f"/admin/users/{w.emails['user'] if own else w.target['email']}")
        kp = (await w.sa.get("/admin/keypairs", params={"user_email": owner["email"], "is_active": "true"}))["items"][0]
        return {"path": f"/session/{await _session_row(w, {**owner, 'keypair': kp})}"}
    return prep


def _new_session(on_behalf: bool) -> Prep:
    async def prep(w: World, actor: str) -> dict[str, Any]:
        b = {"image": w.image, "name": unique("ns"), "enqueueOnly": True, "group": "default"}
        if on_behalf:
            b["owner_access_key"] = w.target["keypair"]["access_key"]
        return {"body": b}
    return prep


async def _fresh_rg(w: World, actor: str) -> dict[str, Any]:
    name = unique("mrg")
    await w.sa.post("/admin/resource-groups", json={"name": name})
    return {"path": f"/admin/resource-groups/{name}"}


async def _fresh_preset(w: World, actor: str) -> dict[str, Any]:
    name = unique("mpre")
    await w.sa.post("/admin/resource-presets", json={"name": name, "resource_slots": {"cpu": "1", "mem": "1g"}})
    return {"path": f"/admin/resource-presets/{name}", "body": {"resource_slots": {"cpu": "2", "mem": "2g"}}}


COMPUTE_CASES: list[Case] = [
    Case("POST", "/session", row(201, 201, 404, 201, 201, 401), _new_session(False), "own session"),
    Case("POST", "/session", row(201, 201, 404, 403, 403, 401), _new_session(True), "on behalf of the target"),
    # every check of POST /session, nothing created: the same answers, 200 where it would create
    Case("POST", "/session/_/validate", row(200, 200, 404, 200, 200, 401), _new_session(False), "own session"),
    Case("POST", "/session/_/validate", row(200, 200, 404, 403, 403, 401), _new_session(True),
         "on behalf of the target"),
    Case("GET", "/sessions", OWN_200),
    Case("GET", "/sessions", READ_SCOPED, lambda w, a: _ret({"query": "all=true"}), "all users"),
    Case("GET", "/sessions/counts", OWN_200),
    Case("GET", "/sessions/counts", READ_SCOPED, lambda w, a: _ret({"query": "all=true"}), "all users"),
    Case("GET", "/session/{name}", SESSION_READ, _sess()),
    Case("GET", "/session/{name}", row(200, 200, 404, 200, 200, 401), _sess(own=True), "the user's own"),
    Case("GET", "/session/{name}/logs", SESSION_READ, _sess("/logs")),
    # a PENDING session: those who may open its apps hear that it is not running yet
    Case("POST", "/session/{name}/start-service", row(400, 400, 404, 404, 403, 401),
         _sess("/start-service", b={"app": "jupyter"})),
    Case("GET", "/session/{name}/download", row(400, 400, 404, 404, 403, 401),
         _sess("/download", b={"files": ["id_container"]})),
    Case("GET", "/session/{name}/download_single", row(400, 400, 404, 404, 403, 401),
         _sess("/download_single", query="file=id_container")),
    Case("GET", "/stream/session/{name}/apps", SESSION_READ,
         lambda w, a: _ret({"path": f"/stream/session/{w.session_id}/apps"})),
    # WebSockets on a PENDING session: those who may attach hear that it is not running yet
    *[Case("WS", f"/stream/{prefix}/{{name}}/{what}", row(400, 400, 404, 404, 403, 401),
           _p(lambda w, prefix=prefix, what=what: f"/stream/{prefix}/{w.session_id}/{what}"))
      for prefix in ("session", "kernel") for what in ("pty", "execute")],
    *[Case("WS", f"/stream/{prefix}/{{name}}/{what}", row(400, 400, 404, 404, 403, 401),
           _stream_app(prefix, what)) for prefix in ("session", "kernel") for what in ("tcpproxy", "httpproxy")],
    Case("GET", "/session/{name}/status-history", SESSION_READ, _sess("/status-history")),
    Case("DELETE", "/session/{name}", SESSION_WRITE(200), _fresh_session()),
    Case("DELETE", "/session/{name}", row(200, 200, 404, 200, 403, 401), _fresh_session(own=True),
         "the user's own"),
    Case("PATCH", "/session/{name}", SESSION_WRITE(400), _sess()),          # 400: restart needs RUNNING
    Case("POST", "/session/{name}", SESSION_WRITE(200),
         _sess(b={"mode": "query", "runId": "r1", "code": "print(1)"})),
    Case("POST", "/session/{name}/interrupt", SESSION_WRITE(204), _sess("/interrupt")),
    Case("POST", "/session/{name}/rename", SESSION_WRITE(400),              # 400: rename needs RUNNING
         _sess("/rename", query="name=renamed-session")),
    Case("GET", "/events/session", OWN_200, streaming=True),
    Case("GET", "/resource/presets", OWN_200),
    Case("POST", "/resource/check-presets", row(200, 200, 404, 200, 200, 401)),  # 404: no "default" project in "other"
    Case("POST", "/resource/recalculate-usage", SUPERADMIN_ONLY(200)),
    # other-domain admins are not in the default domain's "default" project
    Case("GET", "/resource/summary", row(200, 200, 404, 200, 200, 401)),
    Case("GET", "/resource/agent-summary", row(200, 200, 404, 200, 200, 401)),
    Case("POST", "/resource/recalculate-usage", SUPERADMIN_ONLY(200), body({"background": True}), "background"),
    Case("GET", "/images", OWN_200),
    Case("PATCH", "/admin/images/{ref}", SUPERADMIN_ONLY(200),
         _p(lambda w: f"/admin/images/{w.image_id}", {"min_slots": {"cpu": "1"}})),
    Case("POST", "/admin/images/rescan", SUPERADMIN_ONLY(200)),
    Case("GET", "/admin/agents", READ_SCOPED),
    Case("PATCH", "/admin/agents/{agent_id}", SUPERADMIN_ONLY(200),
         _p(lambda w: f"/admin/agents/{w.agent_id}", {"schedulable": False})),
    Case("GET", "/admin/resource-groups", READ_SCOPED),
    Case("POST", "/admin/resource-groups", SUPERADMIN_ONLY(201), body(lambda w, a: {"name": unique("mrg")})),
    Case("GET", "/admin/resource-groups/{name}", READ_SCOPED, _p(lambda w: "/admin/resource-groups/default")),
    Case("PATCH", "/admin/resource-groups/{name}", SUPERADMIN_ONLY(200),
         _p(lambda w: "/admin/resource-groups/default", {"description": "The default resource group"})),
    Case("DELETE", "/admin/resource-groups/{name}", SUPERADMIN_ONLY(204), _fresh_rg),
    Case("GET", "/admin/resource-presets", READ_SCOPED),
    Case("POST", "/admin/resource-presets", SUPERADMIN_ONLY(201),
         body(lambda w, a: {"name": unique("mpre"), "resource_slots": {"cpu": "1", "mem": "1g"}})),
    Case("PATCH", "/admin/resource-presets/{name}", SUPERADMIN_ONLY(200), _fresh_preset),
    Case("DELETE", "/admin/resource-presets/{name}", SUPERADMIN_ONLY(204), _fresh_preset),
    # the agents' API takes the cluster secret, never a user's keypair
    Case("POST", "/internal/agents/heartbeat", row(401, 401, 401, 401, 401, 401),
         body({"id": "matrix-agent", "addr": "http://127.0.0.1:9"})),
    Case("POST", "/internal/agents/events", row(401, 401, 401, 401, 401, 401),
         body({"agent_id": "matrix-agent", "events": []})),
]

CASES: list[Case] = [
    # -- unauthenticated ------------------------------------------------------------------------
    Case("GET", "/", EVERYONE_200),
    Case("GET", "/manager/announcement", EVERYONE_200),
    Case("GET", "/healthz", EVERYONE_200),
    Case("POST", "/auth/authorize", EVERYONE_200, _login_body),
    Case("POST", "/auth/signup", row(403, 403, 403, 403, 403, 403),
         body(lambda w, a: {"email": f"{unique()}@example.test", "password": PASSWORD})),
    Case("POST", "/auth/update-password-no-auth", row(400, 400, 400, 400, 400, 400),
         body({"domain": "default", "username": "x@example.test", "current_password": PASSWORD,
               "new_password": PASSWORD})),
    # -- the caller's own account --------------------------------------------------------------
    Case("POST", "/auth/update-password", OWN_200, _password_body),
    Case("POST", "/auth/update-full-name", OWN_200, body({"full_name": "Matrix"})),
    Case("GET", "/auth/ssh-keypair", OWN_200),
    Case("PATCH", "/auth/ssh-keypair", OWN_200),
    Case("POST", "/auth/ssh-keypair", OWN_200, _ssh_pair),
    Case("GET", "/auth/role", OWN_200),
    Case("GET", "/auth", OWN_200),
    Case("POST", "/auth", OWN_200, body({"echo": "x"})),
    Case("GET", "/auth/test", OWN_200),
    Case("POST", "/auth/test", OWN_200, body({"echo": "x"})),
    Case("GET", "/auth/totp", OWN_200),
    Case("POST", "/auth/totp", OWN_200, _totp_register),
    Case("POST", "/auth/totp/confirm", OWN_200, _totp_registered),
    Case("DELETE", "/auth/totp", OWN_200, _totp_enabled),
    Case("GET", "/user/me", OWN_200),
    # GraphQL: everyone lists what GET /sessions shows them; another's keypair is the readers' only
    Case("POST", "/admin/gql", OWN_200, body({"query": "query { keypair { access_key is_admin } }"})),
    Case("POST", "/admin/gql", OWN_200, body({
        "query": "query($l:Int!,$o:Int!) { compute_session_list(limit:$l, offset:$o) { total_count } }",
        "variables": {"l": 5, "o": 0}}), "session list"),
    Case("POST", "/admin/gql", row(200, 200, 400, 400, 200, 401),
         body(lambda w, a: {"query": "query($ak:String) { keypair(access_key:$ak) { access_key } }",
                            "variables": {"ak": w.target["keypair"]["access_key"]}}), "the target's keypair"),
    Case("POST", "/admin/gql", row(200, 200, 200, 400, 200, 401),
         body({"query": "query { agent_list(limit: 5, offset: 0) { total_count } }"}), "agent list"),
    # the admin lists as their REST routes (READ_SCOPED), a user's refusal a GraphQL error
    *[Case("POST", "/admin/gql", row(200, 200, 200, 400, 200, 401), body({"query": query}), variant)
      for variant, query in (
          ("user list", "query { user_list(limit: 5, offset: 0) { total_count } }"),
          ("keypair list", "query { keypair_list(limit: 5, offset: 0) { total_count } }"),
          ("groups", "query { groups { id name } }"),
          ("scaling groups", "query { scaling_groups { name } }"))],
    Case("POST", "/admin/gql", OWN_200, body({"query": "query { images { name } }"}), "images"),
    Case("GET", "/user/preferences", OWN_200),
    Case("PATCH", "/user/preferences", OWN_200, body({"theme": "dark"})),
    Case("GET", "/events/notifications", OWN_200, streaming=True),
    # -- users ------------------------------------------------------------------------------------
    Case("GET", "/admin/users", READ_SCOPED),
    Case("POST", "/admin/users", WRITE_DEFAULT(201), _new_user_body()),
    Case("POST", "/admin/users", row(201, 403, 404, 403, 403, 401), _new_user_body(role="superadmin"),
         "grant superadmin"),
    Case("POST", "/admin/users", row(201, 404, 201, 403, 403, 401), _new_user_body(domain_name="other"),
         "in the other domain"),
    Case("GET", "/admin/users/{email}", READ_DEFAULT, _p(lambda w: f"/admin/users/{w.target['email']}")),
    Case("GET", "/admin/users/{email}", row(200, 404, 200, 403, 404, 401),
         _p(lambda w: f"/admin/users/{w.foreign['email']}"), "user of the other domain"),
    Case("GET", "/admin/users/{email}", OWN_200,
         lambda w, a: _ret({"path": f"/admin/users/{w.emails.get(a, 'x@example.test')}"}), "own record"),
    Case("PATCH", "/admin/users/{email}", WRITE_DEFAULT(200),
         _p(lambda w: f"/admin/users/{w.target['email']}", {"description": "matrix"})),
    Case("PATCH", "/admin/users/{email}", row(200, 403, 404, 403, 403, 401),
         _p(lambda w: "/admin/users/admin@workbay.local", {"description": "the superadmin"}),
         "the superadmin"),
    Case("PATCH", "/admin/users/{email}", row(200, 404, 200, 403, 403, 401),
         _p(lambda w: f"/admin/users/{w.foreign['email']}", {"description": "foreign"}),
         "user of the other domain"),
    Case("DELETE", "/admin/users/{email}/totp", WRITE_DEFAULT(200),
         _p(lambda w: f"/admin/users/{w.target['email']}/totp")),
    # -- keypairs ---------------------------------------------------------------------------------
    Case("GET", "/admin/keypairs", READ_SCOPED),
    Case("POST", "/admin/keypairs", WRITE_DEFAULT(201), body(lambda w, a: {"user_email": w.target["email"]})),
    Case("GET", "/admin/keypairs/{access_key}", READ_DEFAULT,
         _p(lambda w: f"/admin/keypairs/{w.target['keypair']['access_key']}")),
    Case("PATCH", "/admin/keypairs/{access_key}", WRITE_DEFAULT(200),
         _p(lambda w: f"/admin/keypairs/{w.target['keypair']['access_key']}", {"rate_limit": 5000})),
    Case("DELETE", "/admin/keypairs/{access_key}", WRITE_DEFAULT(204), _extra_keypair),
    # -- domains ----------------------------------------------------------------------------------
    Case("GET", "/admin/domains", READ_SCOPED),
    Case("POST", "/admin/domains", SUPERADMIN_ONLY(201), body(lambda w, a: {"name": unique("md")})),
    Case("GET", "/admin/domains/{name}", READ_DEFAULT, _p(lambda w: "/admin/domains/default")),
    Case("GET", "/admin/domains/{name}", row(200, 404, 200, 403, 404, 401),
         _p(lambda w: "/admin/domains/other"), "the other domain"),
    Case("PATCH", "/admin/domains/{name}", SUPERADMIN_ONLY(200),
         _p(lambda w: "/admin/domains/default", {"description": "The default domain"})),
    Case("DELETE", "/admin/domains/{name}", SUPERADMIN_ONLY(204), _fresh_domain),
    # -- projects ---------------------------------------------------------------------------------
    Case("GET", "/admin/projects", READ_SCOPED),
    Case("POST", "/admin/projects", WRITE_DEFAULT(201), body(lambda w, a: {"name": unique("mp")})),
    Case("GET", "/admin/projects/{project_id}", READ_DEFAULT, _p(lambda w: f"/admin/projects/{w.project['id']}")),
    Case("PATCH", "/admin/projects/{project_id}", WRITE_DEFAULT(200),
         _p(lambda w: f"/admin/projects/{w.project['id']}", {"description": "matrix"})),
    Case("DELETE", "/admin/projects/{project_id}", WRITE_DEFAULT(204), _fresh_project),
    Case("GET", "/admin/projects/{project_id}/members", READ_DEFAULT,
         _p(lambda w: f"/admin/projects/{w.project['id']}/members")),
    Case("POST", "/admin/projects/{project_id}/members", WRITE_DEFAULT(200),
         _p(lambda w: f"/admin/projects/{w.project['id']}/members", lambda w: {"emails": [w.target["email"]]})),
    Case("DELETE", "/admin/projects/{project_id}/members", WRITE_DEFAULT(200), _remove_target),
    # -- resource policies ------------------------------------------------------------------------
    *_policy_cases(),
    # -- settings ---------------------------------------------------------------------------------
    Case("GET", "/admin/settings", SUPERADMIN_ONLY(200)),
    Case("PATCH", "/admin/settings", SUPERADMIN_ONLY(200), body({"signup_enabled": False})),
    *COMPUTE_CASES,
]
from tests.integration.authz_folder_cases import BGTASK_CASES, FOLDER_CASES  # noqa: E402  (uses the helpers above)
from tests.integration.authz_model_store_cases import MODEL_STORE_CASES  # noqa: E402
from tests.integration.authz_serving_cases import SERVING_CASES  # noqa: E402

CASES += FOLDER_CASES + BGTASK_CASES + SERVING_CASES + MODEL_STORE_CASES

# The problem type each refusal must carry.
KINDS = {400: "generic-bad-request", 401: "auth-failed", 403: "insufficient-privilege",
         404: "object-not-found"}
KIND_OVERRIDES = {("POST", "/auth/signup", 403): "generic-forbidden", ("POST", "/admin/gql", 400): "graphql-error"}


def _walk(routes, prefix: str = ""):
    for r in routes:
        if isinstance(r, APIRoute):
            for m in r.methods - {"HEAD"}:
                yield m, prefix + r.path_format          # "{ref:path}" -> "{ref}", as OpenAPI has it
        elif isinstance(r, APIWebSocketRoute):
            yield "WS", prefix + r.path_format
        elif hasattr(r, "original_router"):      # FastAPI keeps included routers as one route
            yield from _walk(r.original_router.routes, prefix + r.include_context.prefix)


NOT_API = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_every_endpoint_has_a_matrix_entry(manager):
    served = set(_walk(manager.app.routes))
    # the walk must see what OpenAPI documents (it would silently miss routes otherwise)
    documented = {(m.upper(), p) for p, ops in manager.app.openapi()["paths"].items() for m in ops}
    assert documented <= served
    covered = {(c.method, c.route) for c in CASES}
    assert served - covered == set(), f"endpoints without a matrix entry: {sorted(served - covered)}"
    assert covered - served == set(), f"matrix entries for endpoints that do not exist: {sorted(covered - served)}"
    other = {getattr(r, "path", None) for r in manager.app.routes
             if not isinstance(r, (APIRoute, APIWebSocketRoute)) and not hasattr(r, "original_router")}
    assert other <= NOT_API


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_matrix(world, case: Case):
    assert set(case.expect) == set(ACTORS)
    wrong = []
    for actor in ACTORS:
        prep = await case.prep(world, actor) if case.prep else {}
        path = prep.get("path", case.route)
        assert "{" not in path, f"{case.id}: no path parameters given"
        do = send_websocket if case.method == "WS" else send_streaming if case.streaming else send
        status, problem = await do(world, actor, case.method, path, prep.get("body"), prep.get("query", ""))
        if "after" in prep:
            await prep["after"](status)
        expected = case.expect[actor]
        if status != expected:
            wrong.append(f"{actor}: {status} (expected {expected}) {problem}")
            continue
        if status >= 400:
            kind = KIND_OVERRIDES.get((case.method, case.route, status), KINDS.get(status))
            assert problem is not None and problem["type"] == PROBLEM + kind, (actor, problem)
    assert not wrong, f"{case.id}:\n  " + "\n  ".join(wrong)


# -- what the allowed callers see ---------------------------------------------------------------
async def test_lists_are_confined_to_the_callers_domain(world):
    h = world.h
    other_admin = h.client(*world.creds["other_admin"])
    monitor = h.client(*world.creds["monitor"])
    users = (await other_admin.get("/admin/users", params={"limit": 1000}))["items"]
    assert users and {u["domain_name"] for u in users} == {"other"}
    assert world.foreign["email"] in {u["email"] for u in users}
    kps = (await other_admin.get("/admin/keypairs", params={"limit": 1000}))["items"]
    assert world.target["keypair"]["access_key"] not in {k["access_key"] for k in kps}
    assert world.foreign["keypair"]["access_key"] in {k["access_key"] for k in kps}
    assert [d["name"] for d in (await other_admin.get("/admin/domains"))["items"]] == ["other"]
    assert all(p["domain_name"] == "other" for p in (await other_admin.get("/admin/projects"))["items"])
    # a domain filter cannot widen the scope
    assert (await other_admin.get("/admin/users", params={"domain": "default"}))["items"] == users[:50]
    mon_users = (await monitor.get("/admin/users", params={"limit": 1000}))["items"]
    assert {u["domain_name"] for u in mon_users} == {"default"}
    # monitors read keypairs without their secrets; admins of the domain see them
    mon_kps = (await monitor.get("/admin/keypairs", params={"limit": 1000}))["items"]
    mon_ak, mon_sk = world.creds["monitor"]
    assert len(mon_kps) > 3
    assert all(k["secret_key"] is None for k in mon_kps if k["access_key"] != mon_ak)
    assert [k["secret_key"] for k in mon_kps if k["access_key"] == mon_ak] == [mon_sk]
    target_ak = world.target["keypair"]["access_key"]
    assert (await monitor.get(f"/admin/keypairs/{target_ak}"))["secret_key"] is None
    admin = h.client(*world.creds["admin"])
    assert (await admin.get(f"/admin/keypairs/{target_ak}"))["secret_key"] == world.target["keypair"]["secret_key"]
    # a domain admin never sees a superadmin's secret key (it would make them superadmin)
    assert (await admin.get(f"/admin/keypairs/{h.admin_access_key}"))["secret_key"] is None
    listed = (await admin.get("/admin/keypairs", params={"q": h.admin_access_key}))["items"]
    assert [k["secret_key"] for k in listed] == [None]
    own = (await admin.get(f"/admin/keypairs/{world.creds['admin'][0]}"))["secret_key"]
    assert own == world.creds["admin"][1]
    assert (await world.sa.get(f"/admin/keypairs/{target_ak}"))["secret_key"] == world.target["keypair"]["secret_key"]


async def test_other_domain_admin_cannot_reach_default_objects_through_bodies(world):
    h = world.h
    other_admin = h.client(*world.creds["other_admin"])
    from workbay.client.sdk import APIError

    # a keypair for a default-domain user: the same answer as for an unknown user
    with pytest.raises(APIError) as known:
        await other_admin.post("/admin/keypairs", json={"user_email": world.target["email"]})
    with pytest.raises(APIError) as unknown:
        await other_admin.post("/admin/keypairs", json={"user_email": "nobody@example.test"})
    assert known.value.status == unknown.value.status == 404
    assert known.value.title == unknown.value.title
    # a default-domain user cannot be added to the other domain's projects, same answer as unknown
    project = await other_admin.post("/admin/projects", json={"name": unique("op"), "domain_name": "other"})
    with pytest.raises(APIError) as e:
        await other_admin.post(f"/admin/projects/{project['id']}/members", json={"emails": [world.target["email"]]})
    assert e.value.status == 400 and e.value.msg.startswith("No such users in domain other")
    # moving a user into the default domain needs the superadmin
    with pytest.raises(APIError) as e:
        await other_admin.patch(f"/admin/users/{world.foreign['email']}", json={"domain_name": "default"})
    assert e.value.status == 403
    # and an admin cannot promote anyone to superadmin
    admin = h.client(*world.creds["admin"])
    with pytest.raises(APIError) as e:
        await admin.patch(f"/admin/users/{world.target['email']}", json={"role": "superadmin"})
    assert e.value.status == 403
    assert (await world.sa.get(f"/admin/users/{world.target['email']}"))["role"] == "user"
