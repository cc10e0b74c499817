"""Storage-proxy: syntax of folder-relative paths (where they lead: test_storage_safe_fs.py)."""

from __future__ import annotations

import pytest

from workbay.storage.errors import InvalidPath
from workbay.storage.paths import check_name, clean_relpath


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "..", "a/..", "/etc/passwd", "\\x", "a\0b",
                                 "x" * 256, "a/" + "y" * 256])
def test_bad_relpaths_are_refused(bad):
    with pytest.raises(InvalidPath):
        clean_relpath(bad)


@pytest.mark.parametrize("rel,expected", [("", "."), (".", "."), ("a/b", "a/b"), ("./a//b/", "a/b")])
def test_clean_relpath(rel, expected):
    assert str(clean_relpath(rel)) == expected


def test_names():
    assert check_name("é" * 127) == "é" * 127  # 254 bytes
    for bad in ("", ".", "..", "a/b", "a\0", "é" * 128):
        with pytest.raises(InvalidPath):
            check_name(bad)
