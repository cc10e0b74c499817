"""Confinement of client-supplied relative paths to a folder's directory."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

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


def confine(root: Path, relpath: str, *, follow_last: bool = True) -> Path:
    """The absolute path of ``relpath`` inside ``root``, or InvalidPath.

    Symlinks are resolved and must stay inside the folder. With ``follow_last=False`` the last
    component itself may be a symlink (it is renamed/deleted/listed as a link, never followed),
    but its parent must resolve inside the folder.
    """
    rel = clean_relpath(relpath)
    real_root = Path(os.path.realpath(root))
    target = real_root / rel
    if rel == PurePosixPath("."):
        return real_root
    if follow_last:
        resolved = Path(os.path.realpath(target))
    else:
        resolved = Path(os.path.realpath(target.parent)) / target.name
    if resolved != real_root and real_root not in resolved.parents:
        raise InvalidPath("The path escapes the folder.")
    return resolved
