"""The CLI's transfer engine: path mapping, chunk planning, the resume state file, and tus uploads /
Range downloads against the real storage-proxy client app (in process)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from workbay.client import transfer
from workbay.client.transfer import StateFile, UploadItem, normalize_remote, plan_chunks, plan_upload, remote_join
from workbay.common.config import load_config
from workbay.storage.app import create_client_app, create_manager_app
from workbay.storage.tokens import issue_token
from workbay.storage.volumes import Volumes

MiB = 1 << 20


# -- remote paths ----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, want", [
    ("a/b.txt", "a/b.txt"), ("/a//b/./c/", "a/b/c"), ("./x", "x"), ("한글/파일.txt", "한글/파일.txt"),
])
def test_normalize_remote(raw, want):
    assert normalize_remote(raw) == want


@pytest.mark.parametrize("raw", ["../x", "a/../../b", "a/..", "..", "a\\b", "a\0b"])
def test_normalize_remote_refuses_escapes(raw):
    with pytest.raises(ValueError):
        normalize_remote(raw, allow_root=True)


def test_root_only_when_allowed():
    assert normalize_remote("/", allow_root=True) == ""
    assert normalize_remote("", allow_root=True) == ""
    with pytest.raises(ValueError):
        normalize_remote("/")
    assert remote_join("", "a", "", "b/c") == "a/b/c"


# -- planning --------------------------------------------------------------------------------------
def _tree(root: Path) -> Path:
    foo = root / "foo"
    (foo / "test").mkdir(parents=True)
    (foo / "test.txt").write_text("hello")
    (foo / "test" / "test2.txt").write_text("world!")
    (foo / "empty").mkdir()
    (foo / "zero").write_bytes(b"")
    return foo


def test_plan_upload_keeps_directory_structure(tmp_path):
    foo = _tree(tmp_path)
    single = tmp_path / "single.bin"
    single.write_bytes(b"x" * 10)
    plan = plan_upload([foo, single])
    assert [f.remote for f in plan.files] == ["foo/test.txt", "foo/zero", "foo/test/test2.txt", "single.bin"]
    assert [f.size for f in plan.files] == [5, 0, 6, 10] and plan.total_bytes == 21
    assert plan.empty_dirs == ["foo/empty"]
    assert plan.files[0].local == foo / "test.txt"
    assert plan.files[0].mtime_ns == (foo / "test.txt").stat().st_mtime_ns


def test_plan_upload_base_dir_and_relative_sources(tmp_path, monkeypatch):
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path / "foo")
    plan = plan_upload(["test.txt", "test", "."], base_dir="/data/in/")
    remotes = [f.remote for f in plan.files]
    assert remotes[:2] == ["data/in/test.txt", "data/in/test/test2.txt"]
    assert "data/in/foo/test/test2.txt" in remotes  # "." is the directory's own name


@pytest.mark.parametrize("base", ["..", "a/../..", "../up", "x/.."])
def test_plan_upload_refuses_dotdot_base(tmp_path, base):
    _tree(tmp_path)
    with pytest.raises(ValueError, match=r"\.\."):
        plan_upload([tmp_path / "foo"], base_dir=base)


def test_plan_upload_refuses_collisions_and_missing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "same.txt").write_text("1")
    (tmp_path / "b" / "same.txt").write_text("2")
    with pytest.raises(ValueError, match="both"):
        plan_upload([tmp_path / "a" / "same.txt", tmp_path / "b" / "same.txt"])
    with pytest.raises(FileNotFoundError):
        plan_upload([tmp_path / "nope"])


def test_plan_upload_does_not_follow_directory_links(tmp_path):
    foo = _tree(tmp_path)
    (foo / "loop").symlink_to(foo, target_is_directory=True)
    (foo / "link.txt").symlink_to(foo / "test.txt")
    remotes = [f.remote for f in plan_upload([foo]).files]
    assert "foo/link.txt" in remotes and not any(r.startswith("foo/loop") for r in remotes)


@pytest.mark.parametrize("size, offset, chunk, stop, want", [
    (0, 0, 16, None, []),
    (10, 0, 16, None, [(0, 10)]),
    (32, 0, 16, None, [(0, 16), (16, 16)]),
    (33, 0, 16, None, [(0, 16), (16, 16), (32, 1)]),
    (33, 20, 16, None, [(20, 13)]),
    (33, 33, 16, None, []),
    (40, 0, 16, 20, [(0, 16), (16, 4)]),
    (40, 24, 16, 20, []),
])
def test_plan_chunks(size, offset, chunk, stop, want):
    assert plan_chunks(size, offset, chunk, stop) == want


def test_plan_chunks_covers_every_byte_once():
    for size in (1, 7, 16 * MiB, 16 * MiB + 1, 50 * MiB + 3):
        for offset in (0, 1, size // 2, size):
            chunks = plan_chunks(size, offset, 16 * MiB)
            assert sum(n for _, n in chunks) == size - offset
            assert all(n <= 16 * MiB for _, n in chunks)
            assert all(a + n == b for (a, n), (b, _) in zip(chunks, chunks[1:], strict=False))
    with pytest.raises(ValueError):
        plan_chunks(10, 11)
    with pytest.raises(ValueError):
        plan_chunks(10, 0, 0)


# -- state file ------------------------------------------------------------------------------------
def test_state_file_roundtrip_expiry_and_corruption(tmp_path):
    state = StateFile(tmp_path / "c" / "uploads.json")
    assert state.get("k") is None
    state.put("k", session="abc")
    state.put("other", session="def")
    assert state.get("k")["session"] == "abc"
    assert os.stat(state.path).st_mode & 0o777 == 0o600
    state.delete("k")
    assert state.get("k") is None and state.get("other")["session"] == "def"
    # old entries are forgotten (the storage-proxy drops idle uploads after a day)
    data = json.loads(state.path.read_text())
    data["other"]["updated"] = time.time() - 2 * transfer.STATE_MAX_AGE
    state.path.write_text(json.dumps(data))
    assert state.get("other") is None
    state.path.write_text("{not json")
    assert state.entries() == {}
    state.put("again", session="x")
    assert set(state.entries()) == {"again"}


def test_state_files_live_in_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert transfer.upload_state().path == tmp_path / "workbay" / "uploads.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert transfer.cache_dir() == tmp_path / "home" / ".cache" / "workbay"


def test_upload_key_changes_with_the_file():
    a = transfer.upload_key("f", "x/y", 10, 1)
    assert a == transfer.upload_key("f", "x/y", 10, 1)
    assert len({a, transfer.upload_key("f", "x/y", 11, 1), transfer.upload_key("f", "x/y", 10, 2),
                transfer.upload_key("g", "x/y", 10, 1), transfer.upload_key("f", "x/z", 10, 1)}) == 5


# -- against the storage-proxy's client app --------------------------------------------------------
SECRET = "transfer-tests-secret-" + "y" * 20
QSID = f"user:{uuid.UUID(int=0xBEEF)}"


class Storage:
    """The storage-proxy apps in process; ``grant`` plays the manager's request-upload."""

    def __init__(self, tmp_path: Path) -> None:
        self.config = load_config(data_dir=tmp_path / "data", secrets={"storage": SECRET})
        self.volumes = Volumes(self.config)
        self.app = create_client_app(self.config, self.volumes)
        self.manager = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_manager_app(self.config, self.volumes)),
                                         base_url="http://mgr", headers={"X-Workbay-Secret": SECRET})
        self.requests: list[httpx.Request] = []
        inner = httpx.ASGITransport(app=self.app)
        outer = self

        class Recording(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request):
                outer.requests.append(request)
                return await inner.handle_async_request(request)

        self.http = httpx.AsyncClient(transport=Recording())
        self.grants: list[tuple[str, int, str | None]] = []
        self.vfid = ""

    async def folder(self) -> Path:
        self.vfid = uuid.uuid4().hex
        r = await self.manager.post("/folder/create", json={"volume": "volume1", "vfid": self.vfid,
                                                            "quota_scope_id": QSID})
        assert r.status_code == 201, r.text
        return self.volumes.get("volume1").folder_path(self.vfid)

    async def grant(self, path: str, size: int, session: str | None) -> dict:
        self.grants.append((path, size, session))
        session = session or uuid.uuid4().hex
        r = await self.manager.post("/folder/file/prepare-upload", json={
            "volume": "volume1", "vfid": self.vfid, "relpath": path, "size": size})
        assert r.status_code == 204, r.text
        token = issue_token(SECRET, "upload", "volume1", self.vfid, path, 60, size=size, session=session)
        return {"token": token, "url": "http://storage/upload", "session": session}

    def download_token(self, path: str) -> str:
        return issue_token(SECRET, "download", "volume1", self.vfid, path, 60)

    def patches(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "PATCH"]


@pytest.fixture
async def storage(tmp_path):
    s = Storage(tmp_path)
    yield s
    await s.http.aclose()
    await s.manager.aclose()


class Recorder(transfer.Reporter):
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.bytes = 0

    def file_started(self, name, total, offset):
        self.events.append(("start", name, total, offset))
        self.bytes = offset

    def advance(self, name, n):
        self.bytes += n

    def file_done(self, name, size):
        self.events.append(("done", name, size))

    def note(self, text):
        self.events.append(("note", text))


def _item(path: Path, remote: str) -> UploadItem:
    st = path.stat()
    return UploadItem(path, remote, st.st_size, st.st_mtime_ns)


async def test_upload_in_chunks_and_resume_from_the_state_file(storage, tmp_path):
    folder = await storage.folder()
    data = os.urandom(5 * MiB + 123)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    item = _item(local, "dir/big.bin")
    state = StateFile(tmp_path / "cache" / "uploads.json")

    # first run: stopped after two of the six 1 MiB chunks
    rec = Recorder()
    with pytest.raises(transfer.UploadInterrupted) as stopped:
        await transfer.upload_item(storage.http, storage.grant, "f", item, state=state, reporter=rec,
                                   chunk_size=MiB, stop_after=2 * MiB)
    assert stopped.value.offset == 2 * MiB and stopped.value.remote == "dir/big.bin"
    assert [int(r.headers["upload-offset"]) for r in storage.patches()] == [0, MiB]
    for r in storage.patches():
        assert r.headers["tus-resumable"] == "1.0.0"
        assert r.headers["content-type"] == "application/offset+octet-stream"
        assert r.headers["content-length"] == str(MiB) and "transfer-encoding" not in r.headers
    assert not (folder / "dir" / "big.bin").exists()
    [(key, entry)] = state.entries().items()
    session = entry["session"]
    assert json.loads(key) == ["f", "dir/big.bin", len(data), item.mtime_ns]

    # second run: the stored session is asked for again, HEAD says where to go on
    storage.requests.clear()
    rec = Recorder()
    resumed_at = await transfer.upload_item(storage.http, storage.grant, "f", item, state=state, reporter=rec,
                                            chunk_size=MiB)
    assert resumed_at == 2 * MiB
    assert storage.grants[-1] == ("dir/big.bin", len(data), session)
    assert storage.requests[0].method == "HEAD"
    assert [int(r.headers["upload-offset"]) for r in storage.patches()] == [2 * MiB, 3 * MiB, 4 * MiB, 5 * MiB]
    assert ("note", f"Resuming dir/big.bin at {2 * MiB} of {len(data)} bytes") in rec.events
    assert rec.bytes == len(data)
    assert hashlib.sha256((folder / "dir" / "big.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
    assert state.entries() == {}


async def test_a_changed_file_starts_over(storage, tmp_path):
    await storage.folder()
    local = tmp_path / "f.bin"
    local.write_bytes(b"a" * 3000)
    state = StateFile(tmp_path / "s.json")
    with pytest.raises(transfer.UploadInterrupted):
        await transfer.upload_item(storage.http, storage.grant, "f", _item(local, "f.bin"), state=state,
                                   chunk_size=1000, stop_after=1000)
    local.write_bytes(b"b" * 3001)
    assert await transfer.upload_item(storage.http, storage.grant, "f", _item(local, "f.bin"), state=state,
                                      chunk_size=1000) == 0
    assert storage.grants[-1][2] is None  # a new session, not the old one


async def test_zero_byte_files_are_never_patched(storage, tmp_path):
    folder = await storage.folder()
    local = tmp_path / "empty"
    local.write_bytes(b"")
    rec = Recorder()
    assert await transfer.upload_item(storage.http, storage.grant, "f", _item(local, "a/empty"),
                                      state=StateFile(tmp_path / "s.json"), reporter=rec) == 0
    assert storage.requests == [] and (folder / "a" / "empty").read_bytes() == b""
    assert rec.events == [("start", "a/empty", 0, 0), ("done", "a/empty", 0)]


async def test_offset_mismatch_resynchronizes(storage, tmp_path):
    folder = await storage.folder()
    data = os.urandom(3000)
    local = tmp_path / "x.bin"
    local.write_bytes(data)
    grant = await storage.grant("x.bin", len(data), "sess1")
    r = await storage.http.patch(grant["url"], params={"token": grant["token"]}, content=data[:1000],
                                 headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                                          "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204
    # the client believes nothing was sent: the 409 tells it the stored offset
    done = await transfer.tus_upload(storage.http, grant["url"], grant["token"], local, len(data), 0,
                                     chunk_size=1000)
    assert done == len(data) and (folder / "x.bin").read_bytes() == data


async def test_storage_errors_are_reported(storage, tmp_path):
    await storage.folder()
    local = tmp_path / "x.bin"
    local.write_bytes(b"abc")
    with pytest.raises(transfer.StorageError) as err:
        await transfer.tus_upload(storage.http, "http://storage/upload", "not-a-token", local, 3, 0)
    assert err.value.status == 401


async def test_download_resumes_a_partial_file(storage, tmp_path):
    folder = await storage.folder()
    data = os.urandom(3 * MiB + 5)
    (folder / "d.bin").write_bytes(data)
    state = StateFile(tmp_path / "downloads.json")
    dest = tmp_path / "out" / "d.bin"
    key = transfer.download_key("f", "d.bin", dest)
    token = storage.download_token("d.bin")
    saved, resumed = await transfer.download(storage.http, "http://storage/download", token, dest,
                                             state=state, key=key)
    assert saved == dest and resumed == 0 and dest.read_bytes() == data and state.entries() == {}

    # a run dies after the first MiB: the .part and the file's ETag stay behind
    class Dies(Recorder):
        def advance(self, name, n):
            super().advance(name, n)
            if self.bytes >= MiB:
                raise KeyboardInterrupt

    dest.unlink()
    with pytest.raises(KeyboardInterrupt):
        await transfer.download(storage.http, "http://storage/download", token, dest, state=state, key=key,
                                reporter=Dies())
    have = transfer.partial_path(dest).stat().st_size
    assert MiB <= have < len(data) and not dest.exists()
    etag = state.get(key)["etag"]
    assert etag
    storage.requests.clear()
    rec = Recorder()
    saved, resumed = await transfer.download(storage.http, "http://storage/download", token, dest,
                                             state=state, key=key, reporter=rec)
    assert resumed == have and dest.read_bytes() == data
    assert storage.requests[-1].headers["range"] == f"bytes={have}-"
    assert ("start", "d.bin", len(data), have) in rec.events and rec.bytes == len(data)
    assert not transfer.partial_path(dest).exists()

    # the file changed since: If-Range fails, the whole file comes again
    (folder / "d.bin").write_bytes(data[::-1])
    os.utime(folder / "d.bin", ns=(1, 1))
    transfer.partial_path(dest).write_bytes(data[:MiB])
    state.put(key, etag=etag, last_modified=None)
    saved, resumed = await transfer.download(storage.http, "http://storage/download", token, dest,
                                             state=state, key=key)
    assert resumed == 0 and dest.read_bytes() == data[::-1]

    # a stray .part without state is not trusted
    transfer.partial_path(dest).write_bytes(b"garbage")
    await transfer.download(storage.http, "http://storage/download", token, dest, state=state, key=key)
    assert dest.read_bytes() == data[::-1]


async def test_directory_archive_and_safe_extract(storage, tmp_path):
    folder = await storage.folder()
    (folder / "foo" / "test").mkdir(parents=True)
    (folder / "foo" / "test.txt").write_text("hello")
    (folder / "foo" / "test" / "test2.txt").write_text("world!")
    dest = tmp_path / "foo.zip"
    await transfer.download(storage.http, "http://storage/download", storage.download_token("foo"), dest,
                            archive=True)
    with zipfile.ZipFile(dest) as zf:
        names = set(zf.namelist())
    assert {"foo/test.txt", "foo/test/test2.txt"} <= names
    out = tmp_path / "x"
    out.mkdir()
    assert transfer.safe_extract(dest, out) == [out / "foo"]
    assert (out / "foo" / "test" / "test2.txt").read_text() == "world!"


@pytest.mark.parametrize("member", ["../evil.txt", "/abs.txt", "a/../../evil.txt"])
def test_safe_extract_refuses_escaping_members(tmp_path, member):
    archive = tmp_path / "bad.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr(member, "evil")
    archive.write_bytes(buf.getvalue())
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(transfer.TransferError, match="unsafe"):
        transfer.safe_extract(archive, out)
    assert list(out.iterdir()) == []


async def test_a_dropped_connection_resynchronizes_with_head(storage, tmp_path, monkeypatch):
    folder = await storage.folder()
    data = os.urandom(3000)
    local = tmp_path / "x.bin"
    local.write_bytes(data)
    grant = await storage.grant("x.bin", len(data), "sess2")
    monkeypatch.setattr(transfer, "_resync_delay", lambda attempt: 0)
    inner = storage.http._transport
    dropped = []

    class Flaky(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            if request.method == "PATCH" and request.headers["upload-offset"] == "1000" and not dropped:
                dropped.append(request)
                raise httpx.ReadError("connection reset")
            return await inner.handle_async_request(request)

    rec = Recorder()
    async with httpx.AsyncClient(transport=Flaky()) as http:
        done = await transfer.tus_upload(http, grant["url"], grant["token"], local, len(data), 0,
                                         chunk_size=1000, reporter=rec)
    assert done == len(data) and dropped and (folder / "x.bin").read_bytes() == data
    assert rec.bytes == len(data)  # bytes counted for the lost request were taken back
    assert any("connection lost" in e[1] for e in rec.events if e[0] == "note")


def test_cli_size_option():
    import click

    from workbay.client.commands import parse_size

    assert parse_size(None, "x") is None
    assert [parse_size(v, "x") for v in ("1048576", "512k", "16m", "16MiB", "1g", "2MB", "1.5m")] == \
        [MiB, 512 << 10, 16 * MiB, 16 * MiB, 1 << 30, 2 * MiB, 3 * MiB // 2]
    for bad in ("", "m", "-1", "lots", "1.5.m"):
        with pytest.raises(click.BadParameter):
            parse_size(bad, "x")


async def test_run_limited_bounds_concurrency_and_stops_at_the_first_failure():
    import asyncio

    running, peak, finished = 0, 0, []

    def job(i: int, fail: bool = False):
        async def run():
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                if fail:
                    raise transfer.TransferError(f"job {i} failed")
                if i >= 6:
                    await asyncio.Event().wait()  # would never end: must be cancelled
                finished.append(i)
                return i
            finally:
                running -= 1
        return run

    assert await transfer.run_limited(3, [job(i) for i in range(5)]) == [0, 1, 2, 3, 4]
    assert peak == 3
    finished.clear()
    with pytest.raises(transfer.TransferError, match="job 5 failed"):
        await transfer.run_limited(2, [job(i) for i in range(5)] + [job(5, fail=True), job(6), job(7)])
    assert running == 0 and 6 not in finished
