"""Storage-proxy: confinement of folder-relative paths."""

from __future__ import annotations

import os

import pytest

from workbay.storage.errors import InvalidPath
from workbay.storage.paths import check_name, clean_relpath, confine


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "..", "a/..", "/etc/passwd", "\\x", "a\0b",
                                 "x" * 256, "a/" + "y" * 256])
def test_bad_relpaths_are_refused(tmp_path, bad):
    with pytest.raises(InvalidPath):
        confine(tmp_path, bad)


@pytest.mark.parametrize("rel,expected", [("", "."), (".", "."), ("a/b", "a/b"), ("./a//b/", "a/b")])
def test_clean_relpath(rel, expected):
    assert str(clean_relpath(rel)) == expected


def test_inside_paths_resolve_under_root(tmp_path):
    (tmp_path / "a").mkdir()
    assert confine(tmp_path, "a/file.txt") == tmp_path.resolve() / "a" / "file.txt"
    assert confine(tmp_path, "") == tmp_path.resolve()


def test_symlink_escape_is_refused(tmp_path):
    root = tmp_path / "folder"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    os.symlink("/etc/passwd", root / "passwd")
    os.symlink("inner", root / "ok")
    (root / "inner").mkdir()
    for rel in ("link", "link/x", "passwd"):
        with pytest.raises(InvalidPath):
            confine(root, rel)
    # the link itself (not followed) may be renamed or deleted, but not traversed
    assert confine(root, "link", follow_last=False) == root.resolve() / "link"
    with pytest.raises(InvalidPath):
        confine(root, "link/x", follow_last=False)
    assert confine(root, "ok/f") == root.resolve() / "inner" / "f"


def test_names():
    assert check_name("é" * 127) == "é" * 127  # 254 bytes
    for bad in ("", ".", "..", "a/b", "a\0", "é" * 128):
        with pytest.raises(InvalidPath):
            check_name(bad)
