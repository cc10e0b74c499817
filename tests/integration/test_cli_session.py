"""`workbay session …` and `workbay admin agent|resource-group|preset|image …` against a real system.

A manager and an agent run in a background thread (`workbay.lite.start_in_thread`); sessions are
real Podman containers of localhost/workbay/python:3.11 (a missing engine or image fails the module: make setup provides both).  The
CLI runs as a subprocess, exactly as a user runs it, with keypair credentials in the environment.
The agent has the machine's cores; every session here asks for one core, at most two live at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from tests.support.ports import free_port_base
from workbay import API_VERSION
from workbay.common.signing import sign_headers

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/workbay/python:3.11"
ADMIN_PASSWORD = "Cli-s3ssion!pw"
WORKBAY = [sys.executable, "-m", "workbay.client.cli_entry"]
SMALL = ["-c", "cpu=1", "-c", "mem=512m"]


class API:
    """Signed synchronous requests (fixture set-up and clean-up; the tests use the CLI)."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str) -> None:
        self.endpoint, self.ak, self.sk = endpoint, access_key, secret_key

    def __call__(self, method: str, path: str, params: dict | None = None, body: dict | None = None):
        query = urlencode(params or {})
        pq = f"{path}?{query}" if query else path
        ctype = "application/json" if body is not None else "text/plain"
        headers = sign_headers(self.ak, self.sk, method, pq, urlsplit(self.endpoint).netloc, ctype, API_VERSION)
        resp = httpx.request(method, self.endpoint + pq, headers=headers, timeout=60,
                             content=json.dumps(body).encode() if body is not None else None)
        resp.raise_for_status()
        return resp.json() if resp.content else {}


def _engine_ready() -> str | None:
    """Why the real-container tests cannot run, or None."""
    if not shutil.which("podman"):
        return "podman is not installed"
    started = subprocess.run(["bash", str(ROOT / "tools/podman_service.sh")], capture_output=True, text=True,
                             timeout=120)
    if started.returncode != 0:
        return f"no container engine: {started.stderr.strip()[-300:]}"
    if subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True).returncode != 0:
        return f"{IMAGE} is not built (make setup builds it)"
    return None


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    why = _engine_ready()
    if why:
        pytest.fail(why)
    from workbay.lite import start_in_thread

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBAY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        handle = start_in_thread(tmp_path_factory.mktemp("cli-session"), free_port_base(),
                                 components=("manager", "agent"))
    try:
        keys = httpx.post(f"{handle.manager_url}/auth/authorize", timeout=30, json={
            "type": "keypair", "domain": "default", "username": "admin@workbay.local",
            "password": ADMIN_PASSWORD}).json()["data"]
        api = API(handle.manager_url, keys["access_key"], keys["secret_key"])
        deadline = time.monotonic() + 60
        while True:  # the agent has registered and reported the image
            agents = [a for a in api("GET", "/admin/agents")["items"] if a["status"] == "ALIVE"]
            images = [i["name"] for i in api("GET", "/images", {"installed": "true"})["items"]]
            if agents and IMAGE in images:
                break
            assert time.monotonic() < deadline, f"agent/image never showed up: {agents} {images}"
            time.sleep(0.3)
        env = {**os.environ, "WORKBAY_ACCESS_KEY": keys["access_key"], "WORKBAY_SECRET_KEY": keys["secret_key"],
               "WORKBAY_ENDPOINT": handle.manager_url, "COLUMNS": "200",
               "WORKBAY_CONFIG_DIR": str(tmp_path_factory.mktemp("cli-config"))}
        env.pop("WORKBAY_PASSWORD", None)
        yield {"api": api, "env": env, "agent": agents[0]["id"]}
    finally:
        try:  # no container outlives the module
            for s in api("GET", "/sessions", {"status": "live", "all": "true", "limit": 1000})["items"]:
                api("DELETE", f"/session/{s['id']}", {"forced": "true"})
        except Exception:  # noqa: BLE001 - best effort; the system stops anyway
            pass
        handle.stop()


def cli(system, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([*WORKBAY, *args], env=system["env"], capture_output=True, text=True, timeout=timeout)


def ok(system, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    out = cli(system, *args, timeout=timeout)
    assert out.returncode == 0, f"workbay {' '.join(args)} → {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def flat(text: str) -> str:
    """Rich wraps long lines on stderr: compare with whitespace collapsed."""
    return " ".join(text.split())


def session_json(system, name: str) -> dict:
    return json.loads(ok(system, "session", "info", name, "--json").stdout)


def wait_status(system, name: str, statuses: tuple[str, ...], timeout: float = 45) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = session_json(system, name)
        if info["status"] in statuses:
            return info
        assert time.monotonic() < deadline, f"{name} is still {info['status']}"
        time.sleep(0.5)


# -- the session life cycle ----------------------------------------------------------------------
def test_create_shows_progress_and_ports_while_events_stream(system):
    events = subprocess.Popen([*WORKBAY, "session", "events", "--json", "--name", "cli-one", "--scope", "session",
                               "--max-events", "3", "--timeout", "60"], env=system["env"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert "Listening" in events.stderr.readline()  # connected before the session exists
        out = ok(system, "session", "create", "python:3.11", "--name", "cli-one", *SMALL, "--shmem", "64m",
                 "-e", "GREETING=hello world")
        assert "cli-one" in out.stdout and "RUNNING" in out.stdout
        for app in ("jupyter", "sshd"):
            assert app in out.stdout
        assert "127.0.0.1:" in out.stdout  # the host address of each service port
        progress = flat(out.stderr)
        assert progress.index("PENDING") < progress.index("RUNNING")

        lines, _ = events.communicate(timeout=30)
    finally:
        events.kill()
    received = [json.loads(line) for line in lines.splitlines()]
    assert [e["event"] for e in received] == ["session_enqueued", "session_scheduled", "session_started"]
    assert all(e["data"]["sessionName"] == "cli-one" for e in received)


def test_exec_prints_output_and_exits_with_the_run_exit_code(system):
    out = ok(system, "session", "exec", "cli-one", "print(6*7)")
    assert out.stdout == "42\n"
    out = ok(system, "session", "exec", "cli-one", "import os; print(os.environ['GREETING'])")
    assert out.stdout == "hello world\n"
    failed = cli(system, "session", "exec", "cli-one", "import sys; print('bye', file=sys.stderr); raise SystemExit(3)")
    assert failed.returncode == 3
    assert "bye" in failed.stderr


def test_exec_of_a_file_that_keeps_printing_is_continued_to_the_end(system, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(1)\n")
    out = ok(system, "session", "exec", "cli-one", "-f", str(script))
    assert out.stdout.split() == ["tick", "0", "tick", "1", "tick", "2"]


def test_ls_info_history_logs(system):
    listed = ok(system, "session", "ls")
    assert "cli-one" in listed.stdout and "RUNNING" in listed.stdout
    items = json.loads(ok(system, "session", "ls", "--json").stdout)["items"]
    assert [i["name"] for i in items] == ["cli-one"]

    info = ok(system, "session", "info", "cli-one").stdout
    for text in ("Kernels", "main1", system["agent"], "512 MiB", "64 MiB", "GREETING=hello world",
                 "resource group capacity", "Service ports"):
        assert text in info, text

    history = ok(system, "session", "history", "cli-one").stdout
    assert history.index("PENDING") < history.index("SCHEDULED") < history.index("RUNNING")

    logs = ok(system, "session", "logs", "cli-one").stdout
    assert "kernel ready" in logs
    assert "kernel ready" in ok(system, "session", "logs", "cli-one", "--kernel", "main1").stdout


def test_rename_then_rm_ends_terminated(system):
    ok(system, "session", "rename", "cli-one", "cli-renamed")
    assert "cli-renamed" in ok(system, "session", "ls").stdout
    gone = ok(system, "session", "rm", "cli-renamed")
    assert "TERMINATED" in gone.stdout
    assert "cli-renamed" not in ok(system, "session", "ls").stdout
    finished = json.loads(ok(system, "session", "ls", "--status", "finished", "--json").stdout)["items"]
    assert any(s["name"] == "cli-renamed" and s["status"] == "TERMINATED" and s["status_info"] == "user-requested"
               for s in finished)
    assert "TERMINATED" in ok(system, "session", "ls", "--status", "finished").stdout
    missing = cli(system, "session", "rm", "no-such-session")
    assert missing.returncode == 1 and "No such session" in missing.stderr


def test_batch_failure_shows_in_info(system):
    out = cli(system, "session", "create", "python:3.11", "--name", "cli-batch", "--type", "batch",
              "--startup-command", "exit 3", *SMALL, "--wait")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAILURE" in out.stdout and "exit code 3" in out.stdout
    info = ok(system, "session", "info", "cli-batch").stdout
    assert "FAILURE" in info and "TERMINATED" in info and "task-failed" in info
    data = session_json(system, "cli-batch")
    assert (data["result"], data["exit_code"]) == ("FAILURE", 3)


def test_unschedulable_agent_keeps_a_session_pending_until_it_is_on_again(system):
    agent = system["agent"]
    ok(system, "admin", "agent", "schedulable", agent, "off")
    try:
        assert "no" in ok(system, "admin", "agent", "ls").stdout
        out = ok(system, "session", "create", "python:3.11", "--name", "cli-wait", *SMALL, "--max-wait", "2")
        assert "still PENDING" in out.stdout
        assert "no schedulable" in out.stdout  # the scheduler's failed predicate, in its words
        info = ok(system, "session", "info", "cli-wait").stdout
        assert "PENDING" in info and "✗" in info
        assert "resource group capacity" in info and "no schedulable" in info
    finally:
        ok(system, "admin", "agent", "schedulable", agent, "on")
    data = wait_status(system, "cli-wait", ("RUNNING", "ERROR", "CANCELLED"))
    assert data["status"] == "RUNNING" and data["agents"] == [agent]
    ok(system, "session", "rm", "cli-wait")


# -- compute administration ----------------------------------------------------------------------
def test_admin_resource_group_create_update_delete(system):
    created = json.loads(ok(system, "admin", "resource-group", "create", "cli-rg", "--description", "CLI test",
                            "--scheduler", "drf", "--allowed-session-types", "batch", "--pending-timeout", "30",
                            "--private", "--domain", "default", "--json").stdout)
    assert created["scheduler"] == "drf" and created["allowed_session_types"] == ["batch"]
    assert created["pending_timeout"] == 30
    assert (created["is_public"], created["domains"]) == (False, ["default"])

    updated = ok(system, "admin", "resource-group", "update", "cli-rg", "--scheduler", "lifo", "--agent-selection",
                 "concentrated", "--retries-to-skip", "5", "--inactive", "--no-domains").stdout
    for text in ("lifo", "concentrated", "5"):
        assert text in updated
    data = json.loads(ok(system, "admin", "resource-group", "info", "cli-rg", "--json").stdout)
    assert (data["scheduler"], data["is_active"], data["domains"], data["retries_to_skip"]) == ("lifo", False, [], 5)
    assert "cli-rg" in ok(system, "admin", "resource-group", "ls").stdout

    ok(system, "admin", "resource-group", "delete", "cli-rg", "--yes")
    gone = cli(system, "admin", "resource-group", "info", "cli-rg")
    assert gone.returncode == 1 and "No such resource group" in gone.stderr


def test_admin_presets_refuse_shmem_above_mem(system):
    refused = cli(system, "admin", "preset", "create", "cli-big-shm", "--cpu", "1", "--mem", "1g", "--shmem", "2g")
    assert refused.returncode == 1
    assert "Shared memory cannot exceed the memory size." in flat(refused.stderr)

    made = ok(system, "admin", "preset", "create", "cli-small", "--cpu", "1", "--mem", "1g", "--shmem", "64m",
              "--slot", "cuda.shares=0.5").stdout
    assert "1 GiB" in made and "64 MiB" in made and "cuda.shares 0.5" in made
    ok(system, "admin", "preset", "update", "cli-small", "--cpu", "2")
    preset = next(p for p in json.loads(ok(system, "admin", "preset", "ls", "--json").stdout)["items"]
                  if p["name"] == "cli-small")
    assert preset["resource_slots"]["cpu"] == "2" and preset["resource_slots"]["mem"] == str(2**30)
    ok(system, "admin", "preset", "delete", "cli-small")
    assert "cli-small" not in ok(system, "admin", "preset", "ls").stdout


def test_admin_agents_images_and_usage(system):
    agents = ok(system, "admin", "agent", "ls").stdout
    assert system["agent"] in agents and "ALIVE" in agents and "GiB" in agents
    assert "Resource slots" in ok(system, "admin", "agent", "info", system["agent"]).stdout
    images = json.loads(ok(system, "admin", "image", "list", "--json").stdout)["items"]
    image = next(i for i in images if i["name"] == IMAGE)
    changed = json.loads(ok(system, "admin", "image", "set-min", "python:3.11", "cpu=1", "mem=320m", "--json").stdout)
    assert changed["min_slots"] == {"cpu": "1", "mem": str(320 * 2**20)}
    ok(system, "admin", "image", "set-min", image["id"], *(f"{k}={v}" for k, v in image["min_slots"].items()))
    assert "python:3.11" in ok(system, "admin", "image", "ls").stdout
    assert "Scanned 1 agents" in ok(system, "admin", "image", "rescan").stdout
    ok(system, "admin", "recalculate-usage")
