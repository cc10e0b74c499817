"""File operations inside one folder (blocking; the HTTP layer runs them in a thread)."""

from __future__ import annotations

import math
import os
import shutil
import stat
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path

from . import ownership
from .errors import FileExists, InvalidPath, NotFound
from .paths import check_name, clean_relpath, confine


class _IsoCache:
    """``datetime.fromtimestamp(ts, UTC).isoformat()`` for the many timestamps of one listing,
    about twice as fast: the date and time of day are formatted once per whole second and the
    microseconds appended, rounded as ``fromtimestamp`` rounds them (half to even, carried into
    the second), so the text is exactly the same."""

    def __init__(self) -> None:
        self.seconds: dict[int, str] = {}

    def __call__(self, ts: float) -> str:
        frac, whole = math.modf(ts)
        us = round(frac * 1e6)
        if us >= 1_000_000:
            us -= 1_000_000
            whole += 1.0
        elif us < 0:
            us += 1_000_000
            whole -= 1.0
        sec = int(whole)
        prefix = self.seconds.get(sec)
        if prefix is None:
            prefix = self.seconds[sec] = datetime.fromtimestamp(sec, UTC).isoformat()[:-6]
        return f"{prefix}.{us:06d}+00:00" if us else f"{prefix}+00:00"


def entry_type(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "SYMLINK"
    if stat.S_ISDIR(mode):
        return "DIRECTORY"
    return "FILE"


def list_dir(root: Path, relpath: str) -> list[dict]:
    path = confine(root, relpath)
    if not path.is_dir():
        raise NotFound(f"Not a directory: {relpath!r}")
    iso = _IsoCache()
    dirs, others = [], []
    with os.scandir(path) as it:
        for entry in it:
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            kind = entry_type(mode)
            ctime, mtime = st.st_ctime, st.st_mtime
            created = iso(ctime)
            (dirs if kind == "DIRECTORY" else others).append(
                {"name": entry.name, "type": kind, "size": st.st_size,
                 "mode": oct(stat.S_IMODE(mode)), "created": created,
                 "modified": created if mtime == ctime else iso(mtime)})
    # directories first, then by name (what sorting on (type != DIRECTORY, name) gives)
    by_name = itemgetter("name")
    dirs.sort(key=by_name)
    others.sort(key=by_name)
    return dirs + others


def mkdir(root: Path, relpath: str, *, parents: bool = False, exist_ok: bool = False,
          owner: ownership.Owner | None = None) -> None:
    """Create a directory; what it creates (only that) goes to ``owner`` or the default owner."""
    if clean_relpath(relpath).name == "":
        raise InvalidPath("A directory name is required.")
    path = confine(root, relpath, follow_last=False)
    created = ownership.missing_dirs(path, root)
    try:
        path.mkdir(parents=parents, exist_ok=exist_ok)
        ownership.give(root, reversed(created), owner)
    except FileExistsError as e:
        raise FileExists(f"{relpath!r} already exists.") from e
    except FileNotFoundError as e:
        raise NotFound(f"The parent of {relpath!r} does not exist.") from e


def _existing(root: Path, relpath: str) -> Path:
    path = confine(root, relpath, follow_last=False)
    if path == Path(os.path.realpath(root)):
        raise InvalidPath("The folder itself cannot be changed.")
    if not path.exists() and not path.is_symlink():
        raise NotFound(f"No such file: {relpath!r}")
    return path


def rename(root: Path, target_path: str, new_name: str) -> None:
    src = _existing(root, target_path)
    dst = src.parent / check_name(new_name)
    if dst.exists() or dst.is_symlink():
        raise FileExists(f"{new_name!r} already exists.")
    os.rename(src, dst)


def move(root: Path, src_path: str, dst_path: str) -> None:
    src = _existing(root, src_path)
    dst = confine(root, dst_path, follow_last=False)
    if dst.is_dir() and not dst.is_symlink():
        dst = dst / src.name
    if dst.exists() or dst.is_symlink():
        raise FileExists(f"{dst_path!r} already exists.")
    if src.is_dir() and (dst == src or src in dst.parents):
        raise InvalidPath("A directory cannot be moved into itself.")
    if not dst.parent.is_dir():
        raise NotFound(f"The parent of {dst_path!r} does not exist.")
    os.rename(src, dst)


def delete(root: Path, relpaths: list[str], *, recursive: bool = False) -> None:
    targets = [_existing(root, p) for p in relpaths]  # validate all before deleting any
    for path, rel in zip(targets, relpaths):
        if path.is_dir() and not path.is_symlink():
            if recursive:
                shutil.rmtree(path)
            else:
                try:
                    path.rmdir()
                except OSError as e:
                    raise InvalidPath(f"{rel!r} is a non-empty directory; use recursive.") from e
        else:
            path.unlink()
