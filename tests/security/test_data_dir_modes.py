"""Finding 11 (first half): workbay.db (+ -wal, -shm) and kernel-logs/* were mode 0644 in a 0755
data dir: any local account read every keypair, 2FA seed and container's output.  A `workbay up`
(every component on one data dir, a real session whose log is saved) leaves a 0700 data dir whose
files Workbay keeps for itself are 0600 (directories 0700); an older installation's loose modes are
fixed at the next start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.sessions import IMAGE, SMALL, running_system

pytestmark = pytest.mark.timeout(300)
# Users' folders (volumes/) and what is mounted into containers (kernels/, scratch/) keep the modes
# their owners and containers need; they sit inside the 0700 data dir.
SHARED_TREES = ("volumes", "kernels", "scratch")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def loose_paths(data_dir: Path) -> list[str]:
    """Every file or directory under the data dir, outside SHARED_TREES, that others can open."""
    found = []
    for root, dirs, files in os.walk(data_dir):
        rel = Path(root).relative_to(data_dir)
        if rel.parts and rel.parts[0] in SHARED_TREES:
            dirs[:] = []
            continue
        if root == str(data_dir):
            dirs[:] = [d for d in dirs if d not in SHARED_TREES]
        for name in [*dirs, *files]:
            p = Path(root) / name
            if not p.is_symlink() and mode(p) & 0o077:
                found.append(f"{p.relative_to(data_dir)} {oct(mode(p))}")
    return found


def assert_private(data_dir: Path) -> None:
    assert mode(data_dir) == 0o700
    for name in ("workbay.db", "workbay.db-wal", "workbay.db-shm", "secrets.toml"):
        assert mode(data_dir / name) == 0o600, name
    logs = data_dir / "kernel-logs"
    assert mode(logs) == 0o700
    assert list(logs.iterdir()), "a session's saved log is expected"
    for p in logs.iterdir():
        assert mode(p) == 0o600, p
    assert loose_paths(data_dir) == []
    # The storage-proxy's own state in each volume (unfinished uploads, quotas) is private too: a
    # cluster's volumes live outside the data dir.
    metas = list((data_dir / "volumes").glob("*/.workbay"))
    assert metas, "a volume's meta dir is expected"
    for meta in metas:
        for d in (meta, meta / "uploads", meta / "quota"):
            assert mode(d) == 0o700, d


async def test_data_dir_is_private_and_older_installations_are_fixed(tmp_path):
    data_dir = tmp_path / "var"
    async with running_system(data_dir, appproxy=True, webserver=True) as sysm:
        done = await sysm.admin.post("/session", json={
            "image": IMAGE, "name": "modes", "type": "batch", "startupCommand": "echo private-output",
            "config": {"resources": SMALL}})
        info = await sysm.wait_status(sysm.admin, done["sessionId"], ("TERMINATED", "ERROR"), timeout=90)
        assert info["status"] == "TERMINATED", info
        assert "private-output" in (await sysm.admin.get(f"/session/{done['sessionId']}/logs"))["result"]["logs"]
        assert_private(data_dir)  # while running: the -wal and -shm files exist

    # An installation from before: everything readable by others.
    old_log = data_dir / "kernel-logs" / "older-kernel.log"
    old_log.write_text("output of an older kernel\n")
    for root, dirs, files in os.walk(data_dir):
        rel = Path(root).relative_to(data_dir)
        if rel.parts and rel.parts[0] in SHARED_TREES and ".workbay" not in rel.parts:
            continue
        for d in dirs:
            os.chmod(Path(root) / d, 0o755)
        for f in files:
            os.chmod(Path(root) / f, 0o644)
    os.chmod(data_dir, 0o755)
    assert loose_paths(data_dir)

    async with running_system(data_dir) as sysm:
        assert (await sysm.admin.get("/user/me"))["email"] == "admin@workbay.local"
        assert_private(data_dir)
    assert mode(old_log) == 0o600
