"""Who owns what the storage-proxy writes.

Sessions run their processes as the container user (uid 1000 by default), so folders, uploaded
files and created directories are handed to ``storage.file_owner``: otherwise a folder mounted
read-write would still refuse the session's writes.  Only possible (and only done) as root."""

from __future__ import annotations

import os
from pathlib import Path

_owner: tuple[int, int] | None = None


def configure(spec: str) -> None:
    """``"uid:gid"``; empty leaves files owned by the proxy's own user."""
    global _owner
    if not spec:
        _owner = None
        return
    uid, _, gid = spec.partition(":")
    _owner = (int(uid), int(gid or uid))


def give(path: Path, stop: Path | None = None) -> None:
    """Chown ``path`` and its ancestors below ``stop`` (the folder's root, already owned)."""
    if _owner is None or os.geteuid() != 0:
        return
    current = Path(path)
    while True:
        try:
            os.chown(current, *_owner, follow_symlinks=False)
        except FileNotFoundError:
            pass
        if stop is None or current == stop or current.parent == current:
            return
        current = current.parent
        if current == stop:
            return


def give_tree(root: Path) -> None:
    if _owner is None or os.geteuid() != 0:
        return
    give(root)
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(base, name), *_owner, follow_symlinks=False)
