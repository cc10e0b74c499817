"""Storage-proxy on real directories: manager API, client file API, downloads, tus uploads."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import time
import uuid
import zipfile

import httpx
import pytest
import uvicorn

from tests.support.ports import free_port
from workbay.common.config import load_config
from workbay.storage.app import create_client_app, create_manager_app
from workbay.storage.tokens import FILES_ACTIONS, issue_token
from workbay.storage.volumes import Volumes

SECRET = "storage-secret-for-tests-" + "x" * 16
USER = str(uuid.UUID(int=0xABC))
QSID = f"user:{USER}"


class Proxy:
    def __init__(self, tmp_path):
        self.config = load_config(data_dir=tmp_path, secrets={"storage": SECRET})
        self.volumes = Volumes(self.config)
        self.client_app = create_client_app(self.config, self.volumes)
        self.manager_app = create_manager_app(self.config, self.volumes)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.client_app),
                                        base_url="http://storage")
        self.manager = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.manager_app),
                                         base_url="http://storage-mgr",
                                         headers={"X-Workbay-Secret": SECRET})

    async def folder(self, qsid: str = QSID) -> tuple[str, object]:
        vfid = uuid.uuid4().hex
        r = await self.manager.post("/folder/create", json={"volume": "local:volume1", "vfid": vfid,
                                                            "quota_scope_id": qsid})
        assert r.status_code == 201, r.text
        return vfid, self.volumes.get("volume1").folder_path(vfid)

    def token(self, op: str, vfid: str, relpath: str = "", ttl: float = 60, **extra) -> str:
        if op == "files":  # these tests use one files token for every action
            extra.setdefault("action", list(FILES_ACTIONS))
        return issue_token(SECRET, op, "local:volume1", vfid, relpath, ttl, **extra)


@pytest.fixture
async def proxy(tmp_path):
    p = Proxy(tmp_path)
    yield p
    await p.client.aclose()
    await p.manager.aclose()


async def test_roots_and_manager_secret(proxy):
    assert (await proxy.client.get("/")).json()["type"] == "client-facing"
    assert (await proxy.manager.get("/")).json()["type"] == "manager-facing"
    for headers in ({}, {"X-Workbay-Secret": "wrong"}):
        r = await proxy.manager.get("/volumes", headers={"X-Workbay-Secret": ""} | headers)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/auth-failed")
    r = await proxy.manager.get("/volumes")
    [vol] = r.json()["volumes"]
    assert vol["name"] == "volume1" and vol["host"] == "local:volume1" and vol["backend"] == "vfs"
    assert "quota" in vol["capabilities"]
    assert set(vol["usage"]) == {"used", "total", "percentage"} and vol["usage"]["total"] > 0


async def test_folder_lifecycle_usage_and_quota_api(proxy):
    vfid, path = await proxy.folder()
    assert path.parts[-3:] == ("user", USER, vfid)
    (path / "a.bin").write_bytes(b"1" * 1000)
    (path / "sub").mkdir()
    (path / "sub" / "b.bin").write_bytes(b"2" * 24)
    r = await proxy.manager.post("/folder/usage", json={"volume": "volume1", "vfid": vfid})
    assert r.json() == {"used_bytes": 1024, "file_count": 2}
    r = await proxy.manager.post("/folder/create", json={"volume": "volume1", "vfid": vfid,
                                                         "quota_scope_id": QSID})
    assert r.status_code == 400
    clone = uuid.uuid4().hex
    proj = f"project:{uuid.UUID(int=7)}"
    r = await proxy.manager.post("/folder/clone", json={"src_volume": "volume1", "src_vfid": vfid,
                                                        "dst_vfid": clone, "dst_quota_scope_id": proj})
    assert r.status_code == 201, r.text
    cpath = proxy.volumes.get("volume1").folder_path(clone)
    assert cpath.parts[-3:] == ("project", str(uuid.UUID(int=7)), clone)
    assert (cpath / "sub" / "b.bin").read_bytes() == b"2" * 24

    q = {"volume": "volume1", "quota_scope_id": QSID}
    r = await proxy.manager.get("/quota-scope", params=q)
    assert r.json()["limit_bytes"] is None and r.json()["used_bytes"] == 1024
    r = await proxy.manager.patch("/quota-scope", json=q | {"limit_bytes": 4096})
    assert r.json()["limit_bytes"] == 4096 and r.json()["used_bytes"] == 1024
    r = await proxy.manager.delete("/quota-scope", params=q)
    assert r.json()["limit_bytes"] is None
    r = await proxy.manager.get("/quota-scope", params={"volume": "volume1", "quota_scope_id": "x"})
    assert r.status_code == 400

    assert (await proxy.manager.post("/folder/delete", json={"volume": "volume1", "vfid": vfid})
            ).status_code == 204
    assert not path.exists()
    r = await proxy.manager.post("/folder/usage", json={"volume": "volume1", "vfid": vfid})
    assert r.status_code == 404 and r.json()["type"].endswith("/object-not-found")


async def test_file_operations(proxy):
    vfid, path = await proxy.folder()
    tok = proxy.token("files", vfid)
    c = proxy.client
    assert (await c.post("/files/mkdir", json={"token": tok, "path": "a/b", "parents": True})
            ).status_code == 201
    assert (await c.post("/files/mkdir", json={"token": tok, "path": "a/b"})).status_code == 400
    (path / "a" / "f.txt").write_text("hello")
    os.symlink("f.txt", path / "a" / "ln")
    r = await c.get("/files", params={"token": tok, "path": "a"})
    items = {i["name"]: i for i in r.json()["items"]}
    assert items["b"]["type"] == "DIRECTORY" and items["ln"]["type"] == "SYMLINK"
    assert items["f.txt"]["type"] == "FILE" and items["f.txt"]["size"] == 5
    assert items["f.txt"]["mode"].startswith("0o") and "created" in items["f.txt"]
    assert "modified" in items["f.txt"]

    r = await c.post("/files/rename", json={"token": tok, "target_path": "a/f.txt", "new_name": "g.txt"})
    assert r.status_code == 200 and (path / "a" / "g.txt").read_text() == "hello"
    r = await c.post("/files/rename", json={"token": tok, "target_path": "a/g.txt",
                                            "new_name": "n" * 256})
    assert r.status_code == 400
    r = await c.post("/files/move", json={"token": tok, "src": "a/g.txt", "dst": "a/b"})
    assert r.status_code == 200 and (path / "a" / "b" / "g.txt").exists()
    r = await c.post("/files/move", json={"token": tok, "src": "a", "dst": "a/b/inner"})
    assert r.status_code == 400
    r = await c.post("/files/delete", json={"token": tok, "files": ["a"]})
    assert r.status_code == 400 and (path / "a").exists()
    r = await c.request("DELETE", "/files/delete",
                        json={"token": tok, "files": ["a/ln", "a"], "recursive": True})
    assert r.status_code == 200 and list(path.iterdir()) == []
    r = await c.post("/files/delete", json={"token": tok, "files": ["nope"]})
    assert r.status_code == 404
    (path / "plain").write_text("x")
    r = await c.post("/files/mkdir", json={"token": tok, "path": "plain/sub"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")


async def test_path_escapes_are_refused(proxy, tmp_path):
    vfid, path = await proxy.folder()
    other_vfid, other = await proxy.folder()
    (other / "secret.txt").write_text("secret")
    os.symlink(other, path / "escape")
    os.symlink("/etc/passwd", path / "passwd")
    tok = proxy.token("files", vfid)
    c = proxy.client
    for bad in ("../", f"../{other_vfid}", "/etc", "escape", "escape/", "a/../../x"):
        r = await c.get("/files", params={"token": tok, "path": bad})
        assert r.status_code == 400, bad
        assert r.headers["content-type"].startswith("application/problem+json")
    for body in ({"path": "../x"}, {"path": "/tmp/x"}, {"path": "escape/new"}):
        assert (await c.post("/files/mkdir", json={"token": tok} | body)).status_code == 400
    assert (await c.post("/files/move", json={"token": tok, "src": "passwd",
                                              "dst": "../stolen"})).status_code == 400
    assert (await c.post("/files/delete", json={"token": tok, "files": ["escape/secret.txt"],
                                                "recursive": True})).status_code == 400
    assert (other / "secret.txt").exists()
    for rel in ("escape/secret.txt", "passwd", "../x", "/etc/passwd"):
        r = await c.get("/download", params={"token": proxy.token("download", vfid, rel)})
        assert r.status_code == 400, rel
    r = await c.patch("/upload", params={"token": proxy.token("upload", vfid, "escape/x", size=1)},
                      content=b"x", headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                                             "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 400 and not (other / "x").exists()


async def test_token_refusals(proxy):
    vfid, path = await proxy.folder()
    (path / "f").write_text("x")
    c = proxy.client
    r = await c.get("/files", params={"token": proxy.token("download", vfid, "f")})
    assert r.status_code == 403
    r = await c.get("/download", params={"token": proxy.token("files", vfid)})
    assert r.status_code == 403
    r = await c.get("/download", params={"token": proxy.token("download", vfid, "f", ttl=-1)})
    assert r.status_code == 401 and r.json()["type"].endswith("/auth-failed")
    forged = issue_token("another-secret" * 4, "download", "volume1", vfid, "f", 60)
    assert (await c.get("/download", params={"token": forged})).status_code == 401
    assert (await c.get("/download")).status_code == 401
    # a token only reaches its own folder: another folder id on it is another (missing) folder
    r = await c.get("/files", params={"token": proxy.token("files", uuid.uuid4().hex)})
    assert r.status_code == 404
    # a token scoped to a subdirectory cannot climb out of it
    (path / "sub").mkdir()
    sub_tok = proxy.token("files", vfid, "sub")
    assert (await c.get("/files", params={"token": sub_tok, "path": ".."})).status_code == 400
    assert (await c.get("/files", params={"token": sub_tok})).json() == {"items": []}


async def test_download_range_and_if_range(proxy):
    vfid, path = await proxy.folder()
    data = os.urandom(300_000)
    (path / "dir").mkdir()
    (path / "dir" / "données é.bin").write_bytes(data)
    tok = proxy.token("download", vfid, "dir/données é.bin")
    c = proxy.client
    r = await c.get("/download", params={"token": tok})
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-length"] == str(len(data)) and "last-modified" in r.headers
    assert "filename*=UTF-8''donn%C3%A9es%20%C3%A9.bin" in r.headers["content-disposition"]
    lm, etag = r.headers["last-modified"], r.headers["etag"]
    r = await c.get("/download", params={"token": tok}, headers={"Range": "bytes=1000-"})
    assert r.status_code == 206 and r.content == data[1000:]
    assert r.headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    assert r.headers["content-length"] == str(len(data) - 1000)
    r = await c.get("/download", params={"token": tok}, headers={"Range": "bytes=10-19", "If-Range": lm})
    assert r.status_code == 206 and r.content == data[10:20]
    r = await c.get("/download", params={"token": tok}, headers={"Range": "bytes=-5", "If-Range": etag})
    assert r.status_code == 206 and r.content == data[-5:]
    r = await c.get("/download", params={"token": tok},
                    headers={"Range": "bytes=10-", "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert r.status_code == 200 and r.content == data  # changed since: the whole file
    r = await c.get("/download", params={"token": tok}, headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    r = await c.get("/download", params={"token": proxy.token("download", vfid, "missing")})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


async def test_zip_download_of_a_directory_and_of_several_files(proxy):
    vfid, path = await proxy.folder()
    (path / "foo" / "test").mkdir(parents=True)
    (path / "foo" / "test" / "test2.txt").write_text("two")
    (path / "foo" / "test.txt").write_text("one")
    big = os.urandom(3 << 20)
    (path / "foo" / "big.bin").write_bytes(big)
    c = proxy.client
    r = await c.get("/download", params={"token": proxy.token("download", vfid, "foo")})
    assert r.status_code == 400  # a directory needs archive=true
    r = await c.get("/download", params={"token": proxy.token("download", vfid, "foo"), "archive": "true"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert 'filename="foo.zip"' in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        assert {"foo/test/test2.txt", "foo/test.txt", "foo/big.bin"} <= names
        assert zf.read("foo/test/test2.txt") == b"two" and zf.read("foo/big.bin") == big
    tok = proxy.token("download", vfid, "", relpaths=["foo/test.txt", "foo/test"])
    r = await c.get("/download", params={"token": tok, "archive": "true"})
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.read("test.txt") == b"one" and zf.read("test/test2.txt") == b"two"


TUS = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}


async def test_tus_upload_in_chunks(proxy):
    vfid, path = await proxy.folder()
    data = os.urandom(1_000_003)
    tok = proxy.token("upload", vfid, "deep/dir/file.bin", size=len(data), session="s1")
    c = proxy.client
    r = await c.options("/upload")
    assert r.headers["tus-version"] == "1.0.0" and "tus-max-size" in r.headers
    offset = 0
    for size in (300_000, 300_000, 400_003):
        r = await c.patch("/upload", params={"token": tok}, content=data[offset:offset + size],
                          headers=TUS | {"Upload-Offset": str(offset)})
        assert r.status_code == 204, r.text
        offset += size
        assert r.headers["upload-offset"] == str(offset)
        assert r.headers["upload-length"] == str(len(data)) and r.headers["tus-resumable"] == "1.0.0"
        if offset < len(data):
            assert not (path / "deep" / "dir" / "file.bin").exists()
    assert (path / "deep" / "dir" / "file.bin").read_bytes() == data
    vol = proxy.volumes.get("volume1")
    assert [p.name for p in vol.upload_dir.iterdir() if not p.name.endswith(".done")] == []
    r = await c.head("/upload", params={"token": tok})
    assert r.status_code == 200 and r.headers["upload-offset"] == str(len(data))
    # wrong offset and wrong headers
    tok2 = proxy.token("upload", vfid, "other.bin", size=10)
    r = await c.patch("/upload", params={"token": tok2}, content=b"x",
                      headers=TUS | {"Upload-Offset": "5"})
    assert r.status_code == 409 and r.headers["upload-offset"] == "0"
    r = await c.patch("/upload", params={"token": tok2}, content=b"x",
                      headers={"Content-Type": TUS["Content-Type"], "Upload-Offset": "0"})
    assert r.status_code == 412
    r = await c.patch("/upload", params={"token": tok2}, content=b"x" * 11,
                      headers=TUS | {"Upload-Offset": "0"})
    assert r.status_code == 400
    # an upload never lands on the folder itself or on a directory
    (path / "adir").mkdir()
    for rel in ("", "adir"):
        r = await c.patch("/upload", params={"token": proxy.token("upload", vfid, rel, size=1)},
                          content=b"x", headers=TUS | {"Upload-Offset": "0"})
        assert r.status_code == 400, rel
    # a new upload session to the same path replaces the file
    tok3 = proxy.token("upload", vfid, "deep/dir/file.bin", size=len(data), session="s2")
    r = await c.patch("/upload", params={"token": tok3}, content=data[::-1],
                      headers=TUS | {"Upload-Offset": "0"})
    assert r.status_code == 204 and (path / "deep" / "dir" / "file.bin").read_bytes() == data[::-1]


async def test_prepare_upload_creates_empty_files(proxy):
    vfid, path = await proxy.folder()
    r = await proxy.manager.post("/folder/file/prepare-upload",
                                 json={"volume": "volume1", "vfid": vfid, "relpath": "x/empty", "size": 0})
    assert r.status_code == 204 and (path / "x" / "empty").read_bytes() == b""
    r = await proxy.manager.post("/folder/file/prepare-upload",
                                 json={"volume": "volume1", "vfid": vfid, "relpath": "../x", "size": 0})
    assert r.status_code == 400


async def test_quota_refusal_leaves_nothing_behind(proxy):
    vfid, path = await proxy.folder()
    (path / "existing").write_bytes(b"e" * 600)
    q = {"volume": "volume1", "quota_scope_id": QSID, "limit_bytes": 1000}
    assert (await proxy.manager.put("/quota-scope", json=q)).status_code == 200
    vol = proxy.volumes.get("volume1")
    before = sorted(p.name for p in vol.upload_dir.iterdir())
    tok = proxy.token("upload", vfid, "too/big.bin", size=401)
    r = await proxy.client.patch("/upload", params={"token": tok}, content=b"z" * 401,
                                 headers=TUS | {"Upload-Offset": "0"})
    assert r.status_code == 413 and r.json()["type"].endswith("/quota-exceeded")
    assert r.headers["content-type"].startswith("application/problem+json")
    assert sorted(p.name for p in vol.upload_dir.iterdir()) == before
    assert sorted(p.name for p in path.iterdir()) == ["existing"]
    r = await proxy.manager.post("/folder/file/prepare-upload",
                                 json={"volume": "volume1", "vfid": vfid, "relpath": "b", "size": 401})
    assert r.status_code == 413
    tok = proxy.token("upload", vfid, "fits.bin", size=400)
    r = await proxy.client.patch("/upload", params={"token": tok}, content=b"z" * 400,
                                 headers=TUS | {"Upload-Offset": "0"})
    assert r.status_code == 204 and (path / "fits.bin").stat().st_size == 400
    # an unfinished upload reserves its whole size: a concurrent one that would not fit is refused
    (path / "fits.bin").unlink()
    first = proxy.token("upload", vfid, "first.bin", size=300, session="a")
    r = await proxy.client.patch("/upload", params={"token": first}, content=b"1" * 100,
                                 headers=TUS | {"Upload-Offset": "0"})
    assert r.status_code == 204 and r.headers["upload-offset"] == "100"
    second = proxy.token("upload", vfid, "second.bin", size=101, session="b")
    r = await proxy.client.patch("/upload", params={"token": second}, content=b"2" * 101,
                                 headers=TUS | {"Upload-Offset": "0"})
    assert r.status_code == 413 and not (path / "second.bin").exists()
    r = await proxy.client.patch("/upload", params={"token": first}, content=b"1" * 200,
                                 headers=TUS | {"Upload-Offset": "100"})
    assert r.status_code == 204 and (path / "first.bin").stat().st_size == 300
    assert list(vol.upload_dir.glob("*.resv")) == []
    tok = proxy.token("upload", vfid, "fits.bin", size=100)
    r = await proxy.client.patch("/upload", params={"token": tok}, content=b"z" * 100,
                                 headers=TUS | {"Upload-Offset": "0"})
    assert r.status_code == 204
    r = await proxy.manager.get("/quota-scope", params={"volume": "volume1", "quota_scope_id": QSID})
    assert r.json() == {"quota_scope_id": QSID, "supported": True, "limit_bytes": 1000,
                        "used_bytes": 1000, "file_count": 3}


async def _serve(app, port: int):
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


async def test_tus_resume_after_interruption_over_tcp(proxy):
    vfid, path = await proxy.folder()
    data = os.urandom(2 << 20)
    port = free_port()
    server, task = await _serve(proxy.client_app, port)
    try:
        tok = proxy.token("upload", vfid, "resumed.bin", size=len(data), session="r1")
        # the client dies half-way through a PATCH that announced the whole file
        half = len(data) // 2

        def interrupted() -> None:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall((f"PATCH /upload?token={tok} HTTP/1.1\r\nHost: x\r\n"
                           f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                           f"Content-Type: application/offset+octet-stream\r\n"
                           f"Content-Length: {len(data)}\r\n\r\n").encode() + data[:half])
                time.sleep(0.3)

        await asyncio.to_thread(interrupted)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            for _ in range(100):
                r = await c.head("/upload", params={"token": tok})
                if int(r.headers["upload-offset"]) == half:
                    break
                await asyncio.sleep(0.05)
            offset = int(r.headers["upload-offset"])
            assert offset == half and not (path / "resumed.bin").exists()
            r = await c.patch("/upload", params={"token": tok}, content=data[offset:],
                              headers=TUS | {"Upload-Offset": str(offset)})
            assert r.status_code == 204 and r.headers["upload-offset"] == str(len(data))
        assert (path / "resumed.bin").read_bytes() == data
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def _owner_of(path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


async def test_owner_claim_decides_who_owns_what_the_proxy_writes(proxy, tmp_path):
    """What the proxy creates for a user goes to their container uid/gid (the ``owner`` the
    manager sends); without one to ``storage.file_owner`` (1000:1000).  Needs a root proxy."""
    if os.geteuid() != 0:
        pytest.fail("these tests run the storage-proxy as root (as deployed)")
    theirs = [2000, 2001]
    vfid = uuid.uuid4().hex
    r = await proxy.manager.post("/folder/create", json={"volume": "volume1", "vfid": vfid,
                                                         "quota_scope_id": QSID, "owner": theirs})
    assert r.status_code == 201, r.text
    path = proxy.volumes.get("volume1").folder_path(vfid)
    assert _owner_of(path) == (2000, 2001)
    c = proxy.client
    # mkdir -p as the default user, then deeper as the user: only what is new changes hands
    r = await c.post("/files/mkdir", json={"token": proxy.token("files", vfid), "path": "pre"})
    assert r.status_code == 201 and _owner_of(path / "pre") == (1000, 1000)
    tok = proxy.token("files", vfid, owner=theirs)
    r = await c.post("/files/mkdir", json={"token": tok, "path": "pre/a/b", "parents": True})
    assert r.status_code == 201
    assert _owner_of(path / "pre") == (1000, 1000)
    assert _owner_of(path / "pre" / "a") == _owner_of(path / "pre" / "a" / "b") == (2000, 2001)
    # a tus upload: the file and the directories made for it
    up = proxy.token("upload", vfid, "deep/dir/file.bin", size=3, session="o1", owner=theirs)
    r = await c.patch("/upload", params={"token": up}, content=b"abc", headers=TUS | {"Upload-Offset": "0"})
    assert r.status_code == 204, r.text
    for p in (path / "deep", path / "deep" / "dir", path / "deep" / "dir" / "file.bin"):
        assert _owner_of(p) == (2000, 2001), p
    up = proxy.token("upload", vfid, "pre/plain.bin", size=1, session="o2")  # no owner claim
    assert (await c.patch("/upload", params={"token": up}, content=b"x",
                          headers=TUS | {"Upload-Offset": "0"})).status_code == 204
    assert _owner_of(path / "pre" / "plain.bin") == (1000, 1000)
    # an empty file, made at request-upload time
    r = await proxy.manager.post("/folder/file/prepare-upload", json={
        "volume": "volume1", "vfid": vfid, "relpath": "e/empty", "size": 0, "owner": theirs})
    assert r.status_code == 204
    assert _owner_of(path / "e") == _owner_of(path / "e" / "empty") == (2000, 2001)
    # a clone belongs wholly to the user who cloned it
    clone = uuid.uuid4().hex
    r = await proxy.manager.post("/folder/clone", json={
        "src_volume": "volume1", "src_vfid": vfid, "dst_vfid": clone, "dst_quota_scope_id": QSID,
        "owner": [3000, 3000]})
    assert r.status_code == 201, r.text
    cpath = proxy.volumes.get("volume1").folder_path(clone)
    assert {_owner_of(p) for p in [cpath, *cpath.rglob("*")]} == {(3000, 3000)}
    # a bad owner is refused before anything is written
    for bad in (["2000"], [-1, 5], [2**31, 1], "root", [True, 1]):
        r = await c.post("/files/mkdir", json={"token": proxy.token("files", vfid, owner=bad),
                                               "path": "never"})
        assert r.status_code == 400, bad
        r = await proxy.manager.post("/folder/create", json={
            "volume": "volume1", "vfid": uuid.uuid4().hex, "quota_scope_id": QSID, "owner": bad})
        assert r.status_code == 400, bad
    assert not (path / "never").exists()


async def test_ownership_never_leaves_the_folder(proxy, tmp_path):
    """Symlinks (a session may make any) are chowned as links, never followed; a path through a
    symlinked directory is refused, even when it was swapped in after the path was checked."""
    from workbay.storage import ownership
    from workbay.storage.errors import InvalidPath
    if os.geteuid() != 0:
        pytest.fail("these tests run the storage-proxy as root (as deployed)")
    vfid, path = await proxy.folder()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("not yours")
    os.chown(outside, 0, 0)
    os.chown(outside / "f", 0, 0)
    os.symlink(outside, path / "ln")
    os.symlink(outside / "f", path / "lnf")
    ownership.give(path, [path / "lnf"], (2000, 2000))
    assert _owner_of(path / "lnf") == (2000, 2000) and _owner_of(outside / "f") == (0, 0)
    with pytest.raises(InvalidPath):  # through the symlinked directory
        ownership.give(path, [path / "ln" / "f"], (2000, 2000))
    with pytest.raises(InvalidPath):  # outside altogether
        ownership.give(path, [outside / "f"], (2000, 2000))
    assert _owner_of(outside) == _owner_of(outside / "f") == (0, 0)
    # over the API: mkdir through the link is refused, the outside untouched
    tok = proxy.token("files", vfid, owner=[2000, 2000])
    r = await proxy.client.post("/files/mkdir", json={"token": tok, "path": "ln/x", "parents": True})
    assert r.status_code == 400
    assert sorted(p.name for p in outside.iterdir()) == ["f"] and _owner_of(outside) == (0, 0)


async def test_folder_usage_is_cached_and_follows_writes_through_the_proxy(proxy):
    vfid, path = await proxy.folder()
    other, _ = await proxy.folder()
    vol = proxy.volumes.get("volume1")
    vol.usage_cache.ttl = 3600  # sessions' own writes would show after this; not in this test
    (path / "a.bin").write_bytes(b"a" * 100)

    async def usage() -> dict:
        r = await proxy.manager.post("/folders/usage", json={"volume": "volume1",
                                                             "vfids": [vfid, other, uuid.uuid4().hex]})
        assert r.status_code == 200, r.text
        got = r.json()["usage"]
        single = (await proxy.manager.post("/folder/usage", json={"volume": "volume1", "vfid": vfid})).json()
        assert got[vfid] == single
        return got

    first = await usage()
    assert first[vfid] == {"used_bytes": 100, "file_count": 1}
    assert first[other] == {"used_bytes": 0, "file_count": 0}
    assert list(first.values())[2] is None  # not on this volume
    # a write that bypasses the proxy (a session's) does not show yet: the figure is cached
    (path / "session.bin").write_bytes(b"s" * 10)
    assert (await usage())[vfid] == {"used_bytes": 100, "file_count": 1}
    # an upload through the proxy drops the figure
    tok = proxy.token("upload", vfid, "up.bin", size=5, session="u1")
    assert (await proxy.client.patch("/upload", params={"token": tok}, content=b"u" * 5,
                                     headers=TUS | {"Upload-Offset": "0"})).status_code == 204
    assert (await usage())[vfid] == {"used_bytes": 115, "file_count": 3}
    # so does a delete, and a mkdir + rename + move (file counts do not change with these)
    ftok = proxy.token("files", vfid)
    assert (await proxy.client.post("/files/delete", json={"token": ftok, "files": ["a.bin"]})
            ).status_code == 200
    assert (await usage())[vfid] == {"used_bytes": 15, "file_count": 2}
    (path / "late.bin").write_bytes(b"l" * 7)
    assert (await proxy.client.post("/files/mkdir", json={"token": ftok, "path": "d"})).status_code == 201
    assert (await usage())[vfid] == {"used_bytes": 22, "file_count": 3}
    # bad input: 400, nothing cached changes
    for body in ({"volume": "volume1", "vfids": "abc"}, {"volume": "volume1", "vfids": [1]},
                 {"volume": "volume1"}):
        assert (await proxy.manager.post("/folders/usage", json=body)).status_code == 400


def test_usage_cache_expires_after_its_ttl():
    from workbay.storage.volumes import UsageCache
    now = [0.0]
    cache = UsageCache(ttl=30, clock=lambda: now[0])
    walks = []

    def walk():
        walks.append(1)
        return len(walks), len(walks)
    assert cache.get("f", walk) == (1, 1)
    now[0] = 29.0
    assert cache.get("f", walk) == (1, 1)
    now[0] = 30.0
    assert cache.get("f", walk) == (2, 2)
    cache.drop("f")
    assert cache.get("f", walk) == (3, 3)

    # a walk that a write overtook is answered but not kept
    def overtaken():
        cache.drop("g")
        return 9, 9
    assert cache.get("g", overtaken) == (9, 9)
    assert cache.get("g", walk) == (4, 4)


async def test_the_two_apps_of_one_proxy_share_usage_figures(tmp_path):
    """As served (lite, ``workbay storage-proxy``): both apps built from one configuration, so a
    write through the client-facing app drops the figure the manager-facing app answers with."""
    from workbay.storage.app import shared_volumes
    config = load_config(data_dir=tmp_path, secrets={"storage": SECRET})
    client_app, manager_app = create_client_app(config), create_manager_app(config)
    shared_volumes(config).get("volume1").usage_cache.ttl = 3600
    vfid = uuid.uuid4().hex
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager_app), base_url="http://m",
                                 headers={"X-Workbay-Secret": SECRET}) as mgr, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=client_app), base_url="http://c") as cli:
        assert (await mgr.post("/folder/create", json={"volume": "volume1", "vfid": vfid,
                                                       "quota_scope_id": QSID})).status_code == 201
        body = {"volume": "volume1", "vfids": [vfid]}
        assert (await mgr.post("/folders/usage", json=body)).json()["usage"][vfid]["used_bytes"] == 0
        tok = issue_token(SECRET, "upload", "volume1", vfid, "x.bin", 60, size=5, session="s")
        assert (await cli.patch("/upload", params={"token": tok}, content=b"12345",
                                headers=TUS | {"Upload-Offset": "0"})).status_code == 204
        assert (await mgr.post("/folders/usage", json=body)).json()["usage"][vfid]["used_bytes"] == 5


def test_the_usage_ttl_comes_from_the_configuration(tmp_path):
    from workbay.common.config import ConfigError, load_config
    from workbay.storage.volumes import Volumes
    config = load_config(None, data_dir=tmp_path, storage={"usage_ttl": 5, "file_owner": ""})
    assert Volumes(config).get("volume1").usage_cache.ttl == 5
    with pytest.raises(ConfigError, match="storage.usage_ttl"):
        load_config(None, data_dir=tmp_path, storage={"usage_ttl": -1})
