"""Backend.AI's official client (23.9.10, its own venv) drives Workbay's folders: create, list,
upload a directory tree through tus, list files, download, mkdir/rename/move/delete files,
invite and accept, rename and delete — against a real manager and storage-proxy."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.conformance.test_backendai_client import BAI_PYTHON
from tests.support.sessions import System

SCRIPT = r'''
import asyncio, json, os, sys
from pathlib import Path
from ai.backend.client.config import APIConfig
from ai.backend.client.exceptions import BackendAPIError
from ai.backend.client.session import AsyncSession
from ai.backend.client.func.vfolder import VFolder

EP, AK, SK, AK2, SK2, SRC, DST = (os.environ[k] for k in ("EP", "AK", "SK", "AK2", "SK2", "SRC", "DST"))


def config(ak, sk):
    return APIConfig(endpoint=EP, endpoint_type="api", access_key=ak, secret_key=sk)


async def main():
    out = {}
    async with AsyncSession(config=config(AK, SK)):
        out["hosts"] = await VFolder.list_hosts()
        out["created"] = await VFolder.create("conf-data")
        out["listed"] = [f["name"] for f in await VFolder.list()]
        vf = VFolder("conf-data")
        await vf.upload(["foo"], basedir=SRC, recursive=True)
        out["files"] = sorted(f["filename"] for f in json.loads((await vf.list_files("foo"))["files"]))
        await vf.download(["foo/test/test2.txt"], basedir=DST)
        await vf.mkdir("made")
        await vf.rename_file("foo/test.txt", "renamed.txt")
        await vf.move_file("foo/renamed.txt", "made/renamed.txt")
        out["made"] = [f["filename"] for f in json.loads((await vf.list_files("made"))["files"])]
        await vf.delete_files(["made"], recursive=True)
        out["root"] = sorted(f["filename"] for f in json.loads((await vf.list_files("."))["files"]))
        out["info"] = (await vf.info())["name"]
        out["invited"] = await vf.invite("ro", ["user2@workbay.local"])
    async with AsyncSession(config=config(AK2, SK2)):
        invs = (await VFolder.invitations())["invitations"]
        out["invitations"] = [i["vfolder_name"] for i in invs]
        await VFolder.accept_invitation(invs[0]["id"])
        out["shared_perm"] = {f["name"]: f["permission"] for f in await VFolder.list()}.get("conf-data")
        try:
            await VFolder("conf-data").mkdir("nope")
        except BackendAPIError as e:
            out["ro_mkdir"] = e.status
    async with AsyncSession(config=config(AK, SK)):
        await VFolder("conf-data").rename("conf-renamed")
        await VFolder("conf-renamed").delete()
        out["after_delete"] = {f["name"]: f["status"] for f in await VFolder.list()}
    print(json.dumps(out))


asyncio.run(main())
'''


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    sysm = System(tmp_path_factory.mktemp("conf-folders"))
    try:
        await sysm.start(agent=False)
        yield sysm
    finally:
        await sysm.close()


async def test_official_client_uses_folders(system, tmp_path):
    assert BAI_PYTHON.exists(), f"{BAI_PYTHON} is missing (make setup installs the official client)"
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "foo" / "test").mkdir(parents=True)
    (dst / "foo" / "test").mkdir(parents=True)
    payload = os.urandom(70_000)
    (src / "foo" / "test" / "test2.txt").write_bytes(payload)
    (src / "foo" / "test.txt").write_text("hello\n")
    creds = {}
    for key, email in (("", "user@workbay.local"), ("2", "user2@workbay.local")):
        c = await system.login(email)
        creds[f"AK{key}"], creds[f"SK{key}"] = c.access_key, c.secret_key
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "EP": system.url,
           "SRC": str(src), "DST": str(dst), **creds}
    proc = await asyncio.create_subprocess_exec(str(BAI_PYTHON), "-c", SCRIPT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()[-3000:]
    got = json.loads(out.decode().strip().splitlines()[-1])
    assert got["hosts"]["default"] == "local:volume1" and "local:volume1" in got["hosts"]["allowed"]
    assert got["created"]["name"] == "conf-data" and len(got["created"]["id"]) == 32
    assert "conf-data" in got["listed"]
    assert got["files"] == ["test", "test.txt"]
    downloaded = Path(dst, "foo/test/test2.txt").read_bytes()
    assert hashlib.sha256(downloaded).digest() == hashlib.sha256(payload).digest()
    assert got["made"] == ["renamed.txt"]
    assert got["root"] == ["foo"]
    assert got["info"] == "conf-data"
    assert got["invited"] == {"invited_ids": ["user2@workbay.local"]}
    assert got["invitations"] == ["conf-data"] and got["shared_perm"] == "ro"
    assert got["ro_mkdir"] == 403
    assert got["after_delete"] == {"conf-renamed": "delete-pending"}
