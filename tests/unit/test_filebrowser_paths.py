"""The File Browser's pure helpers (no tornado on the host): path confinement to the root, names,
the operations behind the API on a temporary tree, streamed zips, the service factory's root check."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from workbay.runner import fb_paths as fb
from workbay.runner import fb_server, services
from workbay.runner.prepare import ContainerUser


def test_modules_import_without_tornado():
    code = ("import sys; sys.modules['tornado'] = None; import workbay.runner.fb_paths as fb; "
            "import workbay.runner.fb_server, workbay.runner.filebrowser; "
            "assert fb.split_path('a/b') == ['a', 'b']")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# -- the page: a static template beside the runner --------------------------------------------------
def test_page_renders_from_the_template():
    page = fb_server.load_page()
    with open(os.path.join(os.path.dirname(fb_server.__file__), "filebrowser.html"), encoding="utf-8") as f:
        assert page == f.read()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<title>File Browser</title>" in page
    # uploads of whole folders (input and drag & drop) and the API it calls
    for marker in ("webkitdirectory", "webkitGetAsEntry", "/api/list", "/api/upload", "X-Requested-With"):
        assert marker in page, marker
    # self-contained: the CSP allows nothing from elsewhere
    assert "<script src=" not in page and '<link rel="stylesheet"' not in page
    assert "default-src 'none'" in fb_server.PAGE_CSP


def test_a_missing_template_is_an_error_naming_it(tmp_path):
    missing = str(tmp_path / "filebrowser.html")
    with pytest.raises(RuntimeError, match="filebrowser.html cannot be read"):
        fb_server.load_page(missing)


def test_the_template_ships_with_the_package():
    # inside the runner directory (bind-mounted whole into containers) ...
    assert resources.files("workbay.runner").joinpath("filebrowser.html").is_file()
    # ... and named by the package data, so wheels carry it
    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["workbay"]
    shipped = {p.relative_to(root / "src" / "workbay").as_posix()
               for pat in patterns for p in (root / "src" / "workbay").glob(pat)}
    assert "runner/filebrowser.html" in shipped


def test_the_script_runs_from_a_copy_of_the_runner_directory(tmp_path):
    """Inside the container the runner is ``/opt/workbay/runner`` (a package named ``runner``) and
    filebrowser.py is run as a script: it must find fb_server and the template there."""
    runner_dir = Path(fb_server.__file__).parent
    copy = tmp_path / "opt" / "runner"
    shutil.copytree(runner_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-I", str(copy / "filebrowser.py"), "--help"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and "--root" in done.stdout, done.stderr
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import runner.fb_server as s; "
             "assert 'webkitdirectory' in s.load_page()")
    done = subprocess.run([sys.executable, "-I", "-c", probe, str(copy.parent)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("rel, parts", [
    ("", []), (None, []), (".", []), ("a", ["a"]), ("a/b/c.txt", ["a", "b", "c.txt"]),
    ("a//b/", ["a", "b"]), ("./a/./b", ["a", "b"]), ("with space/ünïcødé", ["with space", "ünïcødé"]),
    ("..a/b..", ["..a", "b.."]), ("a\\b", ["a\\b"]),
])
def test_split_path_accepts(rel, parts):
    assert fb.split_path(rel) == parts


@pytest.mark.parametrize("rel", ["..", "../x", "a/../../b", "a/..", "/etc", "/", "\\x", "a\x00b", 5,
                                 "a/" + "x" * 256])
def test_split_path_refuses(rel):
    with pytest.raises(fb.PathError) as e:
        fb.split_path(rel)
    assert e.value.status == 400


def test_names():
    assert fb.check_name("x" * 255) == "x" * 255
    assert fb.check_name("é" * 127) == "é" * 127  # 254 bytes
    for bad in ("", ".", "..", "a/b", "a\x00", "é" * 128, None, 3):
        with pytest.raises(fb.PathError):
            fb.check_name(bad)


def test_within():
    assert fb.within("/home/work/data", "/home/work/data")
    assert fb.within("/home/work/data", "/home/work/data/x")
    assert fb.within("/home/work/data/", "/home/work/data/x")
    assert not fb.within("/home/work/data", "/home/work/data2")
    assert not fb.within("/home/work/data", "/home/work")
    assert fb.within("/", "/etc")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "c.txt").write_text("c")
    (root / "a" / "d.txt").write_text("dd")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink(outside, root / "out-dir")
    os.symlink(outside / "secret", root / "out-file")
    os.symlink(root / "a" / "d.txt", root / "in-file")
    os.symlink("a", root / "in-dir")
    os.symlink(tmp_path / "nowhere", root / "broken")
    return root


def test_resolve_confines(tree):
    root = str(tree)
    assert fb.resolve(root, "") == os.path.realpath(root)
    assert fb.resolve(root, "a/b/c.txt") == os.path.join(os.path.realpath(root), "a/b/c.txt")
    assert fb.resolve(root, "in-file").endswith("/a/d.txt")  # links inside the root are walked
    assert fb.resolve(root, "in-file", follow=False).endswith("/in-file")
    assert fb.resolve(root, "in-dir/b/c.txt").endswith("/a/b/c.txt")
    assert fb.resolve(root, "a/there.txt").endswith("/a/there.txt")
    with pytest.raises(fb.PathError) as e:
        fb.resolve(root, "not/yet/there.txt")
    assert e.value.status == 404
    for rel in ("out-dir", "out-file", "out-dir/secret", "out-dir/new.txt"):
        with pytest.raises(fb.PathError) as e:
            fb.resolve(root, rel)
        assert e.value.status == 403, rel
    # a link itself may be renamed or deleted (not followed), but never walked through
    assert fb.resolve(root, "out-dir", follow=False).endswith("/out-dir")
    with pytest.raises(fb.PathError):
        fb.resolve(root, "out-dir/secret", follow=False)
    for rel in ("../outside/secret", "/etc/passwd", "a/../../outside"):
        with pytest.raises(fb.PathError):
            fb.resolve(root, rel)


def test_root_is_a_symlink(tmp_path, tree):
    link = tmp_path / "root-link"
    os.symlink(tree, link)
    assert fb.resolve(str(link), "a/d.txt") == os.path.join(os.path.realpath(tree), "a", "d.txt")


def test_root_allowed(tmp_path):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "file").write_text("x")
    os.symlink(tmp_path, home / "escape")
    h = str(home)
    assert fb.root_allowed(None, h) == os.path.realpath(h)
    assert fb.root_allowed("", h) == os.path.realpath(h)
    assert fb.root_allowed(h + "/data", h) == os.path.realpath(h + "/data")
    assert fb.root_allowed("data", h) == os.path.realpath(h + "/data")
    for bad in ("/etc", h + "/../", h + "/escape", h + "/nope", h + "/file", "../x", "/", h + "x",
                "a\x00b"):
        with pytest.raises(ValueError):
            fb.root_allowed(bad, h)


def test_service_factory_checks_the_root(tmp_path):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    user = ContainerUser("work", os.getuid(), os.getgid(), str(home), [])
    for root in ("/etc", str(tmp_path), str(home / "missing")):
        ctx = services.Context(user, [8095], args={"root": root})
        with pytest.raises(ValueError):
            services.SERVICES["filebrowser"](ctx)
    assert services.SERVICES["filebrowser"](services.Context(user, [], args={})) is None
    ctx = services.Context(user, [8095], runtime_path=sys.executable, args={"root": str(home / "data")})
    sdef = services.SERVICES["filebrowser"](ctx)
    try:
        import tornado  # noqa: F401
    except ImportError:
        assert sdef is None  # this Python cannot run it (the images' can)
    else:
        assert sdef.command[-4:] == ["--root", os.path.realpath(home / "data"), "--home", str(home)]


def test_ensure_dirs(tree):
    root = str(tree)
    made = fb.ensure_dirs(root, ["x", "y", "z"])
    assert os.path.isdir(made) and made.endswith("/x/y/z")
    assert fb.ensure_dirs(root, ["x", "y"]).endswith("/x/y")  # existing ones are fine
    assert fb.ensure_dirs(root, ["in-dir", "new"]).endswith("/a/new")
    with pytest.raises(fb.PathError) as e:
        fb.ensure_dirs(root, ["out-dir", "new"])
    assert e.value.status == 403 and not os.path.exists(tree.parent / "outside" / "new")
    with pytest.raises(fb.PathError) as e:
        fb.ensure_dirs(root, ["a", "d.txt", "x"])
    assert e.value.status == 409
    with pytest.raises(fb.PathError):
        fb.ensure_dirs(root, ["..", "x"])


def test_listing(tree):
    items = {i["name"]: i for i in fb.list_dir(str(tree))}
    assert items["a"]["type"] == "dir" and items["in-dir"]["type"] == "dir"
    assert items["in-file"]["type"] == "file" and items["in-file"]["size"] == 2 and items["in-file"]["link"]
    assert items["out-dir"]["type"] == "outside" and items["out-file"]["type"] == "outside"
    assert items["broken"]["type"] == "broken"
    names = [i["name"] for i in fb.list_dir(str(tree))]
    assert names.index("a") < names.index("broken")  # folders first
    (tree / (fb.TMP_PREFIX + "abc")).write_text("partial")
    assert fb.TMP_PREFIX + "abc" not in {i["name"] for i in fb.list_dir(str(tree))}


def test_operations(tree):
    root = str(tree)
    fb.op_mkdir(root, "new")
    assert (tree / "new").is_dir()
    with pytest.raises(fb.PathError) as e:
        fb.op_mkdir(root, "new")
    assert e.value.status == 409 and "File exists" in e.value.message
    fb.op_mkdir(root, "p/q/r", parents=True)
    assert (tree / "p/q/r").is_dir()
    fb.op_touch(root, "new/empty.txt")
    assert (tree / "new/empty.txt").read_bytes() == b""
    with pytest.raises(fb.PathError):
        fb.op_touch(root, "new/empty.txt")
    fb.op_rename(root, "a/d.txt", "e.txt")
    assert (tree / "a/e.txt").read_text() == "dd"
    with pytest.raises(fb.PathError) as e:
        fb.op_rename(root, "a/e.txt", "b")
    assert e.value.status == 409
    for bad in ("../x", "x/y", "", "." * 2):
        with pytest.raises(fb.PathError):
            fb.op_rename(root, "a/e.txt", bad)
    with pytest.raises(fb.PathError):
        fb.op_rename(root, "", "x")  # not the root itself
    with pytest.raises(fb.PathError) as e:
        fb.op_rename(root, "a/missing", "x")
    assert e.value.status == 404
    fb.op_move(root, ["a/e.txt", "new/empty.txt"], "p/q")
    assert (tree / "p/q/e.txt").exists() and (tree / "p/q/empty.txt").exists()
    with pytest.raises(fb.PathError) as e:
        fb.op_move(root, ["a"], "a/b")
    assert e.value.status == 400 and "into itself" in e.value.message
    with pytest.raises(fb.PathError):
        fb.op_move(root, ["a"], "out-dir")
    with pytest.raises(fb.PathError) as e:
        fb.op_move(root, ["p/q/e.txt"], "p/q")
    assert e.value.status == 409
    (tree / "e.txt").write_text("other")
    with pytest.raises(fb.PathError) as e:
        fb.op_move(root, ["p/q/e.txt"], "")
    assert e.value.status == 409 and (tree / "e.txt").read_text() == "other"
    fb.op_delete(root, ["p", "e.txt", "out-dir"])  # a link to outside goes, not what it points to
    assert not (tree / "p").exists() and not os.path.lexists(tree / "out-dir")
    assert (tree.parent / "outside" / "secret").read_text() == "s"
    with pytest.raises(fb.PathError):
        fb.op_delete(root, [""])
    with pytest.raises(fb.PathError):
        fb.op_delete(root, [])


def test_fs_errors():
    ro = fb.fs_error(OSError(errno.EROFS, "x"), "a.txt")
    assert ro.status == 403 and ro.message == "a.txt: Read-only file system"
    assert fb.fs_error(OSError(errno.ENOENT, "x")).status == 404
    assert fb.fs_error(OSError(errno.EEXIST, "x")).status == 409
    assert fb.fs_error(OSError(errno.EDQUOT, "x")).status == 507
    assert fb.fs_error(OSError(errno.EIO, "x")).status == 500


def test_content_disposition():
    assert fb.content_disposition("a.txt") == "attachment; filename=\"a.txt\"; filename*=UTF-8''a.txt"
    cd = fb.content_disposition('ü "x".zip')
    assert 'filename="_ _x_.zip"' in cd and "filename*=UTF-8''%C3%BC%20%22x%22.zip" in cd


def test_zip_stream(tree):
    root_real = os.path.realpath(tree)
    (tree / "a" / "big.bin").write_bytes(os.urandom(300_000))
    chunks = list(fb.iter_zip(root_real, [("a", "a"), ("in-file", "in-file")], chunk=64 * 1024))
    assert len(chunks) > 2  # streamed, not one block
    z = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert z.testzip() is None
    assert set(z.namelist()) == {"a/", "a/b/", "a/b/c.txt", "a/d.txt", "a/big.bin", "in-file"}
    assert z.read("a/big.bin") == (tree / "a" / "big.bin").read_bytes()
    assert z.read("in-file") == b"dd"
    # the whole root: links leading outside are left out, links to folders are not followed
    z = zipfile.ZipFile(io.BytesIO(b"".join(fb.iter_zip(root_real, [("", "root")]))))
    names = set(z.namelist())
    assert "root/a/b/c.txt" in names and "root/in-file" in names
    assert not any("secret" in n or n.startswith("root/out-") or n.startswith("root/in-dir/") for n in names)


def test_listing_names_that_are_not_utf8(tmp_path):
    os.mkdir(os.fsencode(tmp_path) + b"/bad-\xff-name")
    (items,) = fb.list_dir(str(tmp_path))
    assert items["type"] == "badname" and items["name"] == "bad-\ufffd-name"
    assert json.dumps(items)  # the listing stays valid JSON
    (tmp_path / "ok.txt").write_text("ok")
    with open(os.fsencode(tmp_path) + b"/bad-\xff-name/f", "w") as f:
        f.write("x")
    z = zipfile.ZipFile(io.BytesIO(b"".join(fb.iter_zip(str(tmp_path), [("", "t")]))))
    assert z.namelist() == ["t/", "t/ok.txt"]


def test_links_are_walked_by_descriptor_and_never_out_of_the_root(tree):
    root = str(tree)
    os.symlink("../a/b", tree / "a" / "up-and-back")   # relative, stays inside
    os.symlink("../../outside", tree / "a" / "escape")  # relative, leaves the root by '..'
    os.symlink("in-dir", tree / "chain")                 # a link to a link
    os.symlink("loop2", tree / "loop1")
    os.symlink("loop1", tree / "loop2")
    assert fb.resolve(root, "a/up-and-back/c.txt").endswith("/a/b/c.txt")
    assert fb.resolve(root, "chain/b").endswith("/a/b")
    with pytest.raises(fb.PathError) as e:
        fb.resolve(root, "a/escape/secret")
    assert e.value.status == 403
    with pytest.raises(fb.PathError) as e:
        fb.resolve(root, "loop1/x")
    assert e.value.status == 400
    # writes through a link leading outside are refused; the link itself can go
    with pytest.raises(fb.PathError):
        fb.op_touch(root, "out-dir/new.txt")
    with pytest.raises(fb.PathError):
        fb.op_mkdir(root, "out-dir/x/y", parents=True)
    assert sorted(os.listdir(tree.parent / "outside")) == ["secret"]


def test_only_regular_files_are_opened(tree):
    os.mkfifo(tree / "pipe")
    with fb.locate(str(tree), "pipe") as loc:
        with pytest.raises(fb.PathError) as e:
            fb.open_file(loc)  # O_NONBLOCK: returns at once, refused after fstat
    assert e.value.status == 400
    with fb.locate(str(tree), "in-file") as loc:
        fd, st = fb.open_file(loc)
        try:
            assert os.read(fd, 10) == b"dd"
        finally:
            os.close(fd)
    z = zipfile.ZipFile(io.BytesIO(b"".join(fb.iter_zip(str(tree), [("", "t")]))))
    assert "t/pipe" not in z.namelist() and "t/a/d.txt" in z.namelist()
