"""Findings 1, 2 and 4: the storage-proxy followed symlinks a session swapped in after its path
check.  A loop exchanging a directory ``d`` with a symlink ``d_alt`` (``renameat2(RENAME_EXCHANGE)``)
made ``GET /download`` of ``d/secret.txt`` return another user's file (or the root-only secrets),
and a tus upload to ``d/pwnN.txt`` land outside every folder, as root; a zero-byte upload whose
last component was a symlink created or touched the host file it pointed at.

Here the same swap runs in a thread of the test process on the folder's directory on the host
(the fast variant; test_storage_symlink_races_session.py runs it in a real session container),
against the real manager and storage-proxy (one process, as ``workbay up`` runs them).  No GET
may ever return the other folder's bytes, and nothing may be created outside the folder."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port_base
from workbay.client.sdk import APIError, Client
from workbay.lite import lite_config, start_in_thread

ADMIN_PASSWORD = "Adm1n!pass-word"
DEMO_PASSWORD = "Dem0!pass-word"
TUS = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}
AT_FDCWD = -100
RENAME_EXCHANGE = 2
SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276}

# The swapper as it runs inside a session (python3 of the kernel image): exchange ./d and ./d_alt
# until ./stop appears or the time is up; d is left a directory; the count goes to ./swaps.
SWAPPER = r'''
import ctypes, os, platform, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def swap():
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        return fn(-100, b"d", -100, b"d_alt", 2)
    return libc.syscall({"x86_64": 316, "aarch64": 276}[platform.machine()], -100, b"d", -100, b"d_alt", 2)
os.chdir(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2])
n = 0
open("swapping", "w").close()
while time.monotonic() < deadline and not os.path.exists("stop"):
    if swap() != 0:
        raise OSError(ctypes.get_errno(), "renameat2")
    n += 1
if os.path.islink("d"):
    swap()
open("swaps", "w").write(str(n))
'''


def renameat2_exchange(a: str, b: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        rc = fn(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE)
    else:
        import platform
        rc = libc.syscall(SYS_RENAMEAT2[platform.machine()], AT_FDCWD, a.encode(), AT_FDCWD,
                          b.encode(), RENAME_EXCHANGE)
    if rc != 0:
        raise OSError(ctypes.get_errno(), f"renameat2({a}, {b})")


class Swapper:
    """Exchanges ``<folder>/d`` and ``<folder>/d_alt`` in a thread until stopped (bounded)."""

    def __init__(self, folder: Path, limit: int = 2_000_000) -> None:
        self.d, self.alt = str(folder / "d"), str(folder / "d_alt")
        self.limit, self.swaps = limit, 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop_event.is_set() and self.swaps < self.limit:
            renameat2_exchange(self.d, self.alt)
            self.swaps += 1
            if self.swaps % 64 == 0:
                time.sleep(0)  # let the proxy's threads run

    def __enter__(self) -> Swapper:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(10)
        if os.path.islink(self.d):
            renameat2_exchange(self.d, self.alt)


def folder_dir(data_dir: Path, vfid: str) -> Path:
    """A folder's directory on the host (``<volume>/<scope type>/<scope id>/<vfid>``)."""
    hexid = vfid.replace("-", "")
    found = list((data_dir / "volumes").glob(f"*/*/*/{hexid}"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
async def lite(tmp_path, monkeypatch):
    """Manager and storage-proxy in one process and event loop (as ``workbay up``) with the demo
    users: (victim client, attacker client, data dir, the lite handle)."""
    monkeypatch.setenv("WORKBAY_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("WORKBAY_DEMO_PASSWORD", DEMO_PASSWORD)
    data_dir = tmp_path / "var"
    config = lite_config(data_dir, free_port_base())
    handle = start_in_thread(data_dir, 0, demo=True, components=("manager", "storage-proxy"),
                             config=config)
    clients: list[Client] = []

    async def login(email: str, password: str) -> Client:
        anon = Client(handle.manager_url)
        clients.append(anon)
        data = (await anon.post("/auth/authorize", json={
            "type": "keypair", "domain": "default", "username": email, "password": password}))["data"]
        c = Client(handle.manager_url, data["access_key"], data["secret_key"])
        clients.append(c)
        return c

    try:
        victim = await login("user2@workbay.local", DEMO_PASSWORD)
        attacker = await login("user@workbay.local", DEMO_PASSWORD)
        yield victim, attacker, data_dir, handle
    finally:
        for c in clients:
            await c.close()
        handle.stop()


async def make_folder(client: Client, name: str, data_dir: Path) -> Path:
    created = await client.post("/folders", json={"name": name})
    return folder_dir(data_dir, created["id"])


async def test_download_never_follows_a_swapped_symlink(lite):
    victim, attacker, data_dir, _ = lite
    theirs = await make_folder(victim, "theirs", data_dir)
    (theirs / "secret.txt").write_bytes(b"OTHER USER'S SECRET\n")
    mine = await make_folder(attacker, "mine", data_dir)
    (mine / "d").mkdir()
    (mine / "d" / "secret.txt").write_bytes(b"mine\n")
    os.symlink(theirs, mine / "d_alt")

    r = await attacker.post("/folders/mine/request-download", json={"path": "d/secret.txt"})
    answers: dict[int, int] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        with Swapper(mine) as swapper:
            for _ in range(300):
                resp = await http.get(r["url"], params={"token": r["token"]})
                assert b"OTHER" not in resp.content, "the proxy followed the swapped symlink"
                assert resp.status_code == 200 and resp.content == b"mine\n" or \
                    400 <= resp.status_code < 500, (resp.status_code, resp.text)
                answers[resp.status_code] = answers.get(resp.status_code, 0) + 1
    assert swapper.swaps > 0
    assert answers.get(200, 0) + sum(n for s, n in answers.items() if s >= 400) == 300


async def test_upload_never_lands_behind_a_swapped_symlink(lite):
    victim, attacker, data_dir, _ = lite
    theirs = await make_folder(victim, "theirs", data_dir)
    mine = await make_folder(attacker, "mine", data_dir)
    (mine / "d").mkdir()
    os.symlink(theirs, mine / "d_alt")

    async with httpx.AsyncClient(timeout=30) as http:
        with Swapper(mine) as swapper:
            for i in range(30):
                try:
                    r = await attacker.post("/folders/mine/request-upload",
                                            json={"path": f"d/pwn{i}.txt", "size": 4})
                except APIError as e:  # refused at request time (d was the link): fine
                    assert 400 <= e.status < 500, e
                    continue
                resp = await http.patch(r["url"], params={"token": r["token"]}, content=b"pwn!",
                                        headers={**TUS, "Upload-Offset": "0"})
                assert resp.status_code == 204 or 400 <= resp.status_code < 500, resp.text
    assert swapper.swaps > 0
    assert not [p.name for p in theirs.iterdir()], "an upload was written into another folder"
    placed = sorted(p.name for p in (mine / "d").iterdir())
    assert all(name.startswith("pwn") for name in placed)


async def test_zero_byte_upload_does_not_create_or_touch_through_a_link(lite, tmp_path):
    _, attacker, data_dir, _ = lite
    mine = await make_folder(attacker, "mine", data_dir)
    host = tmp_path / "host"
    host.mkdir()
    existing = host / "existing.conf"
    existing.write_bytes(b"keep me")
    old = time.time() - 3600
    os.utime(existing, (old, old))
    os.symlink(existing, mine / "touch_me")
    os.symlink(host / "created.txt", mine / "create_me")
    os.symlink(host, mine / "dir_link")

    for path in ("touch_me", "create_me"):
        await attacker.post("/folders/mine/request-upload", json={"path": path, "size": 0})
    with pytest.raises(APIError) as e:
        await attacker.post("/folders/mine/request-upload", json={"path": "dir_link/new.txt", "size": 0})
    assert 400 <= e.value.status < 500
    assert sorted(p.name for p in host.iterdir()) == ["existing.conf"]
    assert existing.read_bytes() == b"keep me" and int(existing.stat().st_mtime) == int(old)
    for path in ("touch_me", "create_me"):  # the link itself was replaced by an empty file
        assert not os.path.islink(mine / path) and (mine / path).read_bytes() == b""
