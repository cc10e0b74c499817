"""Server side of tus 1.0.0 (core protocol, no creation step): the upload session exists once the
manager has issued the token. Partial data lives in ``<volume>/.workbay/uploads/<session>`` and
moves to its place in the folder when complete."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import threading
import time
import uuid
from pathlib import Path

from . import ownership, safe_fs
from .errors import InvalidPath, QuotaExceeded
from .quota import would_exceed
from .volumes import Volume

TUS_VERSION = "1.0.0"
STALE_AFTER = 24 * 3600  # seconds without progress before an abandoned upload is dropped
_reserve_lock = threading.Lock()


def session_key(vfid: str, relpath: str, size: int, session: str | None = None) -> str:
    """A file name for the partial upload, derived from the token's claims."""
    raw = f"{vfid}\0{relpath}\0{size}\0{session or ''}"
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def partial_path(volume: Volume, key: str) -> Path:
    return volume.upload_dir / key


def done_marker(volume: Volume, key: str) -> Path:
    return volume.upload_dir / f"{key}.done"


def current_offset(volume: Volume, key: str, size: int) -> int:
    """Bytes stored so far (``size`` once the upload has completed)."""
    if done_marker(volume, key).exists():
        return size
    try:
        return partial_path(volume, key).stat().st_size
    except FileNotFoundError:
        return 0


def reservation_path(volume: Volume, key: str) -> Path:
    return volume.upload_dir / f"{key}.resv"


def reserved_bytes(volume: Volume, scope: str, exclude: str | None = None) -> int:
    """Bytes promised to uploads of ``scope`` still in progress (not yet part of its usage)."""
    total = 0
    for path in volume.upload_dir.glob("*.resv"):
        if path.stem == exclude:
            continue
        try:
            info = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            continue
        if info.get("scope") == scope:
            total += int(info.get("size", 0))
    return total


def check_quota(volume: Volume, folder: Path, size: int, exclude: str | None = None) -> None:
    """Refuse (QuotaExceeded) an upload of ``size`` bytes the folder's scope has no room for,
    counting what the scope holds and what other unfinished uploads to it have reserved."""
    if not volume.quota_supported:
        return
    scope = volume.folder_scope(folder)
    limit = volume.scope_limit(scope)
    if limit is None:
        return
    used = volume.scope_used(scope) + reserved_bytes(volume, str(scope), exclude)
    if would_exceed(limit, used, size):
        raise QuotaExceeded(f"Uploading {size} bytes would exceed the quota of {scope} "
                            f"({used} of {limit} bytes used or reserved).",
                            data={"quota_scope_id": str(scope), "limit_bytes": limit,
                                  "used_bytes": used, "requested_bytes": size})


def reserve(volume: Volume, folder: Path, key: str, size: int) -> None:
    """Check the quota and reserve ``size`` bytes for this upload, atomically with respect to
    other uploads; called before the first byte is written."""
    drop_stale(volume)
    with _reserve_lock:
        check_quota(volume, folder, size, exclude=key)
        path = reservation_path(volume, key)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"scope": str(volume.folder_scope(folder)), "size": size}))
        os.replace(tmp, path)


def drop_stale(volume: Volume, max_age: float = STALE_AFTER) -> None:
    """Forget uploads (partial data, reservations, completion markers) idle for ``max_age``."""
    cutoff = time.time() - max_age
    for path in volume.upload_dir.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            continue


def check_target(folder: Path, relpath: str) -> None:
    """Refuse (InvalidPath) an upload target that is the folder or a directory, or that lies
    behind a symlink; parent directories that do not exist yet are created at completion."""
    parts = safe_fs.split(relpath)
    if not parts:
        raise InvalidPath(f"{relpath!r} is a directory.")
    with safe_fs.folder_fd(folder) as rfd:
        fd = os.dup(rfd)
        try:
            for name in parts[:-1]:
                if not safe_fs.exists_at(fd, name):
                    return
                child = safe_fs.open_dir_at(fd, name, relpath)
                safe_fs.close(fd)
                fd = child
            st = safe_fs.lstat_at(fd, parts[-1])
            if st is not None and stat.S_ISDIR(st.st_mode):
                raise InvalidPath(f"{relpath!r} is a directory.")
        finally:
            safe_fs.close(fd)


def place(volume: Volume, folder: Path, name: str, relpath: str,
          owner: ownership.Owner | None = None) -> None:
    """Move the file ``name`` of the proxy's upload directory to ``relpath`` in the folder: the
    parents are walked (and the missing ones made) by descriptor without following any link, and
    the file is renamed into the parent's descriptor (``renameat``), replacing what is there,
    a link as a link: nothing outside the folder is ever written or touched."""
    parts = safe_fs.split(relpath)
    if not parts:
        raise InvalidPath(f"{relpath!r} is a directory.")
    created: list[tuple[int, str]] = []
    with safe_fs.folder_fd(volume.upload_dir) as ufd, safe_fs.folder_fd(folder) as rfd:
        try:
            ownership.give_at(ufd, name, owner)  # still in the proxy's own directory
            dfd = safe_fs.walk(rfd, parts[:-1], relpath, create=True, created=created)
            try:
                for fd, _ in created:
                    ownership.give_fd(fd, owner)
                st = safe_fs.lstat_at(dfd, parts[-1])
                if st is not None and stat.S_ISDIR(st.st_mode):
                    raise InvalidPath(f"{relpath!r} is a directory.")
                try:
                    os.rename(name, parts[-1], src_dir_fd=ufd, dst_dir_fd=dfd)
                except OSError as e:
                    if e.errno != errno.EXDEV:
                        raise
                    _copy_across(ufd, name, dfd, parts[-1])
            finally:
                safe_fs.close(dfd)
        finally:
            for fd, _ in created:
                safe_fs.close(fd)


def _copy_across(ufd: int, name: str, dfd: int, target: str) -> None:
    """``place`` when the folder is on another filesystem than the upload directory: a copy
    into a fresh file (``O_EXCL | O_NOFOLLOW``) in the target's directory, renamed over it."""
    tmp = f".workbay-upload-{uuid.uuid4().hex}"
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=ufd)
    try:
        st = os.fstat(src)
        dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      safe_fs.FILE_MODE, dir_fd=dfd)
        try:
            while chunk := os.read(src, 1 << 20):
                os.write(dst, chunk)
            if os.geteuid() == 0:
                os.fchown(dst, st.st_uid, st.st_gid)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    try:
        os.rename(tmp, target, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError:
        os.unlink(tmp, dir_fd=dfd)
        raise
    os.unlink(name, dir_fd=ufd)


def finish(volume: Volume, folder: Path, key: str, relpath: str,
           owner: ownership.Owner | None = None) -> None:
    """Move a complete upload into place (parent directories created); the file and the
    directories created for it go to ``owner`` (the uploading user's container owner)."""
    place(volume, folder, partial_path(volume, key).name, relpath, owner)
    volume.changed(folder)
    done_marker(volume, key).touch()
    reservation_path(volume, key).unlink(missing_ok=True)


def prepare_upload(volume: Volume, vfid: str, relpath: str, size: int, session: str | None = None,
                   owner: ownership.Owner | None = None) -> None:
    """What the manager does at request-upload time: check the path and quota, and put a
    zero-byte file in place right away (tus never PATCHes an empty upload): a fresh empty file
    made in the proxy's upload directory and moved in as a complete upload is (replacing what is
    there; a symlink there is replaced, never followed).  Resuming ``session`` does not count
    its own reservation against the quota."""
    folder = volume.folder_path(vfid)
    check_target(folder, relpath)
    check_quota(volume, folder, size, exclude=session_key(vfid, relpath, size, session) if session else None)
    if size == 0:
        name = f"empty-{uuid.uuid4().hex}"
        os.close(os.open(volume.upload_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                         safe_fs.FILE_MODE))
        try:
            place(volume, folder, name, relpath, owner)
        finally:
            (volume.upload_dir / name).unlink(missing_ok=True)
        volume.changed(folder)
