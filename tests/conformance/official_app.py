"""The official client's ``backend.ai app SESSION sshd -b 127.0.0.1:PORT`` carrying a real ssh
login, shared by the API-mode and session-mode stream tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from pathlib import Path

from tests.support.sessions import wait_for

ROOT = Path(__file__).resolve().parents[2]
BAI_BIN = ROOT / ".venv-bai" / "bin"
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR"]


async def ssh_through_app_command(user, sid: str, name: str, env: dict[str, str], tmp_path: Path) -> list[str]:
    """Download the session's id_container, run ``backend.ai app NAME sshd`` on a free local port
    with ``env``, and ssh through it; the remote command's output lines."""
    key_file = tmp_path / "id_container"
    resp = await user.request("GET", f"/session/{sid}/download_single", params={"file": "id_container"}, raw=True)
    key_file.write_bytes(resp.content)
    key_file.chmod(0o600)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cli = subprocess.Popen([str(BAI_BIN / "backend.ai"), "app", name, "sshd", "-b", f"127.0.0.1:{port}"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        async def listening() -> bool:
            if cli.poll() is not None:
                raise AssertionError(f"backend.ai app exited: {cli.stdout.read().decode()[-2000:]}")
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            w.close()
            return True
        await wait_for(listening, 60, "the CLI's local proxy listens")
        ran = await asyncio.to_thread(subprocess.run, [
            "ssh", *SSH_OPTS, "-i", str(key_file), "-p", str(port), "work@127.0.0.1", "echo $((6*7)); hostname"],
            capture_output=True, text=True, timeout=90)
        assert ran.returncode == 0, ran.stderr
        return ran.stdout.splitlines()
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGTERM)
            try:
                cli.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(cli.pid, signal.SIGKILL)
                cli.wait(timeout=20)
