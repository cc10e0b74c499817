"""File operations inside one folder (blocking; the HTTP layer runs them in a thread)."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

from .errors import FileExists, InvalidPath, NotFound
from .paths import check_name, clean_relpath, confine


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


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
    items = []
    with os.scandir(path) as it:
        for entry in it:
            st = entry.stat(follow_symlinks=False)
            items.append({"name": entry.name, "type": entry_type(st.st_mode), "size": st.st_size,
                          "mode": oct(stat.S_IMODE(st.st_mode)),
                          "created": _iso(st.st_ctime), "modified": _iso(st.st_mtime)})
    items.sort(key=lambda i: (i["type"] != "DIRECTORY", i["name"]))
    return items


def mkdir(root: Path, relpath: str, *, parents: bool = False, exist_ok: bool = False) -> None:
    if clean_relpath(relpath).name == "":
        raise InvalidPath("A directory name is required.")
    path = confine(root, relpath, follow_last=False)
    try:
        path.mkdir(parents=parents, exist_ok=exist_ok)
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
