"""The `workbay` command against a real system: `workbay up` as a process, login, admin commands."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.ports import free_port_base
from workbay.client.sdk import Client

ADMIN_PASSWORD = "Cli-adm1n!pw"
WORKBAY = [sys.executable, "-m", "workbay.client.cli_entry"]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"workbay up exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became healthy")


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """`workbay up --demo` in a subprocess, exactly as an operator starts it."""
    data_dir = tmp_path_factory.mktemp("up")
    base = free_port_base()
    env = {**os.environ, "WORKBAY_ADMIN_PASSWORD": ADMIN_PASSWORD, "WORKBAY_DEMO_PASSWORD": "Demo-us3r!pw",
           "WORKBAY_CONFIG_DIR": str(tmp_path_factory.mktemp("cliconf")), "COLUMNS": "200"}
    proc = subprocess.Popen([*WORKBAY, "up", "--data-dir", str(data_dir), "--port-base", str(base), "--demo"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for offset in range(6):  # every component, not only the webserver
            _wait_healthy(f"http://127.0.0.1:{base + offset}/healthz", proc)
        yield {"base": base, "env": env, "data_dir": data_dir}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def cli(system, *args: str, env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*WORKBAY, *args], env=env or system["env"], capture_output=True, text=True,
                          input=input, timeout=60)


def test_every_component_answers(system):
    base = system["base"]
    assert httpx.get(f"http://127.0.0.1:{base + 1}/").json()["version"] == "v7.20230615"
    for offset in (1, 2, 3, 4, 5):
        assert httpx.get(f"http://127.0.0.1:{base + offset}/healthz").status_code == 200
    # The admin password came from the environment, so no password file was written.
    assert not (system["data_dir"] / "initial-admin-password").exists()


def test_login_then_admin_keypair_list_json_gives_a_working_keypair(system):
    base = system["base"]
    out = cli(system, "login", "--endpoint", f"http://127.0.0.1:{base}", "-u", "admin@workbay.local",
              "-p", ADMIN_PASSWORD)
    assert out.returncode == 0, out.stderr
    listed = cli(system, "admin", "keypair", "list", "--json", "--user", "admin@workbay.local")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert len(items) == 1 and items[0]["secret_key"]

    async def whoami():
        async with Client(f"http://127.0.0.1:{base + 1}", items[0]["access_key"], items[0]["secret_key"]) as c:
            return await c.get("/user/me")

    import asyncio
    assert asyncio.run(whoami())["email"] == "admin@workbay.local"

    out = cli(system, "logout")
    assert out.returncode == 0
    refused = cli(system, "admin", "keypair", "list", "--json")
    assert refused.returncode != 0 and "Not logged in" in refused.stderr


def test_keypair_mode_admin_commands(system):
    base = system["base"]
    login = httpx.post(f"http://127.0.0.1:{base + 1}/auth/authorize", json={
        "type": "keypair", "domain": "default", "username": "admin@workbay.local",
        "password": ADMIN_PASSWORD}).json()["data"]
    env = {**system["env"], "WORKBAY_ACCESS_KEY": login["access_key"],
           "WORKBAY_SECRET_KEY": login["secret_key"], "WORKBAY_ENDPOINT": f"http://127.0.0.1:{base + 1}"}

    users = json.loads(cli(system, "admin", "user", "list", "--json", env=env).stdout)
    emails = {u["email"] for u in users["items"]}
    assert {"admin@workbay.local", "user@workbay.local", "user2@workbay.local"} <= emails

    created = cli(system, "admin", "user", "create", "cli@example.com", "--username", "cliuser",
                  "--password", "Cl1-user!pw", "--json", env=env)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["keypair"]["access_key"]

    bad = cli(system, "admin", "user", "create", "weak@example.com", "--username", "weak",
              "--password", "short", env=env)
    assert bad.returncode == 1 and "Password must contain" in bad.stderr

    table = cli(system, "admin", "user", "list", "-q", "cliuser", env=env)
    assert "cli@example.com" in table.stdout and "Total 1 items" in table.stdout

    out = cli(system, "admin", "policy", "create", "keypair", "small", "--set", "max_concurrent_sessions=2",
              "--set", 'total_resource_slots={"cpu": "4"}', "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["total_resource_slots"] == {"cpu": "4"}
    kp = json.loads(cli(system, "admin", "keypair", "list", "--user", "cli@example.com", "--json", env=env).stdout)
    ak = kp["items"][0]["access_key"]
    upd = cli(system, "admin", "keypair", "update", ak, "--resource-policy", "small", "--json", env=env)
    assert json.loads(upd.stdout)["resource_policy"] == "small"
    in_use = cli(system, "admin", "policy", "delete", "keypair", "small", env=env)
    assert in_use.returncode == 1 and "cannot be deleted" in in_use.stderr

    deact = cli(system, "admin", "user", "deactivate", "cli@example.com", env=env)
    assert deact.returncode == 0
    kp = json.loads(cli(system, "admin", "keypair", "list", "--all", "--user", "cli@example.com", "--json",
                        env=env).stdout)
    assert [k["is_active"] for k in kp["items"]] == [False]


def test_first_start_generates_a_private_admin_password(tmp_path):
    base = free_port_base()
    env = {k: v for k, v in os.environ.items() if k != "WORKBAY_ADMIN_PASSWORD"}
    proc = subprocess.Popen([*WORKBAY, "up", "--data-dir", str(tmp_path), "--port-base", str(base)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_healthy(f"http://127.0.0.1:{base}/healthz", proc)
        pw_file = tmp_path / "initial-admin-password"
        assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
        password = pw_file.read_text().strip()
        r = httpx.post(f"http://127.0.0.1:{base + 1}/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": "admin@workbay.local", "password": password})
        assert r.status_code == 200 and r.json()["data"]["role"] == "superadmin"
    finally:
        proc.terminate()
        proc.wait(20)
    assert password in proc.stdout.read()  # printed once on first start


def test_bad_config_fails_loudly(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[manager]\nport = 'eighty'\nbogus = 1\n")
    out = subprocess.run([*WORKBAY, "manager", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "manager.port" in out.stderr and "manager.bogus" in out.stderr


def test_db_upgrade_creates_the_schema(tmp_path):
    cfg = tmp_path / "db.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n')
    out = subprocess.run([*WORKBAY, "db", "upgrade", "--config", str(cfg)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    import sqlite3
    tables = {r[0] for r in sqlite3.connect(tmp_path / "workbay.db").execute(
        "select name from sqlite_master where type='table'")}
    assert {"users", "keypairs", "domains", "projects", "keypair_resource_policies", "system_settings"} <= tables
