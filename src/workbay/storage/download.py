"""Downloads: single files with Range/If-Range, directories and file sets as streamed zips."""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
import zipfile
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import quote

import anyio
from fastapi.responses import Response, StreamingResponse

from workbay.common.errors import BackendError

from . import safe_fs

CHUNK = 1 << 20


def content_disposition(filename: str) -> str:
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment;filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range; None if absent/unparseable;
    ValueError if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                raise ValueError("empty suffix range")
            return max(size - n, 0), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        if first.isdigit() or last.isdigit():
            raise
        return None
    if start >= size or end < start:
        raise ValueError("unsatisfiable range")
    return start, min(end, size - 1)


class Handle:
    """An open descriptor handed to a streaming response: closed when the stream ends, and by
    the garbage collector if the response is dropped before it starts."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def close(self) -> None:
        fd, self.fd = self.fd, None
        safe_fs.close(fd)

    def __del__(self) -> None:
        self.close()


async def _file_chunks(handle: Handle, start: int, length: int) -> AsyncIterator[bytes]:
    """The bytes of an already opened file (``pread``: the descriptor checked at open time is the
    one read; nothing is looked up by name again)."""
    try:
        offset, remaining = start, length
        while remaining > 0 and handle.fd is not None:
            data = await anyio.to_thread.run_sync(os.pread, handle.fd, min(CHUNK, remaining), offset)
            if not data:
                break
            offset += len(data)
            remaining -= len(data)
            yield data
    finally:
        handle.close()


def file_response(fd: int, st: os.stat_result, name: str, range_header: str | None,
                  if_range: str | None) -> Response:
    """A regular file's bytes from its open descriptor ``fd`` (owned by the response)."""
    handle = Handle(fd)
    size = st.st_size
    last_modified = formatdate(st.st_mtime, usegmt=True)
    etag = f'"{st.st_mtime_ns:x}-{size:x}"'
    headers = {"Content-Disposition": content_disposition(name), "Last-Modified": last_modified,
               "ETag": etag, "Accept-Ranges": "bytes"}
    rng = None
    if range_header and _if_range_matches(if_range, etag, st.st_mtime):
        try:
            rng = parse_range(range_header, size)
        except ValueError:
            handle.close()
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    if rng is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(_file_chunks(handle, 0, size), status_code=200, headers=headers,
                                 media_type="application/octet-stream")
    start, end = rng
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(_file_chunks(handle, start, end - start + 1), status_code=206,
                             headers=headers, media_type="application/octet-stream")


def _if_range_matches(if_range: str | None, etag: str, mtime: float) -> bool:
    if not if_range:
        return True
    if if_range.startswith('"') or if_range.startswith("W/"):
        return if_range == etag
    try:
        return int(parsedate_to_datetime(if_range).timestamp()) >= int(mtime)
    except (TypeError, ValueError):
        return False


class _QueueWriter:
    """A write-only stream handing bytes to the event loop through a bounded queue."""

    def __init__(self, q: queue.Queue, cancelled: threading.Event) -> None:
        self.q = q
        self.cancelled = cancelled

    def write(self, data: bytes) -> int:
        if data:
            while True:
                if self.cancelled.is_set():
                    raise OSError("download cancelled")
                try:
                    self.q.put(bytes(data), timeout=0.5)
                    break
                except queue.Full:
                    continue
        return len(data)

    def flush(self) -> None:
        pass


Entry = tuple[Handle, os.stat_result, str]  # an open file or directory, its stat, its name


def _zipinfo(arcname: str, st: os.stat_result) -> zipfile.ZipInfo:
    """What ``ZipInfo.from_file`` gives, from an ``fstat`` (no lookup by name)."""
    t = time.localtime(st.st_mtime)
    if t.tm_year < 1980:  # what a zip can hold
        date_time = (1980, 1, 1, 0, 0, 0)
    elif t.tm_year > 2107:
        date_time = (2107, 12, 31, 23, 59, 58)
    else:
        date_time = tuple(t[:6])
    info = zipfile.ZipInfo(arcname, date_time)
    info.external_attr = (st.st_mode & 0xFFFF) << 16
    info.file_size = st.st_size
    return info


def _copy_into(zf: zipfile.ZipFile, fd: int, st: os.stat_result, arcname: str) -> None:
    with zf.open(_zipinfo(arcname, st), "w", force_zip64=True) as dst:
        offset = 0
        while chunk := os.pread(fd, CHUNK, offset):
            offset += len(chunk)
            dst.write(chunk)


def _zip_tree(zf: zipfile.ZipFile, dir_fd: int, arcbase: str) -> None:
    """A directory's entries into the archive, walked by descriptor: links and special files are
    left out, never followed or opened."""
    zf.writestr(zipfile.ZipInfo(arcbase + "/"), b"")
    for prefix, entry, fd in safe_fs.walk_tree(dir_fd):
        arc = f"{arcbase}/{prefix}/{entry.name}" if prefix else f"{arcbase}/{entry.name}"
        try:
            if entry.is_dir(follow_symlinks=False):
                zf.writestr(zipfile.ZipInfo(arc + "/"), b"")
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            ffd, st = safe_fs.open_node(fd, entry.name)
        except (OSError, BackendError):  # vanished or swapped meanwhile: left out
            continue
        try:
            if stat.S_ISREG(st.st_mode):
                _copy_into(zf, ffd, st, arc)
        finally:
            safe_fs.close(ffd)


def _write_zip(entries: list[Entry], writer: _QueueWriter, q: queue.Queue) -> None:
    try:
        with zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1,
                             allowZip64=True) as zf:
            for handle, st, arcbase in entries:
                if handle.fd is None:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    _zip_tree(zf, handle.fd, arcbase)
                else:
                    _copy_into(zf, handle.fd, st, arcbase)
    except Exception as e:  # noqa: BLE001 - handed to the consumer
        _put_last(q, e)
    else:
        _put_last(q, None)
    finally:
        for handle, _, _ in entries:
            handle.close()


def _put_last(q: queue.Queue, item: object) -> None:
    try:
        q.put(item, timeout=5)
    except queue.Full:  # the consumer is gone
        pass


async def _zip_chunks(entries: list[Entry]) -> AsyncIterator[bytes]:
    q: queue.Queue = queue.Queue(maxsize=16)
    cancelled = threading.Event()
    thread = threading.Thread(target=_write_zip, args=(entries, _QueueWriter(q, cancelled), q),
                              daemon=True)
    thread.start()
    try:
        while True:
            item = await anyio.to_thread.run_sync(q.get)
            if item is None:
                break
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        cancelled.set()


def zip_response(entries: list[tuple[int, os.stat_result, str]], filename: str) -> Response:
    """A zip of open files and directories (descriptor, fstat, name in the archive), streamed;
    the descriptors are owned by the response."""
    handles = [(Handle(fd), st, name) for fd, st, name in entries]
    return StreamingResponse(_zip_chunks(handles), media_type="application/zip",
                             headers={"Content-Disposition": content_disposition(filename)})
