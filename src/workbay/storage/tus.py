"""Server side of tus 1.0.0 (core protocol, no creation step): the upload session exists once the
manager has issued the token. Partial data lives in ``<volume>/.workbay/uploads/<session>`` and
moves to its place in the folder when complete."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

from . import ownership
from .errors import InvalidPath, QuotaExceeded
from .paths import confine
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


def target_path(folder: Path, relpath: str) -> Path:
    """Where an upload lands: a file path inside the folder (not the folder, not a directory)."""
    target = confine(folder, relpath, follow_last=False)
    if target == Path(os.path.realpath(folder)) or (target.is_dir() and not target.is_symlink()):
        raise InvalidPath(f"{relpath!r} is a directory.")
    return target


def finish(volume: Volume, folder: Path, key: str, relpath: str,
           owner: ownership.Owner | None = None) -> Path:
    """Move a complete upload into place (parent directories created); the file and the
    directories created for it go to ``owner`` (the uploading user's container owner)."""
    target = target_path(folder, relpath)
    created = ownership.missing_dirs(target.parent, folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    # re-check after creating parents: a symlinked parent must not lead outside
    target = target_path(folder, relpath)
    os.replace(partial_path(volume, key), target)
    volume.changed(folder)
    ownership.give(folder, [*reversed(created), target], owner)
    done_marker(volume, key).touch()
    reservation_path(volume, key).unlink(missing_ok=True)
    return target


def prepare_upload(volume: Volume, vfid: str, relpath: str, size: int, session: str | None = None,
                   owner: ownership.Owner | None = None) -> None:
    """What the manager does at request-upload time: check the path and quota, and create a
    zero-byte file right away (tus never PATCHes an empty upload).  Resuming ``session`` does
    not count its own reservation against the quota."""
    folder = volume.folder_path(vfid)
    target = target_path(folder, relpath)
    check_quota(volume, folder, size, exclude=session_key(vfid, relpath, size, session) if session else None)
    if size == 0:
        created = ownership.missing_dirs(target.parent, folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        target = target_path(folder, relpath)
        target.touch()
        volume.changed(folder)
        ownership.give(folder, [*reversed(created), target], owner)
