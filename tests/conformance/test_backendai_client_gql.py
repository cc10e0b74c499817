"""The official client's list commands, which 23.9.10 sends as GraphQL (``POST /admin/gql``):
``backend.ai ps`` (and ``--all``, ``--format``, ``--name-only``), ``backend.ai vfolder list``,
``backend.ai admin agent list``, ``admin user list`` / ``admin user info``, ``admin keypair list``,
``admin group list`` / ``info``, ``admin scaling-group list`` / ``info`` and ``admin image list``,
with a keypair (API mode) against the manager and after ``backend.ai login`` (session mode)
through the webserver's ``/func`` proxy."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest

from tests.conformance.test_backendai_client import BAI_PYTHON
from tests.support.webserver import running_system
from workbay.manager.models import Agent, ComputeSession, Image

PASSWORD = "Gq1!conform"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("bai-gql")) as s:
        yield s


async def _user_with_things(system, prefix: str) -> dict:
    """A user with a running and a terminated session (rows: no container needed) and a folder."""
    h = system.manager
    tag = uuid.uuid4().hex[:6]
    u = await h.admin().post("/admin/users", json={"email": f"{prefix}-{tag}@example.test",
                                                     "username": f"{prefix}-{tag}", "password": PASSWORD})
    projects = (await h.admin().get("/admin/projects", params={"domain": "default"}))["items"]
    pid = uuid.UUID(next(p["id"] for p in projects if p["name"] == "default"))
    names = {"running": f"{prefix}-run-{tag}", "done": f"{prefix}-done-{tag}", "folder": f"{prefix}-data-{tag}"}
    async with h.state.ctx.db.begin() as s:
        for name, status in ((names["running"], "RUNNING"), (names["done"], "TERMINATED")):
            s.add(ComputeSession(name=name, access_key=u["keypair"]["access_key"], user_id=uuid.UUID(u["uuid"]),
                                 project_id=pid, domain_name="default", resource_group="default",
                                 image="cr.example/python:3.11", status=status,
                                 occupying_slots={"cpu": "1", "mem": "1073741824"}))
    await h.client(u["keypair"]["access_key"], u["keypair"]["secret_key"]).post(
        "/folders", json={"name": names["folder"]})
    return {**u, "names": names}


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(BAI_PYTHON.parent / "backend.ai"), *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)


async def run_ok(env: dict[str, str], *args: str) -> str:
    done = await asyncio.to_thread(_cli, env, *args)
    assert done.returncode == 0, f"backend.ai {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _prerequisite() -> None:
    if not BAI_PYTHON.exists():
        pytest.fail(f"{BAI_PYTHON} is missing: the official client needs its own venv "
                    "(python3 -m venv .venv-bai && .venv-bai/bin/pip install backend.ai-client==23.9.10 yarl==1.9.4)")


async def test_ps_and_vfolder_list_with_a_keypair(system, tmp_path):
    _prerequisite()
    alice = await _user_with_things(system, "gqa")
    bob = await _user_with_things(system, "gqb")
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "BACKEND_ENDPOINT": system.manager_url,
            "BACKEND_ENDPOINT_TYPE": "api"}
    env = {**base, "BACKEND_ACCESS_KEY": alice["keypair"]["access_key"],
           "BACKEND_SECRET_KEY": alice["keypair"]["secret_key"]}
    names = alice["names"]

    ps = await run_ok(env, "ps")
    assert names["running"] in ps and "RUNNING" in ps and "default" in ps   # name, status, group_name
    assert names["done"] not in ps and bob["names"]["running"] not in ps
    everything = await run_ok(env, "ps", "--all")
    assert names["running"] in everything and names["done"] in everything
    assert bob["names"]["running"] not in everything
    only = await run_ok(env, "ps", "--all", "--format", "name,status,occupying_slots")
    assert names["done"] in only and "TERMINATED" in only and "cpu:1" in only
    assert (await run_ok(env, "ps", "--name-only")).split()[-1:] == [names["running"]]
    dead = await run_ok(env, "ps", "--dead", "--plain")
    assert names["done"] in dead and names["running"] not in dead

    folders = await run_ok(env, "vfolder", "list")
    assert names["folder"] in folders and bob["names"]["folder"] not in folders

    # the superadmin sees every user's sessions, with their access keys
    admin_env = {**base, "BACKEND_ACCESS_KEY": system.manager.admin_access_key,
                 "BACKEND_SECRET_KEY": system.manager.admin_secret_key}
    admin_ps = await run_ok(admin_env, "ps")
    assert names["running"] in admin_ps and bob["names"]["running"] in admin_ps
    assert alice["keypair"]["access_key"] in admin_ps
    theirs = await run_ok(admin_env, "ps", "--access-key", bob["keypair"]["access_key"])
    assert bob["names"]["running"] in theirs and names["running"] not in theirs

    # `admin agent list` (GraphQL too): for administrators
    agent_id = f"gq-agent-{uuid.uuid4().hex[:6]}"
    async with system.manager.state.ctx.db.begin() as s:
        s.add(Agent(id=agent_id, status="ALIVE", addr="http://127.0.0.1:9", resource_group="default",
                    available_slots={"cpu": "4", "mem": "8589934592"},
                    live_stat={"node": {"cpu_util": {"pct": "12.5"}, "mem": {"current": "1048576"}}}))
    agents = await run_ok(admin_env, "admin", "agent", "list")
    assert agent_id in agents and "ALIVE" in agents and "cpu:4" in agents
    denied = await asyncio.to_thread(_cli, env, "admin", "agent", "list")
    assert denied.returncode != 0 and agent_id not in denied.stdout

    # what the server refuses, the client reports as a failure (never a wrong list)
    refused = await asyncio.to_thread(_cli, env, "ps", "--filter", 'name == "x"')
    assert refused.returncode != 0 and "filter" in refused.stdout + refused.stderr


async def test_ps_and_vfolder_list_after_login_through_the_webserver(system, tmp_path):
    _prerequisite()
    carol = await _user_with_things(system, "gqc")
    other = await _user_with_things(system, "gqd")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "BACKEND_ENDPOINT": system.web_url,
           "BACKEND_ENDPOINT_TYPE": "session"}
    login = await asyncio.to_thread(_cli, env, "login", stdin=f"{carol['email']}\n{PASSWORD}\n")
    assert "Login succeeded" in login.stdout + login.stderr, login.stdout + login.stderr

    ps = await run_ok(env, "ps")
    assert carol["names"]["running"] in ps and other["names"]["running"] not in ps
    assert carol["names"]["done"] not in ps
    folders = await run_ok(env, "vfolder", "list")
    assert carol["names"]["folder"] in folders and other["names"]["folder"] not in folders


async def test_admin_user_and_keypair_lists(system, tmp_path):
    _prerequisite()
    h = system.manager
    domain = f"gqdom-{uuid.uuid4().hex[:6]}"
    await h.admin().post("/admin/domains", json={"name": domain})
    tag = uuid.uuid4().hex[:6]
    dadmin = await h.admin().post("/admin/users", json={
        "email": f"gq-dadm-{tag}@example.test", "username": f"gq-dadm-{tag}", "password": PASSWORD,
        "role": "admin", "domain_name": domain})
    member = await h.admin().post("/admin/users", json={
        "email": f"gq-mem-{tag}@example.test", "username": f"gq-mem-{tag}", "password": PASSWORD,
        "domain_name": domain, "full_name": "Gq Member"})
    outsider = await _user_with_things(system, "gqo")
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "BACKEND_ENDPOINT": system.manager_url,
            "BACKEND_ENDPOINT_TYPE": "api"}

    def as_(u: dict) -> dict[str, str]:
        return {**base, "BACKEND_ACCESS_KEY": u["keypair"]["access_key"],
                "BACKEND_SECRET_KEY": u["keypair"]["secret_key"]}

    admin_env = {**base, "BACKEND_ACCESS_KEY": h.admin_access_key, "BACKEND_SECRET_KEY": h.admin_secret_key}

    # `admin user list`: the superadmin sees every domain, the domain admin only theirs
    users = await run_ok(admin_env, "admin", "user", "list", "--limit", "100", "--order", "-created_at")
    assert member["email"] in users and outsider["email"] in users and "Gq Member" in users
    theirs = await run_ok(as_(dadmin), "admin", "user", "list")
    assert member["email"] in theirs and dadmin["email"] in theirs and outsider["email"] not in theirs
    assert member["keypair"]["access_key"] in theirs          # main_access_key
    info = await run_ok(as_(dadmin), "admin", "user", "info", "--email", member["email"])
    assert member["uuid"] in info and "Gq Member" in info and domain in info
    own = await run_ok(as_(outsider), "admin", "user", "info")
    assert outsider["email"] in own and outsider["uuid"] in own
    refused = await asyncio.to_thread(_cli, as_(outsider), "admin", "user", "list")
    assert refused.returncode != 0 and member["email"] not in refused.stdout

    # `admin keypair list`: secret keys where the REST rule shows them
    keypairs = await run_ok(as_(dadmin), "admin", "keypair", "list")
    assert member["keypair"]["access_key"] in keypairs and member["keypair"]["secret_key"] in keypairs
    assert outsider["keypair"]["access_key"] not in keypairs
    one = await run_ok(admin_env, "admin", "keypair", "list", "--user-id", outsider["email"])
    assert outsider["keypair"]["access_key"] in one and outsider["keypair"]["secret_key"] in one
    assert member["keypair"]["access_key"] not in one
    refused = await asyncio.to_thread(_cli, as_(outsider), "admin", "keypair", "list")
    assert refused.returncode != 0 and member["keypair"]["secret_key"] not in refused.stdout + refused.stderr


async def test_admin_group_scaling_group_and_image_lists(system, tmp_path):
    _prerequisite()
    h = system.manager
    tag = uuid.uuid4().hex[:6]
    domain = f"gqgd-{tag}"
    await h.admin().post("/admin/domains", json={"name": domain})
    project = await h.admin().post("/admin/projects", json={"name": f"gq-proj-{tag}", "domain_name": domain,
                                                          "description": "gql project"})
    other = await h.admin().post("/admin/projects", json={"name": f"gq-other-{tag}"})
    dadmin = await h.admin().post("/admin/users", json={
        "email": f"gq-gadm-{tag}@example.test", "username": f"gq-gadm-{tag}", "password": PASSWORD,
        "role": "admin", "domain_name": domain})
    plain = await _user_with_things(system, "gqg")
    await h.admin().post("/admin/resource-groups", json={"name": f"gq-rg-{tag}", "description": "gql rg"})
    async with h.state.ctx.db.begin() as s:
        s.add(Image(name=f"cr.example/gq-img-{tag}:2.0", image_registry="cr.example", tag="2.0",
                    digest="sha256:gq", size_bytes=2048))
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "BACKEND_ENDPOINT": system.manager_url,
            "BACKEND_ENDPOINT_TYPE": "api"}

    def as_(ak: str, sk: str) -> dict[str, str]:
        return {**base, "BACKEND_ACCESS_KEY": ak, "BACKEND_SECRET_KEY": sk}

    admin_env = as_(h.admin_access_key, h.admin_secret_key)
    dadmin_env = as_(dadmin["keypair"]["access_key"], dadmin["keypair"]["secret_key"])
    plain_env = as_(plain["keypair"]["access_key"], plain["keypair"]["secret_key"])

    # `admin group list` (the CLI sends domain_name even without -d) and `admin group info`
    theirs = await run_ok(dadmin_env, "admin", "group", "list")
    assert project["id"] in theirs and project["name"] in theirs and other["name"] not in theirs
    everything = await run_ok(admin_env, "admin", "group", "list", "-d", domain)
    assert project["name"] in everything and other["name"] not in everything
    info = await run_ok(dadmin_env, "admin", "group", "info", project["id"])
    assert "gql project" in info and domain in info
    refused = await asyncio.to_thread(_cli, plain_env, "admin", "group", "list")
    assert refused.returncode != 0 and project["name"] not in refused.stdout

    # `admin scaling-group list` / `info`
    rgs = await run_ok(dadmin_env, "admin", "scaling-group", "list")
    assert f"gq-rg-{tag}" in rgs and "gql rg" in rgs and "default" in rgs
    rg = await run_ok(admin_env, "admin", "scaling-group", "info", f"gq-rg-{tag}")
    assert f"gq-rg-{tag}" in rg and "static" in rg
    refused = await asyncio.to_thread(_cli, plain_env, "admin", "scaling-group", "list")
    assert refused.returncode != 0 and f"gq-rg-{tag}" not in refused.stdout

    # `admin image list`: any signed-in user, as GET /images
    images = await run_ok(plain_env, "admin", "image", "list")
    assert f"cr.example/gq-img-{tag}:2.0" in images and "sha256:gq" in images
