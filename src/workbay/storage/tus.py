"""Server side of tus 1.0.0 (core protocol, no creation step): the upload session exists once the
manager has issued the token. Partial data lives in ``<volume>/.workbay/uploads/<session>`` and
moves to its place in the folder when complete."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import QuotaExceeded
from .paths import confine
from .quota import would_exceed
from .volumes import Volume

TUS_VERSION = "1.0.0"


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


def check_quota(volume: Volume, folder: Path, size: int) -> None:
    """Refuse (QuotaExceeded) an upload of ``size`` bytes the folder's scope has no room for
    (partial data in the upload area is not part of the scope's usage yet)."""
    if not volume.quota_supported:
        return
    scope = volume.folder_scope(folder)
    limit = volume.scope_limit(scope)
    if limit is None:
        return
    used = volume.scope_used(scope)
    if would_exceed(limit, used, size):
        raise QuotaExceeded(f"Uploading {size} bytes would exceed the quota of {scope} "
                            f"({used} of {limit} bytes used).",
                            data={"quota_scope_id": str(scope), "limit_bytes": limit,
                                  "used_bytes": used, "requested_bytes": size})


def target_path(folder: Path, relpath: str) -> Path:
    return confine(folder, relpath, follow_last=False)


def finish(volume: Volume, folder: Path, key: str, relpath: str) -> Path:
    """Move a complete upload into place (parent directories created)."""
    target = target_path(folder, relpath)
    target.parent.mkdir(parents=True, exist_ok=True)
    # re-check after creating parents: a symlinked parent must not lead outside
    target = target_path(folder, relpath)
    os.replace(partial_path(volume, key), target)
    done_marker(volume, key).touch()
    return target


def prepare_upload(volume: Volume, vfid: str, relpath: str, size: int) -> None:
    """What the manager does at request-upload time: check the path and quota, and create a
    zero-byte file right away (tus never PATCHes an empty upload)."""
    folder = volume.folder_path(vfid)
    target = target_path(folder, relpath)
    check_quota(volume, folder, size)
    if size == 0:
        target.parent.mkdir(parents=True, exist_ok=True)
        target = target_path(folder, relpath)
        target.touch()
