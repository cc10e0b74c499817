"""Syntax of client-supplied folder-relative paths.

Only the syntax is checked here (no NUL, no '..', not absolute, names of at most 255 bytes).
Where a path leads is never decided by name: ``safe_fs`` walks it by descriptor from the folder's
directory without following any symlink, so there is no check that a later swap could outrun."""

from __future__ import annotations

from pathlib import PurePosixPath

from .errors import InvalidPath

MAX_NAME = 255


def check_name(name: str) -> str:
    """A single path component: non-empty, no separators, no NUL, not . or .., ≤255 bytes."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise InvalidPath(f"Invalid name: {name!r}")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise InvalidPath(f"Name longer than {MAX_NAME} bytes.")
    return name


def clean_relpath(relpath: str) -> PurePosixPath:
    """Validate a folder-relative path syntactically ('' and '.' mean the folder itself)."""
    if not isinstance(relpath, str) or "\0" in relpath:
        raise InvalidPath("The path contains a NUL byte.")
    if relpath.startswith("/") or relpath.startswith("\\"):
        raise InvalidPath("Absolute paths are not allowed.")
    parts = [p for p in relpath.split("/") if p not in ("", ".")]
    for p in parts:
        if p == "..":
            raise InvalidPath("'..' is not allowed in paths.")
        check_name(p)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")
