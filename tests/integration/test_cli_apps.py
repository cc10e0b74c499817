"""`workbay app|ssh|scp` and `workbay session download` against a real system: `workbay up --demo`
as a process (every component, the app-proxy included), the CLI as a subprocess logged in through
the webserver as the demo users, one real session (localhost/workbay/python:3.11) with a storage
folder mounted.  SSH goes to the session's sshd through the app-proxy's TCP-over-WebSocket tunnel."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_cli_session import _engine_ready
from tests.support.ports import free_port_base

pytestmark = pytest.mark.timeout(300)
ADMIN_PASSWORD = "Apps-adm1n!pw"
DEMO_PASSWORD = "Apps-dem0!pw"
WORKBAY = [sys.executable, "-m", "workbay.client.cli_entry"]
SESSION = "cli-apps"
FOLDER = "scpdata"
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """`workbay up --demo`; user@ and user2@ logged in (own config dirs); user@ has a folder and a
    running session that mounts it."""
    why = _engine_ready()
    if why:
        pytest.fail(why)
    env = {**os.environ, "WORKBAY_ADMIN_PASSWORD": ADMIN_PASSWORD, "WORKBAY_DEMO_PASSWORD": DEMO_PASSWORD,
           "COLUMNS": "200"}
    for key in ("WORKBAY_ACCESS_KEY", "WORKBAY_SECRET_KEY", "WORKBAY_ENDPOINT", "WORKBAY_PASSWORD"):
        env.pop(key, None)
    for attempt in range(3):  # a port of the window may be taken between the probe and the bind
        data_dir = tmp_path_factory.mktemp("up")
        base = free_port_base()
        log = open(data_dir / "up.log", "w")
        proc = subprocess.Popen([*WORKBAY, "up", "--data-dir", str(data_dir), "--port-base", str(base), "--demo"],
                                env={**env, "WORKBAY_CONFIG_DIR": str(tmp_path_factory.mktemp("upconf"))},
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        if _wait_up(base, proc):
            break
        log.close()
        if attempt == 2:
            pytest.fail(f"workbay up exited early:\n{(data_dir / 'up.log').read_text()[-3000:]}")
    users = {}
    try:
        for who, email in (("user", "user@workbay.local"), ("user2", "user2@workbay.local")):
            uenv = {**env, "WORKBAY_CONFIG_DIR": str(tmp_path_factory.mktemp(f"{who}-conf")),
                    "XDG_CACHE_HOME": str(tmp_path_factory.mktemp(f"{who}-cache"))}
            out = subprocess.run([*WORKBAY, "login", "--endpoint", f"http://127.0.0.1:{base}", "-u", email,
                                  "-p", DEMO_PASSWORD], env=uenv, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            users[who] = uenv
        sysm = {"base": base, "data_dir": data_dir, **users}
        ok(sysm, "vfolder", "create", FOLDER)
        deadline = time.monotonic() + 90
        while True:  # the agent registers and reports its images a moment after start
            out = cli(sysm, "session", "create", "python:3.11", "--name", SESSION, "-c", "cpu=1",
                      "-c", "mem=768m", "--mount", FOLDER, timeout=240)
            if out.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert out.returncode == 0 and "RUNNING" in out.stdout, f"{out.stdout}\n{out.stderr}"
        sysm["session_id"] = json.loads(ok(sysm, "session", "info", SESSION, "--json").stdout)["id"]
        yield sysm
    finally:
        if users:
            cli({"user": users["user"]}, "session", "rm", "-f", SESSION, timeout=120)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_up(base: int, proc: subprocess.Popen, timeout: float = 90) -> bool:
    """Every component answers /healthz (True), or `workbay up` exited (False)."""
    deadline = time.monotonic() + timeout
    for offset in range(6):
        while True:
            if proc.poll() is not None:
                return False
            try:
                if httpx.get(f"http://127.0.0.1:{base + offset}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"component on port {base + offset} never became healthy")
            time.sleep(0.2)
    return True


def cli(system, *args: str, who: str = "user", timeout: float = 120, cwd: Path | None = None
        ) -> subprocess.CompletedProcess:
    return subprocess.run([*WORKBAY, *args], env=system[who], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, stdin=subprocess.DEVNULL)


def ok(system, *args: str, **kw) -> subprocess.CompletedProcess:
    out = cli(system, *args, **kw)
    assert out.returncode == 0, f"workbay {' '.join(args)} → {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Background:
    """`workbay app …` running until stopped with Ctrl+C (SIGINT)."""

    def __init__(self, system, *args: str) -> None:
        self.proc = subprocess.Popen([*WORKBAY, *args], env=system["user"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def wait_line(self, needle: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if needle in line:
                return line
        self.proc.kill()
        pytest.fail(f"`workbay app` never printed {needle!r}: {''.join(lines)}{self.proc.stderr.read()}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def key(system, tmp_path_factory) -> str:
    out_dir = tmp_path_factory.mktemp("key")
    ok(system, "session", "download", SESSION, "id_container", "-o", str(out_dir))
    return str(out_dir / "id_container")


def test_session_download_writes_id_container_and_directories(system, key, tmp_path):
    path = Path(key)
    assert "PRIVATE KEY" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # ssh refuses keys others can read
    # several files at once, an absolute path, and a directory (its tree, extracted)
    ok(system, "session", "exec", SESSION, "import os; os.makedirs('tree/sub', exist_ok=True); "
       "open('tree/sub/f.txt', 'w').write('deep')")
    ok(system, "session", "download", SESSION, "/etc/hostname", "tree", "-o", str(tmp_path / "out"))
    assert (tmp_path / "out" / "hostname").read_text().strip()
    assert (tmp_path / "out" / "tree" / "sub" / "f.txt").read_text() == "deep"
    missing = cli(system, "session", "download", SESSION, "/no/such/file", "-o", str(tmp_path))
    assert missing.returncode == 1 and "Error" in missing.stderr


def test_app_sshd_on_a_chosen_port_works_with_plain_ssh(system, key):
    port = free_port()
    app = Background(system, "app", SESSION, "sshd", "-b", f"127.0.0.1:{port}")
    try:
        line = app.wait_line("is at")
        assert f"127.0.0.1:{port}" in line
        assert f"ssh -p {port}" in app.wait_line("Connect with")
        for word in ("ok", "again"):  # each connection gets its own tunnel
            out = subprocess.run(["ssh", *SSH_OPTS, "-p", str(port), "-i", key, "work@127.0.0.1", f"echo {word}"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and out.stdout.strip() == word, out.stderr
    finally:
        assert app.stop() == 0  # Ctrl+C ends it without an error


def test_app_jupyter_is_a_plain_local_http_endpoint(system):
    app = Background(system, "app", SESSION, "jupyter")
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", app.wait_line("is at")).group(0)
        resp = httpx.get(url + "api/status", timeout=60)
        assert resp.status_code == 200 and "started" in resp.json()
    finally:
        app.stop()


def test_ssh_runs_a_command_and_returns_its_exit_code(system):
    out = ok(system, "ssh", SESSION, "--", "echo $((6*7))")
    assert out.stdout.strip() == "42"
    failed = cli(system, "ssh", SESSION, "--", "exit 3")
    assert failed.returncode == 3
    # leading options go to ssh itself (before the destination), the rest is the command
    opts = ok(system, "ssh", SESSION, "--", "-o", "ServerAliveInterval=5", "-T", "echo", "opts-ok")
    assert opts.stdout.strip() == "opts-ok"
    leftovers = [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("workbay-ssh-*")]
    assert not any((p / "id_container").exists() for p in leftovers)


def test_another_user_is_refused(system, tmp_path):
    sid = system["session_id"]
    for args in (("app", sid, "sshd"), ("ssh", sid, "--", "true"), ("scp", sid, "x", ":y"),
                 ("session", "download", sid, "id_container", "-o", str(tmp_path))):
        out = cli(system, *args, who="user2", timeout=60)
        assert out.returncode != 0, args
        text = " ".join(out.stderr.split())
        assert "Error" in text and ("not yours" in text or "no such session" in text.lower()), (args, text)
        assert "Traceback" not in text
    assert not (tmp_path / "id_container").exists()


def test_scp_into_a_mounted_folder_persists_after_the_session(system, tmp_path):
    local = tmp_path / "local.txt"
    payload = os.urandom(300_000)
    local.write_bytes(payload)
    ok(system, "scp", SESSION, str(local), f":/home/work/{FOLDER}/", cwd=tmp_path)
    ok(system, "scp", SESSION, f":/home/work/{FOLDER}/local.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_bytes() == payload
    batch = tmp_path / "batch"
    batch.write_text(f"put {local} /home/work/{FOLDER}/via-sftp.txt\n")
    ok(system, "sftp", SESSION, "-b", str(batch))
    usage = cli(system, "scp", SESSION, "a", "b")
    assert usage.returncode == 2 and "leading colon" in usage.stderr

    ok(system, "session", "rm", SESSION, timeout=180)
    out_dir = tmp_path / "after"
    ok(system, "vfolder", "download", FOLDER, "local.txt", "via-sftp.txt", "-o", str(out_dir))
    assert (out_dir / "local.txt").read_bytes() == payload
    assert (out_dir / "via-sftp.txt").read_bytes() == payload
