"""Downloads: single files with Range/If-Range, directories and file sets as streamed zips."""

from __future__ import annotations

import os
import queue
import threading
import zipfile
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import anyio

from fastapi.responses import Response, StreamingResponse

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


async def _file_chunks(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    f = await anyio.to_thread.run_sync(open, path, "rb")
    try:
        await anyio.to_thread.run_sync(f.seek, start)
        remaining = length
        while remaining > 0:
            data = await anyio.to_thread.run_sync(f.read, min(CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        await anyio.to_thread.run_sync(f.close)


def file_response(path: Path, range_header: str | None, if_range: str | None) -> Response:
    st = path.stat()
    size = st.st_size
    last_modified = formatdate(st.st_mtime, usegmt=True)
    etag = f'"{st.st_mtime_ns:x}-{size:x}"'
    headers = {"Content-Disposition": content_disposition(path.name), "Last-Modified": last_modified,
               "ETag": etag, "Accept-Ranges": "bytes"}
    rng = None
    if range_header and _if_range_matches(if_range, etag, st.st_mtime):
        try:
            rng = parse_range(range_header, size)
        except ValueError:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    if rng is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(_file_chunks(path, 0, size), status_code=200, headers=headers,
                                 media_type="application/octet-stream")
    start, end = rng
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(_file_chunks(path, start, end - start + 1), status_code=206,
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


def _walk(base: Path, arcbase: str):
    """(path, arcname) for ``base``: a file, or every entry under a directory (links not followed)."""
    if base.is_file() and not base.is_symlink():
        yield base, arcbase
        return
    yield base, arcbase + "/"
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        rel = os.path.relpath(dirpath, base)
        prefix = arcbase if rel == "." else f"{arcbase}/{rel}"
        for d in dirnames:
            yield Path(dirpath) / d, f"{prefix}/{d}/"
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                yield p, f"{prefix}/{name}"


def _write_zip(entries: list[tuple[Path, str]], writer: _QueueWriter, q: queue.Queue) -> None:
    try:
        with zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1,
                             allowZip64=True) as zf:
            for base, arcbase in entries:
                for path, arcname in _walk(base, arcbase):
                    if arcname.endswith("/"):
                        zf.writestr(zipfile.ZipInfo(arcname), b"")
                        continue
                    with open(path, "rb") as src, zf.open(zipfile.ZipInfo.from_file(path, arcname),
                                                          "w", force_zip64=True) as dst:
                        while chunk := src.read(CHUNK):
                            dst.write(chunk)
    except Exception as e:  # noqa: BLE001 - handed to the consumer
        _put_last(q, e)
    else:
        _put_last(q, None)


def _put_last(q: queue.Queue, item: object) -> None:
    try:
        q.put(item, timeout=5)
    except queue.Full:  # the consumer is gone
        pass


async def _zip_chunks(entries: list[tuple[Path, str]]) -> AsyncIterator[bytes]:
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


def zip_response(entries: list[tuple[Path, str]], filename: str) -> Response:
    return StreamingResponse(_zip_chunks(entries), media_type="application/zip",
                             headers={"Content-Disposition": content_disposition(filename)})
