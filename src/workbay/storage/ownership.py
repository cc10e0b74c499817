"""Who owns what the storage-proxy writes.

Sessions run their processes as the user's container uid/gid (1000:1000 unless the user's settings
say otherwise), so folders, uploaded files and created directories are handed to the acting user's
container owner, which the manager puts into the token (claim ``owner``) or the manager-facing
request (``owner``); without one they go to ``storage.file_owner``.  Otherwise a folder mounted
read-write would still refuse the session's writes.  Only possible (and only done) as root.

Confinement: a chown walks from the folder's directory to the target one component at a time
with ``O_NOFOLLOW`` directory descriptors and never follows the last component either, so a
symlink a session puts in the way (even while the proxy works) cannot lead a chown outside the
folder."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from workbay.common.errors import InvalidAPIParameters

from .errors import InvalidPath

Owner = tuple[int, int]
MAX_ID = 2**31 - 1

_default: Owner | None = None


def configure(spec: str) -> None:
    """``"uid:gid"``; empty leaves files owned by the proxy's own user."""
    global _default
    if not spec:
        _default = None
        return
    uid, _, gid = spec.partition(":")
    _default = (int(uid), int(gid or uid))


def parse_owner(value: object) -> Owner | None:
    """An ``owner`` from a token claim or a manager request: ``[uid, gid]`` (or ``"uid:gid"``);
    None when absent.  Anything else is refused (a 400), never guessed."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.split(":")
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InvalidAPIParameters("owner is [uid, gid].")
    ids = []
    for v in value:
        if isinstance(v, str) and v.isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_ID:
            raise InvalidAPIParameters(f"owner ids are integers from 0 to {MAX_ID}.")
        ids.append(v)
    return ids[0], ids[1]


def effective(owner: Owner | None) -> Owner | None:
    """The owner to give new files: the acting user's, else ``storage.file_owner``; None when the
    proxy cannot chown (not root) or nobody is configured."""
    if os.geteuid() != 0:
        return None
    return owner or _default


def give_fd(fd: int, owner: Owner | None = None) -> None:
    """Hand an open file or directory (just created by the proxy) to ``owner`` or the default."""
    who = effective(owner)
    if who is not None:
        os.fchown(fd, *who)


def give_at(dir_fd: int, name: str, owner: Owner | None = None) -> None:
    """Hand the entry ``name`` of an open directory to ``owner``; a link is chowned as a link."""
    who = effective(owner)
    if who is not None:
        os.chown(name, *who, dir_fd=dir_fd, follow_symlinks=False)


def _relative(folder: Path, path: Path) -> tuple[Path, tuple[str, ...]]:
    real = Path(os.path.realpath(folder))
    try:
        rel = Path(path).relative_to(real)
    except ValueError:
        raise InvalidPath("The path escapes the folder.") from None
    if any(p in ("..", "") for p in rel.parts):
        raise InvalidPath("The path escapes the folder.")
    return real, rel.parts


def _chown_inside(folder: Path, path: Path, owner: Owner) -> None:
    real, parts = _relative(folder, path)
    fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if not parts:  # the folder itself
            os.fchown(fd, *owner)
            return
        for name in parts[:-1]:
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
        os.chown(parts[-1], *owner, dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def give(folder: Path, paths: Iterable[Path], owner: Owner | None = None) -> None:
    """Hand ``paths`` (absolute, inside ``folder``; the folder itself allowed) to ``owner`` or the
    default.  A path that vanished meanwhile is skipped; one outside the folder is refused."""
    who = effective(owner)
    if who is None:
        return
    for path in paths:
        try:
            _chown_inside(folder, Path(path), who)
        except FileNotFoundError:
            continue
        except NotADirectoryError:  # a component was swapped for a symlink or a file: not ours
            raise InvalidPath("The path changed while it was written.") from None
        except OSError as e:
            if e.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
                raise InvalidPath("The path changed while it was written.") from None
            raise


def give_tree(folder: Path, owner: Owner | None = None) -> None:
    """Hand a whole folder (a fresh clone no session mounts yet) to ``owner`` or the default;
    walked by descriptor, symlinks are chowned as links, never followed."""
    from . import safe_fs

    who = effective(owner)
    if who is None:
        return
    with safe_fs.folder_fd(folder) as fd:
        os.fchown(fd, *who)
        for _, entry, dfd in safe_fs.walk_tree(fd):
            try:
                os.chown(entry.name, *who, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
