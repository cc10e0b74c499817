"""Storage-proxy: folder-relative paths are walked by descriptor and never follow a symlink (a
link in the middle, at the end, relative with '..', absolute), and only regular files are ever
opened for reading (a FIFO or a device node is refused without being opened)."""

from __future__ import annotations

import os
import stat
import time
import zipfile

import pytest

from workbay.storage import files, safe_fs, tus
from workbay.storage.errors import FileExists, InvalidPath, NotFound, NotRegularFile
from workbay.storage.volumes import Volume, copy_tree, tree_usage


@pytest.fixture
def world(tmp_path):
    """A folder with a directory, a file, and links of every kind leading out of it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    folder = tmp_path / "folder"
    (folder / "d").mkdir(parents=True)
    (folder / "d" / "f.txt").write_text("mine")
    os.symlink(outside, folder / "abs")                 # absolute link to a directory
    os.symlink("../outside", folder / "rel")            # relative link with '..'
    os.symlink(outside / "secret.txt", folder / "file_link")
    os.symlink("d", folder / "inner")                   # a link that stays inside
    return folder, outside


def opened(folder, rel):
    with safe_fs.folder_fd(folder) as rfd:
        fd, st, name = safe_fs.open_path(rfd, rel)
    try:
        return os.pread(fd, 100, 0) if stat.S_ISREG(st.st_mode) else None, name
    finally:
        os.close(fd)


def test_regular_paths_open(world):
    folder, _ = world
    assert opened(folder, "d/f.txt") == (b"mine", "f.txt")
    assert opened(folder, "./d//f.txt") == (b"mine", "f.txt")
    assert opened(folder, "d") == (None, "d")
    assert opened(folder, "") == (None, "")


@pytest.mark.parametrize("rel", ["abs/secret.txt", "rel/secret.txt", "file_link", "abs", "rel",
                                 "inner/f.txt", "inner"])
def test_links_are_never_followed(world, rel):
    folder, _ = world
    with pytest.raises(InvalidPath):
        opened(folder, rel)


@pytest.mark.parametrize("rel", ["../outside/secret.txt", "/etc/passwd", "d/../../outside"])
def test_syntax_is_still_checked(world, rel):
    with pytest.raises(InvalidPath):
        opened(world[0], rel)


def test_missing_and_not_a_directory(world):
    folder, _ = world
    with pytest.raises(NotFound):
        opened(folder, "nope/x")
    with pytest.raises(InvalidPath):
        opened(folder, "d/f.txt/x")


def test_fifo_is_refused_without_blocking(world):
    folder, _ = world
    os.mkfifo(folder / "pipe")
    started = time.monotonic()
    with pytest.raises(NotRegularFile):
        opened(folder, "pipe")
    with pytest.raises(NotRegularFile):
        opened(folder, "pipe")
    assert time.monotonic() - started < 5  # an open(O_RDONLY) of a FIFO would block forever


def test_device_and_socket_are_refused_unopened(world):
    import socket

    folder, _ = world
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "sock"))
        with pytest.raises(NotRegularFile):
            opened(folder, "sock")
    if os.geteuid() == 0:  # only root makes device nodes (the proxy runs as root)
        os.mknod(folder / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        with pytest.raises(NotRegularFile):
            opened(folder, "null")


def test_listing_shows_links_as_links(world):
    folder, _ = world
    items = {i["name"]: i["type"] for i in files.list_dir(folder, "")}
    assert items["abs"] == items["file_link"] == "SYMLINK" and items["d"] == "DIRECTORY"
    for rel in ("abs", "rel", "inner", "abs/"):
        with pytest.raises(InvalidPath):
            files.list_dir(folder, rel)


def test_writes_never_go_through_links(world):
    folder, outside = world
    for rel in ("abs/new", "rel/new", "inner/new"):
        with pytest.raises(InvalidPath):
            files.mkdir(folder, rel)
        with pytest.raises(InvalidPath):
            files.mkdir(folder, rel + "/deeper", parents=True)
    with pytest.raises(InvalidPath):
        files.rename(folder, "abs/secret.txt", "x")
    with pytest.raises(InvalidPath):
        files.move(folder, "d/f.txt", "abs/f.txt")
    with pytest.raises(InvalidPath):
        files.move(folder, "abs/secret.txt", "d")
    with pytest.raises(InvalidPath):
        files.delete(folder, ["abs/secret.txt"])
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "SECRET"


def test_links_as_last_component_are_renamed_moved_deleted_as_links(world):
    folder, outside = world
    files.rename(folder, "abs", "abs2")
    assert os.readlink(folder / "abs2") == str(outside)
    files.move(folder, "abs2", "d")  # into the directory d, as a link
    assert os.path.islink(folder / "d" / "abs2")
    files.delete(folder, ["d/abs2", "file_link", "rel"], recursive=True)
    assert not os.path.lexists(folder / "d" / "abs2") and not os.path.lexists(folder / "rel")
    assert (outside / "secret.txt").read_text() == "SECRET"


def test_move_into_itself_and_exists(world):
    folder, _ = world
    (folder / "d" / "sub").mkdir()
    with pytest.raises(InvalidPath):
        files.move(folder, "d", "d/sub")
    (folder / "g.txt").write_text("g")
    with pytest.raises(FileExists):
        files.move(folder, "g.txt", "d/f.txt")
    with pytest.raises(FileExists):
        files.rename(folder, "g.txt", "d")


def test_mkdir_parents(world):
    folder, _ = world
    files.mkdir(folder, "a/b/c", parents=True)
    assert (folder / "a" / "b" / "c").is_dir()
    files.mkdir(folder, "a/b/c", parents=True, exist_ok=True)
    with pytest.raises(FileExists):
        files.mkdir(folder, "a/b/c")
    with pytest.raises(NotFound):
        files.mkdir(folder, "x/y")
    with pytest.raises(InvalidPath):
        files.mkdir(folder, "d/f.txt/y", parents=True)


def test_upload_placement_never_follows(tmp_path, world):
    folder, outside = world
    volume = Volume("v", tmp_path / "vol")
    for rel in ("abs/pwn.txt", "rel/pwn.txt", "inner/pwn.txt", "abs/new/pwn.txt"):
        with pytest.raises(InvalidPath):
            tus.check_target(folder, rel)
        (volume.upload_dir / "part").write_text("PWN")
        with pytest.raises(InvalidPath):
            tus.place(volume, folder, "part", rel)
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    # a link as the last component is replaced by the upload, never written through
    tus.place(volume, folder, "part", "file_link")
    assert not os.path.islink(folder / "file_link") and (folder / "file_link").read_text() == "PWN"
    assert (outside / "secret.txt").read_text() == "SECRET"
    (volume.upload_dir / "part").write_text("deep")
    tus.place(volume, folder, "part", "new/dirs/x.txt")
    assert (folder / "new" / "dirs" / "x.txt").read_text() == "deep"
    with pytest.raises(InvalidPath):
        tus.check_target(folder, "d")


def test_usage_and_clone_do_not_follow(tmp_path, world):
    folder, outside = world
    (outside / "big").write_bytes(b"x" * 10_000)
    used, count = tree_usage(folder)
    assert used < 10_000 and count == 5  # f.txt and four links
    os.mkfifo(folder / "pipe")
    clone = tmp_path / "clone"
    clone.mkdir()
    with safe_fs.folder_fd(folder) as s, safe_fs.folder_fd(clone) as d:
        copy_tree(s, d)
    assert (clone / "d" / "f.txt").read_text() == "mine"
    assert os.path.islink(clone / "abs") and os.readlink(clone / "abs") == str(outside)
    assert not os.path.lexists(clone / "pipe")


def test_zip_of_a_directory_leaves_links_out(world):
    import asyncio

    from workbay.storage.download import Handle, _zip_chunks

    folder, _ = world
    os.symlink(folder.parent / "outside" / "secret.txt", folder / "d" / "leak")
    with safe_fs.folder_fd(folder) as rfd:
        fd, st, _ = safe_fs.open_path(rfd, "")

    async def collect() -> bytes:
        return b"".join([c async for c in _zip_chunks([(Handle(fd), st, "top")])])

    import io
    zf = zipfile.ZipFile(io.BytesIO(asyncio.run(collect())))
    names = sorted(zf.namelist())
    assert "top/d/f.txt" in names and zf.read("top/d/f.txt") == b"mine"
    assert not any("leak" in n or "secret" in n or "abs/" in n for n in names)
