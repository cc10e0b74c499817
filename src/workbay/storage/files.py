"""File operations inside one folder (blocking; the HTTP layer runs them in a thread).

Every path is walked by descriptor from the folder's directory (``safe_fs``): no symlink is
followed, a symlink as the last component is listed, renamed, moved or deleted as a link."""

from __future__ import annotations

import errno
import math
import os
import shutil
import stat
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path

from . import ownership, safe_fs
from .errors import FileExists, InvalidPath, NotFound
from .paths import check_name


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
    parts = safe_fs.split(relpath)
    with safe_fs.folder_fd(root) as rfd:
        if parts:
            with safe_fs.dir_of(rfd, parts[:-1], relpath) as pfd:
                st = safe_fs.lstat_at(pfd, parts[-1])
                if st is None or not (stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                    raise NotFound(f"Not a directory: {relpath!r}")
                dfd = safe_fs.open_dir_at(pfd, parts[-1], relpath)
        else:
            dfd = os.dup(rfd)
        try:
            return _list_fd(dfd)
        finally:
            safe_fs.close(dfd)


def _list_fd(dfd: int) -> list[dict]:
    iso = _IsoCache()
    dirs, others = [], []
    for entry in safe_fs.scandir_fd(dfd):
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed while listed
            continue
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
    parts = safe_fs.split(relpath)
    if not parts:
        raise InvalidPath("A directory name is required.")
    created: list[tuple[int, str]] = []
    with safe_fs.folder_fd(root) as rfd:
        try:
            try:
                dfd = safe_fs.walk(rfd, parts[:-1], relpath, create=parents, created=created)
            except NotFound as e:
                raise NotFound(f"The parent of {relpath!r} does not exist.") from e
            try:
                try:
                    os.mkdir(parts[-1], safe_fs.DIR_MODE, dir_fd=dfd)
                except FileExistsError:
                    st = safe_fs.lstat_at(dfd, parts[-1])
                    if exist_ok and st is not None and stat.S_ISDIR(st.st_mode):
                        return
                    raise FileExists(f"{relpath!r} already exists.") from None
                created.append((safe_fs.open_dir_at(dfd, parts[-1], relpath), relpath))
            finally:
                safe_fs.close(dfd)
            for fd, _ in created:
                ownership.give_fd(fd, owner)
        finally:
            for fd, _ in created:
                safe_fs.close(fd)


def _must_exist(dfd: int, name: str, relpath: str) -> os.stat_result:
    st = safe_fs.lstat_at(dfd, name)
    if st is None:
        raise NotFound(f"No such file: {relpath!r}")
    return st


def rename(root: Path, target_path: str, new_name: str) -> None:
    check_name(new_name)
    with safe_fs.folder_fd(root) as rfd, safe_fs.parent_of(rfd, target_path) as (dfd, name):
        _must_exist(dfd, name, target_path)
        if safe_fs.exists_at(dfd, new_name):
            raise FileExists(f"{new_name!r} already exists.")
        os.rename(name, new_name, src_dir_fd=dfd, dst_dir_fd=dfd)


def move(root: Path, src_path: str, dst_path: str) -> None:
    dparts = safe_fs.split(dst_path)
    with safe_fs.folder_fd(root) as rfd, safe_fs.parent_of(rfd, src_path) as (sfd, sname):
        _must_exist(sfd, sname, src_path)
        if not dparts:  # the folder itself: into its top
            dfd, dname = os.dup(rfd), sname
        else:
            try:
                dfd = safe_fs.walk(rfd, dparts[:-1], dst_path)
            except NotFound as e:
                raise NotFound(f"The parent of {dst_path!r} does not exist.") from e
            dname = dparts[-1]
            st = safe_fs.lstat_at(dfd, dname)
            if st is not None and stat.S_ISDIR(st.st_mode):  # into that directory
                try:
                    inner = safe_fs.open_dir_at(dfd, dname, dst_path)
                finally:
                    safe_fs.close(dfd)
                dfd, dname = inner, sname
        try:
            if safe_fs.exists_at(dfd, dname):
                raise FileExists(f"{dst_path!r} already exists.")
            try:
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
            except OSError as e:
                if e.errno == errno.EINVAL:  # the kernel refuses a directory into itself
                    raise InvalidPath("A directory cannot be moved into itself.") from None
                raise
        finally:
            safe_fs.close(dfd)


def delete(root: Path, relpaths: list[str], *, recursive: bool = False) -> None:
    with safe_fs.folder_fd(root) as rfd:
        for rel in relpaths:  # validate all before deleting any
            with safe_fs.parent_of(rfd, rel) as (dfd, name):
                _must_exist(dfd, name, rel)
        for rel in relpaths:
            with safe_fs.parent_of(rfd, rel) as (dfd, name):
                st = safe_fs.lstat_at(dfd, name)
                if st is None:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if recursive:  # the fd-based rmtree: never follows a link it meets
                        shutil.rmtree(name, dir_fd=dfd)
                    else:
                        try:
                            os.rmdir(name, dir_fd=dfd)
                        except OSError as e:
                            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                                raise InvalidPath(f"{rel!r} is a non-empty directory; "
                                                  "use recursive.") from e
                            raise
                else:
                    os.unlink(name, dir_fd=dfd)
