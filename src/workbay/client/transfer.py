"""Moving file bytes to and from the storage-proxy: tus 1.0.0 uploads (resumable across runs) and
token downloads (single files resumed with ``Range``, directories as zip archives).

The manager only hands out a URL and a short-lived token (``request-upload`` /
``request-download``); the bytes go straight to the storage-proxy.  Nothing here knows about the
CLI: progress is reported through a :class:`Reporter`, and the manager is reached through a
``request_upload`` coroutine function, so the WebUI's server side can reuse the engine.

Pure parts (unit-tested): :func:`normalize_remote`, :func:`plan_upload`, :func:`plan_chunks`,
:class:`StateFile`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import posixpath
import time
import zipfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

CHUNK_SIZE = 16 * 1024 * 1024  # bytes per tus PATCH (the reference SDK's default)
READ_SIZE = 1024 * 1024  # bytes read from disk at a time while streaming a chunk
TUS_VERSION = "1.0.0"
STATE_MAX_AGE = 24 * 3600  # the storage-proxy drops uploads idle this long; so do we
MAX_RETRIES = 5  # consecutive failed requests to the storage-proxy before giving up


class TransferError(Exception):
    """A transfer that cannot go on (the message says why)."""


class UploadInterrupted(TransferError):
    """The upload stopped on purpose (``stop_after``) at ``offset``; rerunning resumes it."""

    def __init__(self, remote: str, offset: int) -> None:
        super().__init__(f"upload of {remote} stopped at {offset} bytes")
        self.remote, self.offset = remote, offset


class DownloadInterrupted(TransferError):
    """The download stopped on purpose (``stop_after``) at ``offset``; rerunning resumes it."""

    def __init__(self, name: str, offset: int) -> None:
        super().__init__(f"download of {name} stopped at {offset} bytes")
        self.name, self.offset = name, offset


class StorageError(TransferError):
    """An error answer from the storage-proxy (problem+json when it has one)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body
        self.title = str(body.get("title") or f"HTTP {status}")
        self.msg = body.get("msg")
        super().__init__(f"storage-proxy answered {status} {self.title}"
                         + (f": {self.msg}" if self.msg and self.msg != self.title else ""))


def _storage_error(resp: httpx.Response) -> StorageError:
    try:
        body = resp.json()
        if not isinstance(body, dict):
            body = {"title": str(body)}
    except ValueError:
        body = {"title": resp.reason_phrase or f"HTTP {resp.status_code}"}
    return StorageError(resp.status_code, body)


# -- remote paths ----------------------------------------------------------------------------------
def normalize_remote(path: str, *, allow_root: bool = False) -> str:
    """A folder-relative POSIX path without leading/trailing slashes or ``.`` parts.  ``..``,
    NUL bytes and backslashes are refused (ValueError); ``""`` (the folder itself) only with
    ``allow_root``."""
    if "\0" in path:
        raise ValueError(f"{path!r}: NUL bytes are not allowed in paths")
    if "\\" in path:
        raise ValueError(f"{path!r}: use '/' to separate directories")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{path!r}: '..' is not allowed in folder paths")
    out = "/".join(parts)
    if not out and not allow_root:
        raise ValueError(f"{path!r} names the folder itself, not a file")
    return out


def remote_join(*parts: str) -> str:
    return normalize_remote("/".join(p for p in parts if p), allow_root=True)


# -- planning uploads ------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadItem:
    local: Path
    remote: str
    size: int
    mtime_ns: int


@dataclass
class UploadPlan:
    files: list[UploadItem] = field(default_factory=list)
    empty_dirs: list[str] = field(default_factory=list)  # remote directories with nothing to upload

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _item(local: Path, remote: str) -> UploadItem:
    st = local.stat()  # follows a symlink to a file
    return UploadItem(local, remote, st.st_size, st.st_mtime_ns)


def plan_upload(sources: Sequence[Path | str], base_dir: str = "") -> UploadPlan:
    """What to upload where: a file ``x`` goes to ``BASE/x``; a directory ``foo`` to
    ``BASE/foo/…`` with its structure kept (symlinked directories are not followed; empty
    directories are listed in ``empty_dirs``).  Raises FileNotFoundError for a missing source,
    ValueError for a bad ``base_dir`` or two sources landing on the same remote path."""
    base = normalize_remote(base_dir, allow_root=True)
    plan = UploadPlan()
    for source in sources:
        src = Path(source)
        if not src.exists():
            raise FileNotFoundError(f"{source}: no such file or directory")
        name = src.resolve().name
        if src.is_dir():
            top = remote_join(base, name)
            for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
                dirnames.sort()
                here = Path(dirpath)
                rel = here.relative_to(src).as_posix()
                rdir = remote_join(top, "" if rel == "." else rel)
                files = [f for f in sorted(filenames) if (here / f).is_file()]
                for f in files:
                    plan.files.append(_item(here / f, remote_join(rdir, f)))
                if not files and not dirnames:
                    plan.empty_dirs.append(rdir)
        elif src.is_file():
            plan.files.append(_item(src, remote_join(base, name)))
        else:
            raise ValueError(f"{source}: not a regular file or directory")
    seen: dict[str, Path] = {}
    for item in plan.files:
        if item.remote in seen:
            raise ValueError(f"{seen[item.remote]} and {item.local} would both be uploaded as {item.remote}")
        seen[item.remote] = item.local
    return plan


def plan_chunks(size: int, offset: int = 0, chunk_size: int = CHUNK_SIZE,
                stop_after: int | None = None) -> list[tuple[int, int]]:
    """``(start, length)`` of the PATCHes that send bytes ``offset…size`` (none for an empty or
    finished file).  ``stop_after`` ends the plan at that many bytes of the file (a test hook)."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if offset < 0 or offset > size:
        raise ValueError(f"offset {offset} is outside 0…{size}")
    end = size if stop_after is None else max(offset, min(size, stop_after))
    chunks = []
    pos = offset
    while pos < end:
        length = min(chunk_size, end - pos)
        chunks.append((pos, length))
        pos += length
    return chunks


# -- state file ------------------------------------------------------------------------------------
def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "workbay"


def upload_key(folder: str, remote: str, size: int, mtime_ns: int) -> str:
    return json.dumps([folder, remote, size, mtime_ns])


class StateFile:
    """A small JSON map ``key → entry`` (each entry a dict stamped with ``updated``), read and
    written whole under an advisory lock so concurrent commands do not lose each other's
    entries.  Entries older than ``max_age`` are forgotten."""

    def __init__(self, path: Path, max_age: float = STATE_MAX_AGE) -> None:
        self.path = path
        self.max_age = max_age

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self._read()
                before = json.dumps(data, sort_keys=True)
                yield data
                if json.dumps(data, sort_keys=True) != before:
                    self._write(data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        cutoff = time.time() - self.max_age
        return {k: v for k, v in data.items()
                if isinstance(v, dict) and isinstance(v.get("updated"), (int, float)) and v["updated"] >= cutoff}

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._locked() as data:
            entry = data.get(key)
            return dict(entry) if entry else None

    def put(self, key: str, **entry: Any) -> None:
        with self._locked() as data:
            data[key] = {**entry, "updated": time.time()}

    def delete(self, key: str) -> None:
        with self._locked() as data:
            data.pop(key, None)

    def entries(self) -> dict[str, dict[str, Any]]:
        with self._locked() as data:
            return {k: dict(v) for k, v in data.items()}


def upload_state() -> StateFile:
    return StateFile(cache_dir() / "uploads.json")


def download_state() -> StateFile:
    return StateFile(cache_dir() / "downloads.json")


# -- progress --------------------------------------------------------------------------------------
class Reporter:
    """Progress callbacks; the default does nothing."""

    def file_started(self, name: str, total: int | None, offset: int) -> None: ...

    def advance(self, name: str, nbytes: int) -> None: ...

    def file_done(self, name: str, size: int) -> None: ...

    def note(self, text: str) -> None: ...


def new_http(timeout: float = 60.0) -> httpx.AsyncClient:
    """An HTTP client for the storage-proxy: connect/pool timeouts, generous read/write ones."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=15.0), follow_redirects=False)


# -- tus uploads -----------------------------------------------------------------------------------
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}


async def tus_offset(http: httpx.AsyncClient, url: str, token: str) -> int:
    """The stored offset of an upload (``HEAD``)."""
    resp = await http.head(url, params={"token": token}, headers=TUS_HEADERS)
    if resp.status_code >= 400:
        raise _storage_error(resp)
    try:
        return int(resp.headers["upload-offset"])
    except (KeyError, ValueError):
        raise TransferError("the storage-proxy did not answer an Upload-Offset") from None


async def _file_body(path: Path, start: int, length: int, on_bytes: Callable[[int], None]):
    """The bytes ``start…start+length`` of a file, read a MiB at a time (never all in memory)."""
    with open(path, "rb") as f:
        f.seek(start)
        remaining = length
        while remaining > 0:
            data = f.read(min(READ_SIZE, remaining))
            if not data:
                raise TransferError(f"{path} shrank while it was being uploaded")
            remaining -= len(data)
            on_bytes(len(data))
            yield data


async def tus_upload(http: httpx.AsyncClient, url: str, token: str, path: Path, size: int,
                     offset: int, *, chunk_size: int = CHUNK_SIZE, reporter: Reporter | None = None,
                     stop_after: int | None = None, renew: Callable[[], Awaitable[str]] | None = None,
                     name: str = "") -> int:
    """PATCH ``path``'s bytes from ``offset`` on, ``chunk_size`` at a time; returns the final
    offset (``size``).  An offset mismatch (409) or a dropped connection resynchronizes with
    ``HEAD`` and goes on; an expired token (401) is replaced by ``renew()`` when given."""
    reporter = reporter or Reporter()
    failures = 0
    while offset < size:
        chunks = plan_chunks(size, offset, chunk_size, stop_after)
        if not chunks:
            raise UploadInterrupted(str(path), offset)
        start, length = chunks[0]
        sent = 0

        def on_bytes(n: int) -> None:
            nonlocal sent
            sent += n
            reporter.advance(name, n)

        headers = {**TUS_HEADERS, "Upload-Offset": str(start), "Content-Length": str(length),
                   "Content-Type": "application/offset+octet-stream"}
        try:
            resp = await http.patch(url, params={"token": token}, headers=headers,
                                    content=_file_body(path, start, length, on_bytes))
        except httpx.TransportError as e:
            failures += 1
            reporter.advance(name, -sent)
            if failures > MAX_RETRIES:
                raise TransferError(f"cannot reach the storage-proxy ({e.__class__.__name__}: {e})") from e
            reporter.note(f"connection lost ({e.__class__.__name__}); resuming")
            offset = await _resync(http, url, token, failures)
            reporter.advance(name, offset - start)
            continue
        if resp.status_code == 409 and "upload-offset" in resp.headers:
            failures += 1
            reporter.advance(name, -sent)
            if failures > MAX_RETRIES:
                raise _storage_error(resp)
            offset = int(resp.headers["upload-offset"])
            reporter.advance(name, offset - start)
            continue
        if resp.status_code == 401 and renew is not None and failures < MAX_RETRIES:
            failures += 1
            reporter.advance(name, -sent)
            token = await renew()
            offset = await tus_offset(http, url, token)
            reporter.advance(name, offset - start)
            continue
        if resp.status_code >= 400:
            reporter.advance(name, -sent)
            raise _storage_error(resp)
        failures = 0
        try:
            new_offset = int(resp.headers["upload-offset"])
        except (KeyError, ValueError):
            raise TransferError("the storage-proxy did not answer an Upload-Offset") from None
        reporter.advance(name, new_offset - start - sent)
        offset = new_offset
    return offset


def _resync_delay(attempt: int) -> float:
    return min(0.5 * attempt, 3.0)


async def run_limited(jobs: int, factories: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the coroutines ``factories`` make, at most ``jobs`` at a time; the first failure
    cancels the others and is raised as it is (not as a group)."""
    sem = asyncio.Semaphore(max(1, jobs))

    async def one(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with sem:
            return await factory()

    tasks = [asyncio.ensure_future(one(f)) for f in factories]
    try:
        for done in asyncio.as_completed(tasks):
            await done
        return [t.result() for t in tasks]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _resync(http: httpx.AsyncClient, url: str, token: str, attempt: int) -> int:
    await asyncio.sleep(_resync_delay(attempt))
    try:
        return await tus_offset(http, url, token)
    except httpx.TransportError as e:
        raise TransferError(f"cannot reach the storage-proxy ({e.__class__.__name__}: {e})") from e


RequestUpload = Callable[[str, int, str | None], Awaitable[dict[str, Any]]]


async def upload_item(http: httpx.AsyncClient, request_upload: RequestUpload, folder: str, item: UploadItem, *,
                      state: StateFile | None = None, reporter: Reporter | None = None,
                      chunk_size: int = CHUNK_SIZE, stop_after: int | None = None) -> int:
    """Upload one file; returns the offset it resumed at (0 for a fresh upload).

    ``request_upload(path, size, session)`` asks the manager for ``{"token","url","session"}``.
    The session id is kept in ``state`` under (folder, remote path, size, mtime) until the file is
    complete, so a rerun after an interruption resumes where the storage-proxy stopped."""
    reporter = reporter or Reporter()
    key = upload_key(folder, item.remote, item.size, item.mtime_ns)
    saved = state.get(key) if state and item.size else None
    asked = session = (saved or {}).get("session")
    grant = await request_upload(item.remote, item.size, session)
    if item.size == 0:  # the manager created it; tus never PATCHes an empty upload
        reporter.file_started(item.remote, 0, 0)
        reporter.file_done(item.remote, 0)
        return 0
    session = grant.get("session") or session
    if state is not None and session:
        state.put(key, session=session, local=str(item.local.absolute()))
    url, token = grant["url"], grant["token"]
    # a session we resume may hold bytes already; a new one holds none
    offset = await tus_offset(http, url, token) if asked and asked == session else 0
    if offset > item.size:
        raise TransferError(f"the storage-proxy holds {offset} bytes of {item.remote}, more than its size")
    if offset:
        reporter.note(f"Resuming {item.remote} at {offset} of {item.size} bytes")
    reporter.file_started(item.remote, item.size, offset)

    async def renew() -> str:
        return (await request_upload(item.remote, item.size, session))["token"]

    try:
        await tus_upload(http, url, token, item.local, item.size, offset, chunk_size=chunk_size,
                         reporter=reporter, stop_after=stop_after, renew=renew, name=item.remote)
    except UploadInterrupted as e:
        raise UploadInterrupted(item.remote, e.offset) from None
    if state is not None:
        state.delete(key)
    reporter.file_done(item.remote, item.size)
    return offset


# -- downloads -------------------------------------------------------------------------------------
def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download_key(folder: str, remote: str, dest: Path) -> str:
    return json.dumps([folder, remote, str(dest.absolute())])


async def download(http: httpx.AsyncClient, url: str, token: str, dest: Path, *, archive: bool = False,
                   reporter: Reporter | None = None, state: StateFile | None = None,
                   key: str | None = None, name: str | None = None,
                   stop_after: int | None = None) -> tuple[Path, int]:
    """Stream a download into ``dest`` (through ``dest.part``); returns ``(dest, resumed_at)``.

    A file whose ``.part`` is left from an interrupted run resumes with ``Range`` +
    ``If-Range`` (its ETag, kept in ``state``): a 206 appends, a 200 (the file changed) starts
    over.  Archives are streamed and cannot resume.  ``stop_after`` (a test hook) stops a file
    after that many bytes, as an interruption would."""
    reporter = reporter or Reporter()
    name = name or dest.name
    part = partial_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    saved = state.get(key) if state and key and not archive else None
    have = part.stat().st_size if part.exists() and saved else 0
    headers: dict[str, str] = {}
    if have and saved and (saved.get("etag") or saved.get("last_modified")):
        headers["Range"] = f"bytes={have}-"
        headers["If-Range"] = saved.get("etag") or saved["last_modified"]
    else:
        have = 0
    params = {"token": token, **({"archive": "true"} if archive else {})}
    async with http.stream("GET", url, params=params, headers=headers) as resp:
        if resp.status_code == 416 and have:
            await resp.aread()
            part.unlink(missing_ok=True)
            if state and key:
                state.delete(key)
            return await download(http, url, token, dest, archive=archive, reporter=reporter,
                                  state=state, key=key, name=name, stop_after=stop_after)
        if resp.status_code >= 400:
            await resp.aread()
            raise _storage_error(resp)
        if resp.status_code == 206:
            start = _content_range_start(resp.headers.get("content-range"))
            if start != have:
                raise TransferError(f"asked for bytes from {have}, the storage-proxy sent from {start}")
            mode = "ab"
        else:
            have, mode = 0, "wb"
        length = resp.headers.get("content-length")
        total = have + int(length) if length and length.isdigit() else None
        if state and key and not archive:
            state.put(key, etag=resp.headers.get("etag"), last_modified=resp.headers.get("last-modified"))
        if have:
            reporter.note(f"Resuming {name} at {have} bytes")
        reporter.file_started(name, total, have)
        written = have
        with open(part, mode) as f:
            async for data in resp.aiter_bytes(READ_SIZE):
                if stop_after is not None and written + len(data) >= stop_after and not archive:
                    data = data[:max(0, stop_after - written)]
                    f.write(data)
                    reporter.advance(name, len(data))
                    raise DownloadInterrupted(name, written + len(data))
                f.write(data)
                written += len(data)
                reporter.advance(name, len(data))
    if total is not None and written != total:
        raise TransferError(f"{name}: the connection ended after {written} of {total} bytes; rerun to resume")
    os.replace(part, dest)
    if state and key:
        state.delete(key)
    reporter.file_done(name, written)
    return dest, have


def _content_range_start(value: str | None) -> int:
    # "bytes 100-199/200"
    try:
        unit, _, spec = (value or "").partition(" ")
        return int(spec.split("-", 1)[0]) if unit == "bytes" else -1
    except ValueError:
        return -1


def safe_extract(archive: Path, into: Path) -> list[Path]:
    """Extract a zip below ``into``, refusing members that would land outside it (absolute
    paths, ``..``) or are links; returns the top-level entries created."""
    into = into.resolve()
    tops: dict[str, Path] = {}
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            if name.startswith("/") or "\\" in name or ".." in PurePosixPath(name).parts:
                raise TransferError(f"{archive.name}: refusing the unsafe member {name!r}")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise TransferError(f"{archive.name}: refusing the symbolic link {name!r}")
            target = (into / name).resolve()
            if target != into and into not in target.parents:
                raise TransferError(f"{archive.name}: refusing the unsafe member {name!r}")
        for info in zf.infolist():
            zf.extract(info, into)
            top = posixpath.normpath(info.filename).split("/")[0]
            tops.setdefault(top, into / top)
    return list(tops.values())
