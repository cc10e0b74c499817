"""Folder-relative file access by descriptor: no symlink is ever followed, no check-then-use race.

Sessions write into their folders while the proxy (root) works in them, so a path checked by name
may be a symlink to any host file by the time it is used (a ``renameat2(RENAME_EXCHANGE)`` loop
wins that race often).  Every operation here therefore starts from a descriptor of the folder's
directory and opens each component with ``O_NOFOLLOW | O_DIRECTORY`` relative to the one before
(``openat``), and then acts on descriptors: ``openat``/``mkdirat``/``renameat``/``unlinkat``/
``fstatat`` on the last component, never following it.  A symlink inside a folder is an entry
like any other: it can be listed, renamed, moved or deleted as a link, never read or written
through.  The last component of a read is opened ``O_PATH`` first and its type checked, so a FIFO,
socket or device node is never opened at all (a FIFO would block a worker thread; opening a
device can have effects); only regular files are read, through a fresh descriptor of that same
inode (``/proc/self/fd``).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InvalidPath, NotFound, NotRegularFile
from .paths import clean_relpath

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
O_PATH = getattr(os, "O_PATH", 0)
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# files the proxy writes into folders: owner rw, group/other r (umask applies as for any write)
FILE_MODE = 0o644
DIR_MODE = 0o755


def split(relpath: str) -> list[str]:
    """The components of a folder-relative path (syntax checked: no NUL, no '..', no absolute)."""
    rel = clean_relpath(relpath)
    return [] if str(rel) == "." else list(rel.parts)


def close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def _refuse_component(dir_fd: int, name: str, relpath: str) -> Exception:
    """The error for a component that could not be opened as a directory without following."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return NotFound(f"No such file or directory: {relpath!r}")
    except OSError:
        return InvalidPath(f"{relpath!r} cannot be reached.")
    if stat.S_ISLNK(st.st_mode):
        return InvalidPath(f"{relpath!r} goes through a symbolic link; the storage proxy never "
                           "follows links.")
    return InvalidPath(f"{relpath!r}: a component of the path is not a directory.")


def open_dir_at(dir_fd: int, name: str, relpath: str = "") -> int:
    """A new descriptor of the directory ``name`` in ``dir_fd`` (never through a symlink)."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise NotFound(f"No such file or directory: {relpath or name!r}") from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise _refuse_component(dir_fd, name, relpath or name) from None
        raise


def open_folder(folder: Path) -> int:
    """A descriptor of a folder's own directory (the proxy's layout; its last component is never
    a link either)."""
    try:
        return os.open(folder, DIR_FLAGS)
    except FileNotFoundError:
        raise NotFound("The folder does not exist.") from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise InvalidPath("The folder is not a directory.") from None
        raise


@contextmanager
def folder_fd(folder: Path) -> Iterator[int]:
    fd = open_folder(folder)
    try:
        yield fd
    finally:
        close(fd)


def walk(root_fd: int, parts: list[str], relpath: str = "", *, create: bool = False,
         mode: int = DIR_MODE, created: list[tuple[int, str]] | None = None) -> int:
    """A new descriptor of the directory ``parts`` below ``root_fd``, each component opened
    ``O_NOFOLLOW | O_DIRECTORY`` relative to the one before.  With ``create`` missing
    directories are made (``mkdirat``) and opened the same way; ``created`` then receives a
    descriptor of each new directory (the caller hands them to their owner and closes them)."""
    fd = os.dup(root_fd)
    try:
        for i, name in enumerate(parts):
            where = "/".join(parts[: i + 1])
            if create:
                try:
                    os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    made = False
                else:
                    made = True
                child = open_dir_at(fd, name, where)
                if made and created is not None:
                    created.append((os.dup(child), where))
            else:
                child = open_dir_at(fd, name, relpath or where)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        close(fd)
        raise


@contextmanager
def dir_of(root_fd: int, parts: list[str], relpath: str = "", **kw) -> Iterator[int]:
    fd = walk(root_fd, parts, relpath, **kw)
    try:
        yield fd
    finally:
        close(fd)


@contextmanager
def parent_of(root_fd: int, relpath: str, **kw) -> Iterator[tuple[int, str]]:
    """(descriptor of the parent directory, last name) of a path that is not the folder itself."""
    parts = split(relpath)
    if not parts:
        raise InvalidPath("The folder itself cannot be changed.")
    with dir_of(root_fd, parts[:-1], relpath, **kw) as fd:
        yield fd, parts[-1]


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``fstatat(AT_SYMLINK_NOFOLLOW)``; None if there is no such entry."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def exists_at(dir_fd: int, name: str) -> bool:
    return lstat_at(dir_fd, name) is not None


def open_node(dir_fd: int, name: str, relpath: str = "") -> tuple[int, os.stat_result]:
    """A descriptor of the entry ``name`` in ``dir_fd`` that is a regular file or a directory,
    and its ``fstat``.  The entry is never followed if it is a link (refused), and a FIFO, socket
    or device is refused before it is opened (``O_PATH`` then ``fstat``): nothing blocks, nothing
    is triggered.  Regular files come back readable, directories usable as ``dir_fd``."""
    where = relpath or name
    if not O_PATH:  # not Linux: a non-blocking, non-following open, then the type check
        try:
            fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            raise NotFound(f"No such file: {where!r}") from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise InvalidPath(f"{where!r} is a symbolic link; links are never followed.") from None
            raise
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            close(fd)
            raise NotRegularFile(f"{where!r} is not a regular file.")
        return fd, st
    try:
        pfd = os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise NotFound(f"No such file: {where!r}") from None
    try:
        st = os.fstat(pfd)
        if stat.S_ISLNK(st.st_mode):
            raise InvalidPath(f"{where!r} is a symbolic link; links are never followed.")
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(".", DIR_FLAGS, dir_fd=pfd)
        elif stat.S_ISREG(st.st_mode):
            # the same inode, opened for reading (the magic link is not a path lookup)
            fd = os.open(f"/proc/self/fd/{pfd}", READ_FLAGS & ~os.O_NOFOLLOW)
        else:
            raise NotRegularFile(f"{where!r} is not a regular file (a FIFO, socket or device); "
                                 "only regular files are served.")
    finally:
        close(pfd)
    st2 = os.fstat(fd)
    if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) or \
            stat.S_IFMT(st2.st_mode) != stat.S_IFMT(st.st_mode):
        close(fd)
        raise InvalidPath(f"{where!r} changed while it was opened.")
    return fd, st2


def open_path(root_fd: int, relpath: str) -> tuple[int, os.stat_result, str]:
    """``open_node`` of a folder-relative path (the folder itself allowed): descriptor, stat, name
    ('' for the folder itself)."""
    parts = split(relpath)
    if not parts:
        fd = os.dup(root_fd)
        return fd, os.fstat(fd), ""
    with dir_of(root_fd, parts[:-1], relpath) as dfd:
        fd, st = open_node(dfd, parts[-1], relpath)
    return fd, st, parts[-1]


def scandir_fd(dir_fd: int) -> Iterator[os.DirEntry]:
    """The entries of an open directory (``os.scandir`` reads a duplicate; the entries' ``stat``
    is ``fstatat`` on ``dir_fd``, which must stay open while they are used)."""
    with os.scandir(dir_fd) as it:
        yield from it


def walk_tree(dir_fd: int) -> Iterator[tuple[str, os.DirEntry, int]]:
    """Every entry below an open directory, depth first, as (relative directory path, entry,
    descriptor of the directory holding it); subdirectories are opened ``O_NOFOLLOW`` from their
    parent, links are reported and never entered.  One descriptor per level is held."""
    stack: list[tuple[str, int, Iterator[os.DirEntry]]] = []
    top = os.dup(dir_fd)
    stack.append(("", top, scandir_fd(top)))
    try:
        while stack:
            prefix, fd, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                close(fd)
                continue
            yield prefix, entry, fd
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                try:
                    child = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
                except OSError:  # vanished, or swapped for a link meanwhile: not entered
                    continue
                path = f"{prefix}/{entry.name}" if prefix else entry.name
                stack.append((path, child, scandir_fd(child)))
    finally:
        for _, fd, entries in reversed(stack):
            entries.close()  # type: ignore[attr-defined]
            close(fd)


def tree_usage_fd(dir_fd: int) -> tuple[int, int]:
    """(bytes, entries other than directories) below an open directory; links never followed."""
    total = count = 0
    for _, entry, _fd in walk_tree(dir_fd):
        try:
            if entry.is_dir(follow_symlinks=False):
                continue
            total += entry.stat(follow_symlinks=False).st_size
            count += 1
        except OSError:
            continue
    return total, count
