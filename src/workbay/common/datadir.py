"""The data dir and the private files in it: the directory is 0700, what Workbay keeps there for
itself (database, secrets, generated passwords, kernel logs) 0600.  Older installations made them
0644/0755; ``secure_data_dir`` fixes that at every start."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

# Files Workbay writes at the top of the data dir.
PRIVATE_FILES = ("secrets.toml", ".secrets.lock", ".secrets.toml.tmp", "initial-admin-password",
                 "demo-password", "workbay.db", "workbay.db-wal", "workbay.db-shm",
                 "workbay.db-journal")
# Directories whose whole content is private to the process (kernels/ and scratch/ are mounted
# into containers and volumes/ holds users' folders: each keeps its own modes).
PRIVATE_TREES = ("kernel-logs",)
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _chmod(path: Path, mode: int) -> None:
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
            return
        os.chmod(path, mode)
    except FileNotFoundError:
        return
    except PermissionError as e:  # not ours: say so, the operator decides
        log.warning("cannot make %s private (mode %o): %s", path, mode, e)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; the directory itself becomes 0700."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _chmod(path, 0o700)
    return path


def private_tree(path: Path) -> Path:
    """A 0700 directory whose files are 0600 and subdirectories 0700 (existing content fixed)."""
    private_dir(path)
    for root, dirs, files in os.walk(path):
        for d in dirs:
            _chmod(Path(root) / d, 0o700)
        for f in files:
            _chmod(Path(root) / f, 0o600)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only the process's user can read (an existing file included)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
    finally:
        if fd >= 0:
            os.close(fd)


def secure_data_dir(data_dir: Path) -> Path:
    """Create the data dir 0700 and make the private files already in it 0600."""
    data_dir = private_dir(Path(data_dir))
    for name in PRIVATE_FILES:
        _chmod(data_dir / name, 0o600)
    for name in PRIVATE_TREES:
        if (data_dir / name).is_dir():
            private_tree(data_dir / name)
    return data_dir


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite+aiosqlite:///`` URL (None for memory or other databases)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.get_backend_name() == "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def prepare_sqlite_file(url: str) -> None:
    """Create a SQLite database file 0600 before the first connection (SQLite gives its -wal and
    -shm files the database file's mode) and make an existing one and its side files 0600."""
    path = sqlite_path(url)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    _chmod(path, 0o600)
    for suffix in SQLITE_SIDE_FILES:
        _chmod(path.with_name(path.name + suffix), 0o600)
