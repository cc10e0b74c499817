"""The File Browser app (AP-6, VF-4): a web file manager for one directory of the session
(a mounted storage folder, or the whole home), served inside the container through the app-proxy.

Browse (breadcrumbs, name/size/modified), upload files and whole directories with their structure
(``<input webkitdirectory>`` and drag & drop of folders), download files and folders (zip, streamed),
rename, move, delete, new folder, new empty file.  The page is self-contained (inline CSS and JS).

JSON API, every path relative to the root (``""`` is the root itself):

=========================================  ===================================================
``GET  /api/list?path=P``                  the folder's entries, whether it is writable
``PUT  /api/upload?path=P[&overwrite=1]``  the body is the file (streamed to a temporary file in
                                           the target folder, renamed when complete); missing
                                           parent folders are created
``POST /api/mkdir``   ``{"path", "parents"}``  a new folder
``POST /api/touch``   ``{"path"}``             a new empty file
``POST /api/rename``  ``{"path", "name"}``     rename in place
``POST /api/move``    ``{"paths", "to"}``      move into another folder
``POST /api/delete``  ``{"paths"}``            delete files and folders (recursively)
``GET  /api/download?path=P[&path=Q…]``    one file as is; a folder or several paths as a zip
=========================================  ===================================================

Mutating requests need an ``X-Requested-With`` header (a cross-site page cannot send one without
a CORS preflight, which this app never grants).  Errors answer ``{"error": message}`` with a 4xx
status (``403 Read-only file system`` for read-only mounts).  Every path is confined to the root:
no ``..``, no absolute paths, no NUL, names of at most 255 bytes, symlinks that lead outside the
root are refused.

Runs with the image's Python and tornado (which comes with Jupyter); the helpers at the top are
pure Python so the host can import and test them without tornado."""

from __future__ import annotations

import argparse
import errno
import json
import os
import secrets
import shutil
import stat
import time
import zipfile
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import quote

HOME = "/home/work"
MAX_NAME_BYTES = 255
MAX_UPLOAD_BYTES = 1 << 42  # 4 TiB: the storage decides, not this app
CHUNK = 256 * 1024
TMP_PREFIX = ".wbupload-"


class PathError(Exception):
    """A refused path or a failed file operation, with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


# -- paths ------------------------------------------------------------------------------------------
def check_name(name: Any) -> str:
    """One path component: not empty, not ``.``/``..``, no ``/`` or NUL, at most 255 bytes."""
    if not isinstance(name, str) or name in ("", ".", ".."):
        raise PathError("Invalid name.")
    if "/" in name or "\x00" in name:
        raise PathError("A name cannot contain '/' or NUL.")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise PathError(f"The name is too long (at most {MAX_NAME_BYTES} bytes).")
    return name


def split_path(rel: Any) -> List[str]:
    """The components of a path relative to the root (``""`` or ``"."`` is the root itself).
    Absolute paths, ``..``, NUL and over-long names are refused; empty and ``.`` components
    (``a//b/./c``, a trailing slash) are dropped."""
    if rel is None:
        return []
    if not isinstance(rel, str):
        raise PathError("A path must be a string.")
    if "\x00" in rel:
        raise PathError("A path cannot contain NUL.")
    if rel.startswith("/") or rel.startswith("\\"):
        raise PathError("Absolute paths are not allowed; paths are relative to the root.")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    for p in parts:
        if p == "..":
            raise PathError("'..' is not allowed in paths.")
        check_name(p)
    return parts


def within(root_real: str, path: str) -> bool:
    """Whether ``path`` (already resolved) is ``root_real`` or inside it."""
    root_real = root_real.rstrip("/") or "/"
    if root_real == "/":
        return path.startswith("/")
    return path == root_real or path.startswith(root_real + "/")


# -- walking by descriptor ----------------------------------------------------------------------------
# The session's processes change the tree while this app works in it, so a path is never checked
# by name and then used by name.  Each component is opened relative to the directory before it
# with O_NOFOLLOW; a symlink met on the way is read (readlinkat) and its target walked the same
# way from the root or from where it is, and only while it stays inside the root; the last
# component is acted on with *at calls relative to its parent's descriptor.  Nothing is ever
# followed by the kernel, so nothing swapped in meanwhile can lead outside the root.
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_LINKS = 40


def _close(fd: Optional[int]) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


class Located:
    """Where a path leads: the open directory holding its last component (``dir_fd``), that
    component's ``name`` ("" for the root itself) and the real path relative to the root
    (``rel``, links resolved).  A context manager: the descriptors are closed on exit."""

    def __init__(self, root_real: str, stack: List[Tuple[int, str]], name: str) -> None:
        self.root_real, self.stack, self.name = root_real, stack, name

    @property
    def dir_fd(self) -> int:
        return self.stack[-1][0]

    @property
    def rel(self) -> str:
        return "/".join([n for _, n in self.stack[1:]] + ([self.name] if self.name else []))

    @property
    def full(self) -> str:
        return os.path.join(self.root_real, self.rel) if self.rel else self.root_real

    def lstat(self) -> Optional[os.stat_result]:
        """The last component itself (a link as a link); None when it does not exist."""
        try:
            if not self.name:
                return os.fstat(self.dir_fd)
            return os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def open_dir(self) -> int:
        """A new descriptor of the last component as a folder (never through a link)."""
        if not self.name:
            return os.dup(self.dir_fd)
        return os.open(self.name, DIR_FLAGS, dir_fd=self.dir_fd)

    def close(self) -> None:
        for fd, _ in self.stack:
            _close(fd)
        self.stack = []

    def __enter__(self) -> "Located":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def locate(root: str, rel: Any, follow: bool = True, create: bool = False) -> Located:
    """Walk ``rel`` from ``root`` by descriptor (see above).  Links inside the root are followed
    in the parent folders, and in the last component when ``follow`` (reading, listing); a link
    leading outside the root is refused (403).  ``create`` makes missing parent folders."""
    root_real = os.path.realpath(root)
    parts = split_path(rel) if not isinstance(rel, list) else list(rel)
    root_fd = os.open(root_real, DIR_FLAGS)
    stack: List[Tuple[int, str]] = [(root_fd, "")]
    try:
        todo = list(parts)
        links = 0
        while todo:
            name = todo.pop(0)
            if name in ("", "."):
                continue
            if name == "..":  # only from a link's target
                if len(stack) == 1:
                    raise PathError("The symbolic link leads outside the root folder.", 403)
                _close(stack.pop()[0])
                continue
            last = not todo
            if last and not follow:
                return Located(root_real, stack, name)
            dir_fd = stack[-1][0]
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    return Located(root_real, stack, name)
                if not create:
                    raise PathError(f"{name}: No such file or directory", 404) from None
                try:
                    os.mkdir(name, 0o777, dir_fd=dir_fd)
                except FileExistsError:
                    pass
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise PathError(f"{name}: Too many levels of symbolic links", 400)
                target = os.readlink(name, dir_fd=dir_fd)
                if target.startswith("/"):
                    if not within(root_real, target):
                        raise PathError("The symbolic link leads outside the root folder.", 403)
                    for fd, _ in stack[1:]:
                        _close(fd)
                    del stack[1:]
                    target = target[len(root_real.rstrip("/")):]
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                continue
            if last:
                return Located(root_real, stack, name)
            if not stat.S_ISDIR(st.st_mode):
                raise PathError(f"{name}: Not a folder", 409)
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
            except OSError as e:  # swapped for a link or a file since the lstat: refused
                raise fs_error(e, name) from e
            stack.append((fd, name))
        return Located(root_real, stack, "")
    except BaseException:
        for fd, _ in stack:
            _close(fd)
        raise


def resolve(root: str, rel: Any, follow: bool = True) -> str:
    """The real absolute path ``rel`` leads to under ``root`` (links inside the root resolved),
    refused (403) when it leads outside.  For messages and tests; operations use ``locate``."""
    with locate(root, rel, follow) as loc:
        return loc.full


def relative(root_real: str, full: str) -> str:
    """``full``'s path relative to the root ("" for the root)."""
    rel = os.path.relpath(full, root_real)
    return "" if rel == "." else rel


def ensure_dirs(root: str, parts: List[str]) -> str:
    """``mkdir -p`` of ``parts`` under ``root`` (walked by descriptor, confined to the root); the
    real path of the last folder."""
    for p in parts:
        check_name(p)
    with locate(root, list(parts), follow=True, create=True) as loc:
        if loc.name:  # the last one
            try:
                os.mkdir(loc.name, 0o777, dir_fd=loc.dir_fd)
            except FileExistsError:
                pass
            except OSError as e:
                raise fs_error(e, loc.name) from e
            st = loc.lstat()
            if st is None or not stat.S_ISDIR(st.st_mode):
                raise PathError(f"{loc.rel}: is not a folder.", 409)
        return loc.full


def root_allowed(root: Optional[str], home: str = HOME) -> str:
    """The File Browser's root: a folder inside ``home`` (``home`` itself when not given).
    ValueError for anything else."""
    root = root or home
    if not isinstance(root, str) or "\x00" in root:
        raise ValueError("the File Browser root must be a path")
    if not os.path.isabs(root):
        root = os.path.join(home, root)
    real = os.path.realpath(root)
    if not within(os.path.realpath(home), real):
        raise ValueError(f"the File Browser root must be inside {home} (got {root!r})")
    if not os.path.isdir(real):
        raise ValueError(f"the File Browser root {root!r} is not a folder in the session")
    return real


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it (both resolved)."""
    return within(os.path.realpath(folder), os.path.realpath(path))


# -- errors -------------------------------------------------------------------------------------------
_STATUS = {
    errno.EROFS: 403, errno.EACCES: 403, errno.EPERM: 403,
    errno.ENOENT: 404,
    errno.EEXIST: 409, errno.ENOTEMPTY: 409, errno.EISDIR: 409, errno.ENOTDIR: 409, errno.EBUSY: 409,
    errno.ENAMETOOLONG: 400, errno.EINVAL: 400, errno.ELOOP: 400, errno.EXDEV: 409,
    errno.ENOSPC: 507, errno.EDQUOT: 507, errno.EFBIG: 413,
}


def fs_error(e: OSError, what: str = "") -> PathError:
    """An OSError as a PathError: the system's message ("Read-only file system") and a status."""
    if isinstance(e, PathError):
        return e
    message = os.strerror(e.errno) if e.errno else str(e)
    return PathError(f"{what}: {message}" if what else message, _STATUS.get(e.errno or 0, 500))


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# -- listing --------------------------------------------------------------------------------------------
def entry_info(dir_fd: int, name: str, root_real: str, dir_rel: List[str]) -> Dict[str, Any]:
    """An entry of the open folder ``dir_fd`` (at ``dir_rel`` under the root).  A link is shown
    with what it leads to when that is inside the root (walked by descriptor, nothing opened but
    folders), as ``outside`` otherwise; nothing is ever read through it here."""
    info: Dict[str, Any] = {"name": name, "type": "file", "size": 0, "mtime": 0.0}
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # not UTF-8 on disk: shown (escaped), but it cannot be addressed
        info.update(name=name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), type="badname")
        return info
    try:
        lst = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        info["type"] = "missing"
        return info
    info["mtime"] = lst.st_mtime
    st: Optional[os.stat_result] = lst
    if stat.S_ISLNK(lst.st_mode):
        info["link"] = True
        try:
            with locate(root_real, dir_rel + [name]) as loc:
                st = loc.lstat()
        except PathError as e:
            st = None
            if e.status == 403:
                try:
                    os.stat(name, dir_fd=dir_fd)  # only: does it lead anywhere at all
                    info["type"] = "outside"  # shown, never opened
                    return info
                except OSError:
                    pass
        except OSError:
            st = None
        if st is None:
            info["type"] = "broken"
            return info
        info["mtime"] = st.st_mtime
    if stat.S_ISDIR(st.st_mode):
        info["type"] = "dir"
    elif stat.S_ISREG(st.st_mode):
        info["size"] = st.st_size
    else:
        info["type"] = "other"
    return info


def list_folder(root: str, rel: Any = "") -> Dict[str, Any]:
    """The folder ``rel`` walked to by descriptor: its entries, its real path relative to the
    root, whether its filesystem is read-only and whether it is writable."""
    root_real = os.path.realpath(root)
    with locate(root_real, rel) as loc:
        st = loc.lstat()
        if st is None:
            raise PathError(f"/{rel or ''}: No such file or directory", 404)
        if not stat.S_ISDIR(st.st_mode):
            raise PathError(f"/{rel or ''}: Not a folder", 409)
        real_rel = loc.rel
        try:
            fd = loc.open_dir()
        except OSError as e:
            raise fs_error(e, loc.name) from e
    try:
        items = []
        with os.scandir(fd) as it:
            for e in it:
                if e.name.startswith(TMP_PREFIX):
                    continue  # uploads in progress
                items.append(entry_info(fd, e.name, root_real, split_path(real_rel)))
        items.sort(key=lambda i: (i["type"] != "dir", i["name"].casefold(), i["name"]))
        try:
            readonly = bool(os.fstatvfs(fd).f_flag & os.ST_RDONLY)
        except OSError:
            readonly = False
        return {"rel": real_rel, "items": items, "readonly": readonly,
                "writable": os.access(".", os.W_OK, dir_fd=fd)}
    finally:
        _close(fd)


def list_dir(root: str, rel: Any = "") -> List[Dict[str, Any]]:
    return list_folder(root, rel)["items"]


def is_readonly_fs(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def open_file(loc: Located) -> Tuple[int, os.stat_result]:
    """The located regular file, opened for reading (never through a link, never blocking: a
    FIFO or device is refused, 400)."""
    try:
        fd = os.open(loc.name, READ_FLAGS, dir_fd=loc.dir_fd)
    except OSError as e:
        raise fs_error(e, loc.name) from e
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        _close(fd)
        raise PathError(f"{loc.name}: Not a regular file", 400)
    return fd, st


# -- zip --------------------------------------------------------------------------------------------------
class _Sink:
    """A write-only, unseekable file for zipfile: it collects what is written until taken."""

    def __init__(self) -> None:
        self.parts: List[bytes] = []
        self.size = 0

    def write(self, b: bytes) -> int:
        self.parts.append(bytes(b))
        self.size += len(b)
        return len(b)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts, self.size = [], 0
        return out


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _zipinfo(arc: str, st: os.stat_result) -> zipfile.ZipInfo:
    t = time.localtime(st.st_mtime)
    if t.tm_year < 1980:
        date_time: Tuple[int, ...] = (1980, 1, 1, 0, 0, 0)
    elif t.tm_year > 2107:
        date_time = (2107, 12, 31, 23, 59, 58)
    else:
        date_time = tuple(t[:6])
    zinfo = zipfile.ZipInfo(arc, date_time)  # type: ignore[arg-type]
    zinfo.external_attr = (st.st_mode & 0xFFFF) << 16
    if stat.S_ISDIR(st.st_mode):
        zinfo.external_attr |= 0x10
    else:
        zinfo.file_size = st.st_size
    return zinfo


def iter_zip(root: str, sources: Iterable[Tuple[Any, str]], chunk: int = 1 << 20) -> Iterator[bytes]:
    """A zip archive of ``sources`` ((path relative to the root, name in the archive)) as a stream
    of chunks (never the whole archive in memory).  Everything is walked and opened by
    descriptor: links are followed only to files inside the root (never to folders, so no loops),
    FIFOs and devices are left out, names that are not UTF-8 are left out."""
    root_real = os.path.realpath(root)
    sink = _Sink()

    def add_file(zf: zipfile.ZipFile, fd: int, st: os.stat_result, arc: str) -> Iterator[bytes]:
        """Add the open file fd as arc, then close fd."""
        try:
            zinfo = _zipinfo(arc, st)
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            zinfo._compresslevel = 1  # type: ignore[attr-defined]  # fast: data is often compressed
            with zf.open(zinfo, "w", force_zip64=zinfo.file_size > 0x7FFFFFFF) as dst:
                while True:
                    block = os.read(fd, chunk)
                    if not block:
                        break
                    dst.write(block)
                    if sink.size >= chunk:
                        yield sink.take()
        finally:
            _close(fd)

    def add_dir(zf: zipfile.ZipFile, dfd: int, rel: List[str], arc: str) -> Iterator[bytes]:
        zf.writestr(_zipinfo(arc + "/", os.fstat(dfd)), b"")
        with os.scandir(dfd) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.name.startswith(TMP_PREFIX) or not _utf8(e.name):
                continue
            sub = arc + "/" + e.name
            try:
                if e.is_dir(follow_symlinks=False):
                    cfd = os.open(e.name, DIR_FLAGS, dir_fd=dfd)
                    try:
                        yield from add_dir(zf, cfd, rel + [e.name], sub)
                    finally:
                        _close(cfd)
                    continue
                if e.is_symlink():  # a link to a file inside the root is followed, no other
                    with locate(root_real, rel + [e.name]) as loc:
                        lst = loc.lstat()
                        if lst is None or not stat.S_ISREG(lst.st_mode):
                            continue
                        fd, st = open_file(loc)
                elif e.is_file(follow_symlinks=False):
                    fd = os.open(e.name, READ_FLAGS, dir_fd=dfd)
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        _close(fd)
                        continue
                else:
                    continue
            except (PathError, OSError):  # vanished, swapped or outside the root: left out
                continue
            yield from add_file(zf, fd, st, sub)
            if sink.parts:
                yield sink.take()

    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1,  # type: ignore[arg-type]
                         allowZip64=True) as zf:
        for rel, arc in sources:
            if not _utf8(arc):
                continue
            try:
                loc = locate(root_real, rel)
            except (PathError, OSError):
                continue
            with loc:
                lst = loc.lstat()
                if lst is None:
                    continue
                if stat.S_ISDIR(lst.st_mode):
                    try:
                        dfd = loc.open_dir()
                    except OSError:
                        continue
                    try:
                        yield from add_dir(zf, dfd, split_path(loc.rel), arc)
                    finally:
                        _close(dfd)
                elif stat.S_ISREG(lst.st_mode):
                    try:
                        fd, st = open_file(loc)
                    except PathError:
                        continue
                    yield from add_file(zf, fd, st, arc)
            if sink.parts:
                yield sink.take()
    if sink.parts:
        yield sink.take()


# -- operations (used by the handlers; pure Python) ---------------------------------------------------
def op_mkdir(root: str, rel: Any, parents: bool = False) -> str:
    parts = split_path(rel)
    if not parts:
        raise PathError("A folder name is required.")
    if parents:
        return ensure_dirs(root, parts)
    with locate(root, parts, follow=False) as loc:
        try:
            os.mkdir(loc.name, 0o777, dir_fd=loc.dir_fd)
        except OSError as e:
            raise fs_error(e, parts[-1]) from e
        return loc.full


def op_touch(root: str, rel: Any) -> str:
    parts = split_path(rel)
    if not parts:
        raise PathError("A file name is required.")
    with locate(root, parts, follow=False) as loc:
        try:
            os.close(os.open(loc.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o666, dir_fd=loc.dir_fd))
        except OSError as e:
            raise fs_error(e, parts[-1]) from e
        return loc.full


def _existing(root: str, rel: Any) -> Located:
    """The entry ``rel`` (itself: a link as a link), which must exist and not be the root."""
    if not split_path(rel):
        raise PathError("The root folder itself cannot be changed.")
    loc = locate(root, rel, follow=False)
    if loc.lstat() is None:
        loc.close()
        raise PathError(f"{rel}: No such file or directory", 404)
    return loc


def op_rename(root: str, rel: Any, name: Any) -> str:
    with _existing(root, rel) as loc:
        check_name(name)
        target = os.path.join(os.path.dirname(loc.full), name)
        if name == loc.name:
            return target
        try:
            os.stat(name, dir_fd=loc.dir_fd, follow_symlinks=False)
            raise PathError(f"{name}: File exists", 409)
        except FileNotFoundError:
            pass
        try:
            os.rename(loc.name, name, src_dir_fd=loc.dir_fd, dst_dir_fd=loc.dir_fd)
        except OSError as e:
            raise fs_error(e, loc.name) from e
        return target


def _rmtree_at(parent_fd: int, name: str) -> None:
    """``rm -r`` of the folder ``name`` in ``parent_fd``, by descriptor (links removed as links)."""
    fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    try:
        with os.scandir(fd) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for child, is_dir in entries:
            if is_dir:
                _rmtree_at(fd, child)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        _close(fd)
    os.rmdir(name, dir_fd=parent_fd)


def op_move(root: str, rels: Any, to: Any) -> List[str]:
    if not isinstance(rels, list) or not rels:
        raise PathError("Nothing to move.")
    with locate(root, to, follow=True) as dest:
        st = dest.lstat()
        if st is None or not stat.S_ISDIR(st.st_mode):
            raise PathError(f"{to or '/'}: Not a folder", 409 if st is not None else 404)
        dest_full = dest.full
        try:
            dfd = dest.open_dir()
        except OSError as e:
            raise fs_error(e, dest.name) from e
    sources: List[Located] = []
    try:
        dst_st = os.fstat(dfd)
        for r in rels:
            sources.append(_existing(root, r))
        moved = []
        for loc in sources:
            name = loc.name
            here = os.fstat(loc.dir_fd)
            if (here.st_dev, here.st_ino) == (dst_st.st_dev, dst_st.st_ino):
                raise PathError(f"{name} is already in that folder.", 409)
            src_st = loc.lstat()
            if src_st is not None and stat.S_ISDIR(src_st.st_mode) and within(loc.full, dest_full):
                raise PathError(f"{name}: a folder cannot be moved into itself.", 400)
            try:
                os.stat(name, dir_fd=dfd, follow_symlinks=False)
                raise PathError(f"{name}: File exists in the destination", 409)
            except FileNotFoundError:
                pass
            try:
                try:
                    os.rename(name, name, src_dir_fd=loc.dir_fd, dst_dir_fd=dfd)
                except OSError as e:
                    if e.errno == errno.EINVAL:
                        raise PathError(f"{name}: a folder cannot be moved into itself.", 400) from e
                    if e.errno != errno.EXDEV:
                        raise
                    # Another mount: copy, then delete -- only when the source can be deleted (a
                    # read-only mount would otherwise keep the original and get a copy anyway).
                    # Addressed through the descriptors of both folders (/proc/self/fd): the
                    # folders cannot be swapped; what is below them is copied as this user may.
                    if not os.access(".", os.W_OK, dir_fd=loc.dir_fd):
                        readonly = bool(os.fstatvfs(loc.dir_fd).f_flag & os.ST_RDONLY)
                        raise OSError(errno.EROFS if readonly else errno.EACCES, name) from e
                    shutil.move(f"/proc/self/fd/{loc.dir_fd}/{name}", f"/proc/self/fd/{dfd}/{name}")
            except OSError as e:
                raise fs_error(e, name) from e
            moved.append(os.path.join(dest_full, name))
        return moved
    finally:
        _close(dfd)
        for loc in sources:
            loc.close()


def op_delete(root: str, rels: Any) -> int:
    if not isinstance(rels, list) or not rels:
        raise PathError("Nothing to delete.")
    targets: List[Located] = []
    try:
        for r in rels:
            targets.append(_existing(root, r))
        for loc in targets:
            st = loc.lstat()
            if st is None:
                continue
            try:
                if stat.S_ISDIR(st.st_mode):
                    _rmtree_at(loc.dir_fd, loc.name)
                else:
                    os.unlink(loc.name, dir_fd=loc.dir_fd)
            except OSError as e:
                raise fs_error(e, loc.name) from e
        return len(targets)
    finally:
        for loc in targets:
            loc.close()


# -- the page -----------------------------------------------------------------------------------------------
PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>File Browser</title>
<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24'%3E%3Cpath fill='%233b82f6' d='M3 6a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z'/%3E%3C/svg%3E">
<style>
:root{--bg:#f7f8fa;--panel:#fff;--fg:#1f2328;--muted:#646b75;--line:#e3e6ea;--hover:#f1f4f8;--sel:#e6efff;
--accent:#2563eb;--accent-fg:#fff;--danger:#c62828;--danger-bg:#fdecea;--warn-bg:#fff6db;--warn-fg:#6b4e00;
--ok:#2e7d32;--folder:#e0a526;--shadow:0 8px 30px rgba(0,0,0,.15);color-scheme:light}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--panel:#181c21;--fg:#e6e8eb;--muted:#9aa3ad;--line:#2a3038;
--hover:#20262d;--sel:#1d2d47;--accent:#5b8def;--accent-fg:#0b1220;--danger:#ef6b6b;--danger-bg:#3a1d1d;
--warn-bg:#3a3113;--warn-fg:#f3d98b;--ok:#66bb6a;--folder:#e8b84a;--shadow:0 8px 30px rgba(0,0,0,.5);color-scheme:dark}}
*{box-sizing:border-box}
html,body{margin:0;height:100%}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Ubuntu,sans-serif;background:var(--bg);color:var(--fg);display:flex;flex-direction:column}
button,input{font:inherit;color:inherit}
.top{display:flex;align-items:center;gap:16px;padding:10px 16px;background:var(--panel);border-bottom:1px solid var(--line)}
.brand{display:flex;align-items:center;gap:8px;font-weight:600;white-space:nowrap}
.brand svg{width:20px;height:20px;color:var(--accent)}
nav ol{list-style:none;display:flex;flex-wrap:wrap;align-items:center;margin:0;padding:0;gap:2px}
nav li{display:flex;align-items:center}
nav li+li::before{content:"/";color:var(--muted);padding:0 4px}
nav a{color:var(--fg);text-decoration:none;padding:2px 6px;border-radius:6px}
nav a:hover{background:var(--hover)} nav a[aria-current]{font-weight:600}
.badge{font-size:12px;padding:2px 8px;border-radius:999px;background:var(--warn-bg);color:var(--warn-fg);white-space:nowrap}
.toolbar{display:flex;flex-wrap:wrap;gap:6px;align-items:center;padding:8px 16px;background:var(--panel);border-bottom:1px solid var(--line)}
.toolbar .sep{width:1px;height:22px;background:var(--line);margin:0 4px}.grow{flex:1}
.btn{display:inline-flex;align-items:center;gap:6px;border:1px solid var(--line);background:var(--panel);padding:5px 10px;border-radius:7px;cursor:pointer}
.btn:hover:not(:disabled){background:var(--hover)} .btn:disabled{opacity:.45;cursor:default}
.btn.primary{background:var(--accent);border-color:var(--accent);color:var(--accent-fg)}
.btn.primary:hover:not(:disabled){filter:brightness(1.08);background:var(--accent)}
.btn.danger{color:var(--danger)} .btn.danger.primary{background:var(--danger);border-color:var(--danger);color:#fff}
.btn svg{width:16px;height:16px}
:focus-visible{outline:2px solid var(--accent);outline-offset:1px}
#alert{display:flex;gap:10px;align-items:flex-start;margin:10px 16px 0;padding:8px 12px;border-radius:8px;background:var(--danger-bg);color:var(--danger);border:1px solid color-mix(in srgb,var(--danger) 35%,transparent)}
#alert[hidden],#notice[hidden]{display:none}
#alert .msg{flex:1;white-space:pre-wrap}
#alert button{border:0;background:none;cursor:pointer;color:inherit;font-size:16px;line-height:1}
#notice{margin:10px 16px 0;padding:8px 12px;border-radius:8px;background:var(--warn-bg);color:var(--warn-fg)}
main{flex:1;overflow:auto;position:relative;padding:10px 16px 16px}
table{width:100%;border-collapse:separate;border-spacing:0;background:var(--panel);border:1px solid var(--line);border-radius:10px;overflow:hidden}
th,td{padding:7px 10px;text-align:left;border-bottom:1px solid var(--line);white-space:nowrap}
tbody tr:last-child td{border-bottom:0}
th{font-weight:600;color:var(--muted);font-size:12.5px;position:sticky;top:0;background:var(--panel);z-index:1}
th button{border:0;background:none;padding:0;cursor:pointer;font-weight:600;color:inherit}
th .arrow{font-size:10px;margin-left:3px}
.c-check{width:34px}.c-size{width:110px;text-align:right}.c-date{width:190px}
td.c-size{text-align:right;font-variant-numeric:tabular-nums;color:var(--muted)} td.c-date{color:var(--muted)}
td.c-name{width:100%;max-width:0;overflow:hidden;text-overflow:ellipsis}
tbody tr{cursor:default} tbody tr:hover{background:var(--hover)}
tbody tr.sel{background:var(--sel)} tbody tr.drop-into{outline:2px dashed var(--accent);outline-offset:-3px}
tbody tr:focus{outline:none} tbody tr:focus-visible td{box-shadow:inset 0 2px 0 var(--accent),inset 0 -2px 0 var(--accent)}
.name{display:inline-flex;align-items:center;gap:8px;color:var(--fg);text-decoration:none;max-width:100%}
.name span{overflow:hidden;text-overflow:ellipsis}
a.name:hover span{text-decoration:underline}
.ico{width:18px;height:18px;flex:none;color:var(--muted)} .ico.dir{color:var(--folder)}
.dim{color:var(--muted)}
#empty{padding:40px;text-align:center;color:var(--muted)}
#dropmask{position:fixed;inset:0;display:none;align-items:center;justify-content:center;background:color-mix(in srgb,var(--accent) 12%,transparent);border:3px dashed var(--accent);z-index:20;pointer-events:none;font-size:18px}
body.dragging #dropmask{display:flex}
#dropmask div{background:var(--panel);padding:14px 22px;border-radius:10px;box-shadow:var(--shadow)}
#uploads{position:fixed;right:16px;bottom:40px;width:min(420px,calc(100vw - 32px));max-height:50vh;display:flex;flex-direction:column;background:var(--panel);border:1px solid var(--line);border-radius:10px;box-shadow:var(--shadow);z-index:10}
#uploads[hidden]{display:none}
#uploads header{display:flex;align-items:center;gap:8px;padding:8px 12px;border-bottom:1px solid var(--line);font-weight:600}
#uploads header span{flex:1}
#uploads ul{list-style:none;margin:0;padding:4px 0;overflow:auto}
#uploads li{padding:6px 12px}
#uploads .row{display:flex;gap:8px;font-size:13px}
#uploads .fn{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
#uploads .st{color:var(--muted);white-space:nowrap}
#uploads li.err .st{color:var(--danger)} #uploads li.done .st{color:var(--ok)}
progress{width:100%;height:6px;appearance:none;border:0;border-radius:3px;background:var(--line);overflow:hidden;display:block;margin-top:4px}
progress::-webkit-progress-bar{background:var(--line)} progress::-webkit-progress-value{background:var(--accent)} progress::-moz-progress-bar{background:var(--accent)}
li.err progress::-webkit-progress-value{background:var(--danger)} li.err progress::-moz-progress-bar{background:var(--danger)}
.status{padding:6px 16px;border-top:1px solid var(--line);background:var(--panel);color:var(--muted);font-size:12.5px;display:flex;gap:16px}
.status kbd{font:11px ui-monospace,monospace;border:1px solid var(--line);border-radius:4px;padding:0 4px}
dialog{border:1px solid var(--line);border-radius:12px;background:var(--panel);color:var(--fg);padding:0;width:min(440px,calc(100vw - 32px));box-shadow:var(--shadow)}
dialog::backdrop{background:rgba(0,0,0,.35)}
dialog form{padding:18px 20px;display:flex;flex-direction:column;gap:12px}
dialog h2{margin:0;font-size:16px} dialog p{margin:0;color:var(--muted);white-space:pre-wrap;word-break:break-word}
dialog input[type=text]{width:100%;padding:7px 10px;border:1px solid var(--line);border-radius:7px;background:var(--bg)}
dialog .err{color:var(--danger);font-size:13px;min-height:0}
dialog .actions{display:flex;flex-direction:row-reverse;justify-content:flex-start;gap:8px}
.picker{border:1px solid var(--line);border-radius:8px;max-height:260px;overflow:auto}
.picker .cur{padding:6px 10px;border-bottom:1px solid var(--line);font-size:13px;color:var(--muted);display:flex;gap:8px;align-items:center}
.picker .cur code{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;color:var(--fg)}
.picker button.f{display:flex;gap:8px;align-items:center;width:100%;text-align:left;border:0;background:none;padding:6px 10px;cursor:pointer}
.picker button.f:hover,.picker button.f:focus-visible{background:var(--hover)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
@media (max-width:640px){.c-date{display:none}.btn .lbl{display:none}}
</style></head>
<body>
<header class="top">
  <div class="brand"><svg viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M3 6a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z"/></svg>File Browser</div>
  <nav aria-label="Breadcrumb"><ol id="crumbs"></ol></nav>
  <span class="grow"></span>
  <span id="ro" class="badge" hidden>Read-only</span>
</header>
<div class="toolbar" role="toolbar" aria-label="File actions">
  <button class="btn primary" id="b-upload" title="Upload files (U)"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M12 16V4m0 0-5 5m5-5 5 5M4 20h16"/></svg><span class="lbl">Upload files</span></button>
  <button class="btn" id="b-upfolder" title="Upload a folder with its structure"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2zM12 16v-6m0 0-3 3m3-3 3 3"/></svg><span class="lbl">Upload folder</span></button>
  <button class="btn" id="b-mkdir" title="New folder (N)"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2zM12 10v6m-3-3h6"/></svg><span class="lbl">New folder</span></button>
  <button class="btn" id="b-touch" title="New empty file"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9zM14 3v6h6M12 12v6m-3-3h6"/></svg><span class="lbl">New file</span></button>
  <span class="sep" aria-hidden="true"></span>
  <button class="btn" id="b-download" data-need="any" title="Download (a folder or several items as a zip)"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M12 4v12m0 0-5-5m5 5 5-5M4 20h16"/></svg><span class="lbl">Download</span></button>
  <button class="btn" id="b-rename" data-need="one" title="Rename (F2)"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M4 20h4L19 9l-4-4L4 16zM13 7l4 4"/></svg><span class="lbl">Rename</span></button>
  <button class="btn" id="b-move" data-need="any" title="Move to another folder (M)"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2zM9 13h7m0 0-3-3m3 3-3 3"/></svg><span class="lbl">Move</span></button>
  <button class="btn danger" id="b-delete" data-need="any" title="Delete (Del)"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M4 7h16M10 11v6m4-6v6M6 7l1 13h10l1-13M9 7V4h6v3"/></svg><span class="lbl">Delete</span></button>
  <span class="grow"></span>
  <button class="btn" id="b-refresh" title="Refresh (R)" aria-label="Refresh"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M20 12a8 8 0 1 1-2.3-5.6M20 4v5h-5"/></svg></button>
  <input type="file" id="f-files" multiple hidden>
  <input type="file" id="f-dir" webkitdirectory directory multiple hidden>
</div>
<div id="alert" role="alert" hidden><span class="msg"></span><button type="button" aria-label="Dismiss">&times;</button></div>
<div id="notice" hidden>Read-only file system: this folder is mounted read-only, so uploads and changes are refused.</div>
<main id="main">
  <table role="grid" aria-multiselectable="true" aria-label="Folder contents">
    <thead><tr>
      <th class="c-check"><input type="checkbox" id="all" aria-label="Select all"></th>
      <th class="c-name"><button data-sort="name">Name<span class="arrow"></span></button></th>
      <th class="c-size"><button data-sort="size">Size<span class="arrow"></span></button></th>
      <th class="c-date"><button data-sort="mtime">Modified<span class="arrow"></span></button></th>
    </tr></thead>
    <tbody id="rows"></tbody>
  </table>
  <div id="empty" hidden>This folder is empty. Drop files or folders here, or use Upload.</div>
</main>
<div id="dropmask"><div>Drop to upload into <b id="drop-where"></b></div></div>
<section id="uploads" hidden aria-label="Uploads">
  <header><span id="up-title">Uploads</span><button class="btn" id="up-clear" type="button">Clear</button><button class="btn" id="up-close" type="button" aria-label="Close">&times;</button></header>
  <ul id="up-list"></ul>
</section>
<footer class="status"><span id="status" aria-live="polite"></span><span class="grow"></span>
  <span class="dim"><kbd>↑</kbd><kbd>↓</kbd> move <kbd>Enter</kbd> open <kbd>Space</kbd> select <kbd>F2</kbd> rename <kbd>Del</kbd> delete <kbd>Backspace</kbd> up</span></footer>
<dialog id="dlg"><form method="dialog">
  <h2 id="dlg-title"></h2><p id="dlg-msg"></p>
  <input type="text" id="dlg-input" autocomplete="off" spellcheck="false" aria-labelledby="dlg-title">
  <div class="picker" id="dlg-picker"></div>
  <div class="err" id="dlg-err" role="alert"></div>
  <div class="actions"><button class="btn primary" value="ok" id="dlg-ok">OK</button><button class="btn" value="cancel" id="dlg-cancel" formnovalidate>Cancel</button></div>
</form></dialog>
<script>
"use strict";
const $ = (s, el) => (el || document).querySelector(s);
const ICON = {
  dir: '<svg class="ico dir" viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M3 6a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z"/></svg>',
  file: '<svg class="ico" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true"><path d="M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9zM14 3v6h6"/></svg>',
  link: '<svg class="ico" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true"><path d="M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1"/></svg>'
};
const S = {path: "", items: [], sel: new Set(), anchor: null, cursor: 0, sort: {key: "name", dir: 1},
           readonly: false, root: "", loading: 0};
const rows = $("#rows");
function enc(s) {
  try { return encodeURIComponent(s); }
  catch (e) { return encodeURIComponent(String(s).replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd")); }
}

function join(a, b) { return a ? a + "/" + b : b; }
function esc(s) { return String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])); }
function fmtSize(n) {
  if (n < 1024) return n + " B";
  const u = ["KiB", "MiB", "GiB", "TiB", "PiB"]; let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return (n < 10 ? n.toFixed(1) : Math.round(n)) + " " + u[i];
}
const dateFmt = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});
function fmtDate(t) { return t ? dateFmt.format(new Date(t * 1000)) : ""; }
function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of params) u.append(k, v);
  return u.toString();
}

async function api(method, path, body) {
  const opt = {method, headers: {"X-Requested-With": "XMLHttpRequest"}, credentials: "same-origin"};
  if (body !== undefined) { opt.headers["Content-Type"] = "application/json"; opt.body = JSON.stringify(body); }
  let resp;
  try { resp = await fetch(path, opt); } catch (e) { throw new Error("The File Browser is not answering (" + e.message + ")."); }
  let data = null;
  try { data = await resp.json(); } catch (e) { /* not JSON (the proxy's own answer) */ }
  if (!resp.ok) throw new Error((data && data.error) || (resp.status + " " + resp.statusText));
  return data;
}

// -- messages --------------------------------------------------------------------------------------
function showError(msg) { const a = $("#alert"); $(".msg", a).textContent = msg; a.hidden = false; }
function clearError() { $("#alert").hidden = true; }
$("#alert button").onclick = clearError;
function say(msg) { $("#status").textContent = msg; }

// -- navigation ---------------------------------------------------------------------------------------
function pathFromHash() {
  const h = location.hash.replace(/^#\/?/, "");
  try { return h.split("/").filter(Boolean).map(decodeURIComponent).join("/"); } catch (e) { return ""; }
}
function go(path) {
  const h = "#/" + path.split("/").filter(Boolean).map(enc).join("/");
  if (location.hash === h) load(path); else location.hash = h;
}
window.addEventListener("hashchange", () => load(pathFromHash()));

async function load(path, keep) {
  const seq = ++S.loading;
  let d;
  try { d = await api("GET", "/api/list?" + qs([["path", path]])); }
  catch (e) {
    if (seq !== S.loading) return;
    showError(e.message);
    if (path && !keep) { go(path.split("/").slice(0, -1).join("/")); }
    return;
  }
  if (seq !== S.loading) return;
  const changed = d.path !== S.path;
  S.path = d.path; S.items = d.items; S.readonly = d.readonly; S.root = d.root;
  if (changed || !keep) { S.sel.clear(); S.anchor = null; S.cursor = 0; }
  else { const names = new Set(d.items.map(i => i.name)); for (const n of [...S.sel]) if (!names.has(n)) S.sel.delete(n); }
  if (changed) clearError();
  $("#ro").hidden = !d.readonly; $("#notice").hidden = !d.readonly;
  document.title = (d.path ? d.path.split("/").pop() : d.root) + " — File Browser";
  renderCrumbs(); render();
}
function refresh() { return load(S.path, true); }

function renderCrumbs() {
  const ol = $("#crumbs"); ol.textContent = "";
  const parts = S.path ? S.path.split("/") : [];
  const add = (label, p, cur) => {
    const li = document.createElement("li"), a = document.createElement("a");
    a.href = "#/" + p.split("/").filter(Boolean).map(enc).join("/");
    a.textContent = label; if (cur) a.setAttribute("aria-current", "page");
    a.addEventListener("dragover", e => dragOverTarget(e, p)); a.addEventListener("drop", e => dropOnTarget(e, p));
    li.appendChild(a); ol.appendChild(li);
  };
  add(S.root || "root", "", !parts.length);
  parts.forEach((p, i) => add(p, parts.slice(0, i + 1).join("/"), i === parts.length - 1));
}

function sorted() {
  const {key, dir} = S.sort;
  return [...S.items].sort((a, b) => {
    const da = a.type === "dir", db = b.type === "dir";
    if (da !== db) return da ? -1 : 1;
    let c = key === "name" ? 0 : (a[key] - b[key]);
    if (!c) c = a.name.localeCompare(b.name, undefined, {numeric: true, sensitivity: "base"});
    return c * dir;
  });
}
function render() {
  const list = sorted();
  rows.textContent = "";
  list.forEach((it, i) => {
    const tr = document.createElement("tr");
    tr.dataset.name = it.name; tr.tabIndex = -1; tr.draggable = true;
    tr.setAttribute("aria-selected", S.sel.has(it.name) ? "true" : "false");
    if (S.sel.has(it.name)) tr.classList.add("sel");
    const p = join(S.path, it.name);
    const icon = it.type === "dir" ? ICON.dir : (it.link ? ICON.link : ICON.file);
    let name;
    if (it.type === "dir") name = `<a class="name" href="#/${p.split("/").map(enc).join("/")}" tabindex="-1">${icon}<span>${esc(it.name)}</span></a>`;
    else if (it.type === "file") name = `<a class="name" href="/api/download?${qs([["path", p]])}" download tabindex="-1">${icon}<span>${esc(it.name)}</span></a>`;
    else name = `<span class="name dim" title="${{outside: "A link leading outside the root folder", broken: "A broken link", badname: "The name is not valid UTF-8"}[it.type] || "Not a regular file"}">${icon}<span>${esc(it.name)}</span></span>`;
    tr.innerHTML = `<td class="c-check"><input type="checkbox" tabindex="-1" aria-label="Select ${esc(it.name)}" ${S.sel.has(it.name) ? "checked" : ""}></td>` +
      `<td class="c-name">${name}</td><td class="c-size">${it.type === "file" ? fmtSize(it.size) : (it.type === "dir" ? "—" : "")}</td>` +
      `<td class="c-date">${fmtDate(it.mtime)}</td>`;
    rows.appendChild(tr);
  });
  $("#empty").hidden = list.length > 0;
  S.cursor = Math.min(S.cursor, Math.max(0, list.length - 1));
  const cur = rows.children[S.cursor]; if (cur) cur.tabIndex = 0;
  for (const b of document.querySelectorAll("th button")) {
    $(".arrow", b).textContent = b.dataset.sort === S.sort.key ? (S.sort.dir > 0 ? "▲" : "▼") : "";
    b.parentElement.setAttribute("aria-sort", b.dataset.sort === S.sort.key ? (S.sort.dir > 0 ? "ascending" : "descending") : "none");
  }
  updateActions();
}
function updateActions() {
  const n = S.sel.size;
  for (const b of document.querySelectorAll("[data-need]")) b.disabled = b.dataset.need === "one" ? n !== 1 : n === 0;
  const all = $("#all"); all.checked = n > 0 && n === S.items.length; all.indeterminate = n > 0 && n < S.items.length;
  const files = S.items.filter(i => i.type === "file"), total = files.reduce((s, i) => s + i.size, 0);
  say(`${S.items.length} item${S.items.length === 1 ? "" : "s"} · ${fmtSize(total)}` + (n ? ` · ${n} selected` : ""));
  for (const tr of rows.children) {
    const on = S.sel.has(tr.dataset.name);
    tr.classList.toggle("sel", on); tr.setAttribute("aria-selected", on ? "true" : "false");
    const cb = $("input", tr); if (cb) cb.checked = on;
  }
}
function itemByName(n) { return S.items.find(i => i.name === n); }
function rowIndex(tr) { return Array.prototype.indexOf.call(rows.children, tr); }
function focusRow(i) {
  const list = rows.children; if (!list.length) return;
  i = Math.max(0, Math.min(list.length - 1, i));
  for (const tr of list) tr.tabIndex = -1;
  list[i].tabIndex = 0; list[i].focus(); list[i].scrollIntoView({block: "nearest"}); S.cursor = i;
}
function selectRange(to) {
  const list = [...rows.children], from = S.anchor === null ? to : S.anchor;
  S.sel.clear();
  for (let i = Math.min(from, to); i <= Math.max(from, to); i++) S.sel.add(list[i].dataset.name);
}
function open(it) {
  if (!it) return;
  const p = join(S.path, it.name);
  if (it.type === "dir") go(p);
  else if (it.type === "file") download([p]);
}
function selected() { return [...S.sel].map(n => join(S.path, n)); }

// -- table events -------------------------------------------------------------------------------------
rows.addEventListener("click", e => {
  const tr = e.target.closest("tr"); if (!tr) return;
  const i = rowIndex(tr), n = tr.dataset.name;
  if (e.target.closest("a.name")) {
    e.preventDefault();
    if (e.ctrlKey || e.metaKey || e.shiftKey) { /* fall through to selection */ }
    else { open(itemByName(n)); return; }
  }
  if (e.target.matches("input[type=checkbox]")) { if (S.sel.has(n)) S.sel.delete(n); else S.sel.add(n); S.anchor = i; }
  else if (e.shiftKey) selectRange(i);
  else if (e.ctrlKey || e.metaKey) { if (S.sel.has(n)) S.sel.delete(n); else S.sel.add(n); S.anchor = i; }
  else { S.sel.clear(); S.sel.add(n); S.anchor = i; }
  focusRow(i); updateActions();
});
rows.addEventListener("dblclick", e => { const tr = e.target.closest("tr"); if (tr && !e.target.closest("input")) open(itemByName(tr.dataset.name)); });
rows.addEventListener("keydown", e => {
  const tr = e.target.closest("tr"); if (!tr) return;
  const i = rowIndex(tr), n = tr.dataset.name, list = rows.children;
  const move = j => { j = Math.max(0, Math.min(list.length - 1, j)); if (e.shiftKey) selectRange(j); focusRow(j); updateActions(); e.preventDefault(); };
  if (S.anchor === null) S.anchor = i;
  switch (e.key) {
    case "ArrowDown": return move(i + 1);
    case "ArrowUp": if (e.altKey) { e.preventDefault(); return up(); } return move(i - 1);
    case "Home": return move(0);
    case "End": return move(list.length - 1);
    case "PageDown": return move(i + 10);
    case "PageUp": return move(i - 10);
    case "Enter": e.preventDefault(); return open(itemByName(n));
    case " ": e.preventDefault(); if (S.sel.has(n)) S.sel.delete(n); else S.sel.add(n); S.anchor = i; return updateActions();
    case "F2": e.preventDefault(); S.sel.clear(); S.sel.add(n); updateActions(); return doRename();
    case "Delete": e.preventDefault(); if (!S.sel.size) S.sel.add(n); updateActions(); return doDelete();
    case "Escape": S.sel.clear(); return updateActions();
  }
  if ((e.key === "a" || e.key === "A") && (e.ctrlKey || e.metaKey)) { e.preventDefault(); S.items.forEach(it => S.sel.add(it.name)); updateActions(); }
});
$("#all").addEventListener("change", e => { S.sel.clear(); if (e.target.checked) S.items.forEach(it => S.sel.add(it.name)); updateActions(); });
for (const b of document.querySelectorAll("th button")) b.addEventListener("click", () => {
  const k = b.dataset.sort; S.sort = {key: k, dir: S.sort.key === k ? -S.sort.dir : 1}; render();
});
function up() { if (S.path) go(S.path.split("/").slice(0, -1).join("/")); }
document.addEventListener("keydown", e => {
  if ($("#dlg").open || e.target.closest("input,textarea,select,button,a") && !e.target.closest("tr")) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "Backspace") { e.preventDefault(); up(); }
  else if (e.key === "r" || e.key === "R") { e.preventDefault(); refresh(); }
  else if (e.key === "n" || e.key === "N") { e.preventDefault(); doMkdir(); }
  else if (e.key === "u" || e.key === "U") { e.preventDefault(); $("#f-files").click(); }
  else if ((e.key === "m" || e.key === "M") && S.sel.size) { e.preventDefault(); doMove(); }
  else if (e.key === "ArrowDown" && !e.target.closest("tr")) { e.preventDefault(); focusRow(S.cursor); }
});

// -- dialogs ------------------------------------------------------------------------------------------
const dlg = $("#dlg");
function ask({title, message = "", value = null, ok = "OK", danger = false, picker = null, validate = null}) {
  return new Promise(resolve => {
    $("#dlg-title").textContent = title; $("#dlg-msg").textContent = message; $("#dlg-msg").hidden = !message;
    const input = $("#dlg-input"); input.hidden = value === null; input.value = value || "";
    const pk = $("#dlg-picker"); pk.hidden = !picker; pk.textContent = "";
    $("#dlg-err").textContent = "";
    const okb = $("#dlg-ok"); okb.textContent = ok; okb.classList.toggle("danger", danger); okb.disabled = false;
    let pickPath = "";
    async function showPick(p) {
      pickPath = p; pk.innerHTML = '<div class="cur">Loading…</div>';
      let d; try { d = await api("GET", "/api/list?" + qs([["path", p]])); } catch (e) { $("#dlg-err").textContent = e.message; return; }
      pk.textContent = "";
      const cur = document.createElement("div"); cur.className = "cur";
      cur.innerHTML = `<code>${esc("/" + (p || ""))}</code>`;
      if (p) { const upb = document.createElement("button"); upb.type = "button"; upb.className = "btn"; upb.textContent = "Up";
        upb.onclick = () => showPick(p.split("/").slice(0, -1).join("/")); cur.appendChild(upb); }
      pk.appendChild(cur);
      const dirs = d.items.filter(i => i.type === "dir" && !picker.exclude.has(join(p, i.name)));
      if (!dirs.length) { const e = document.createElement("div"); e.className = "cur"; e.textContent = "No subfolders"; pk.appendChild(e); }
      for (const it of dirs) {
        const b = document.createElement("button"); b.type = "button"; b.className = "f";
        b.innerHTML = ICON.dir + `<span>${esc(it.name)}</span>`; b.onclick = () => showPick(join(p, it.name)); pk.appendChild(b);
      }
      okb.textContent = ok + " to /" + p;
      okb.disabled = picker.exclude.size > 0 && [...picker.exclude].every(x => x.split("/").slice(0, -1).join("/") === p);
    }
    if (picker) showPick(picker.start);
    const onSubmit = async ev => {
      if (dlg.returnValue === "cancel" || ev.submitter && ev.submitter.value === "cancel") return;
      const v = picker ? pickPath : (value === null ? true : input.value);
      if (validate) {
        ev.preventDefault();
        const msg = await validate(v);
        if (msg) { $("#dlg-err").textContent = msg; return; }
        dlg.close("ok");
      }
    };
    const form = $("form", dlg);
    form.onsubmit = onSubmit;
    dlg.onclose = () => {
      form.onsubmit = null; dlg.onclose = null;
      if (dlg.returnValue !== "ok") return resolve(null);
      resolve(picker ? pickPath : (value === null ? true : input.value));
    };
    dlg.returnValue = "";
    dlg.showModal();
    if (value !== null) { input.focus(); const dot = input.value.lastIndexOf("."); input.setSelectionRange(0, dot > 0 ? dot : input.value.length); }
    else okb.focus();
  });
}
function nameProblem(v) {
  if (!v || v === "." || v === "..") return "Enter a name.";
  if (v.includes("/")) return "A name cannot contain “/”.";
  if (new TextEncoder().encode(v).length > 255) return "The name is too long (at most 255 bytes).";
  return "";
}

// -- actions --------------------------------------------------------------------------------------------
async function doMkdir() {
  const v = await ask({title: "New folder", value: "New folder", ok: "Create", validate: async v => {
    const p = nameProblem(v); if (p) return p;
    try { await api("POST", "/api/mkdir", {path: join(S.path, v)}); } catch (e) { return e.message; }
  }});
  if (v !== null) { await refresh(); selectAndFocus(v); }
}
async function doTouch() {
  const v = await ask({title: "New file", value: "untitled.txt", ok: "Create", validate: async v => {
    const p = nameProblem(v); if (p) return p;
    try { await api("POST", "/api/touch", {path: join(S.path, v)}); } catch (e) { return e.message; }
  }});
  if (v !== null) { await refresh(); selectAndFocus(v); }
}
async function doRename() {
  if (S.sel.size !== 1) return;
  const old = [...S.sel][0];
  const v = await ask({title: "Rename", message: old, value: old, ok: "Rename", validate: async v => {
    const p = nameProblem(v); if (p) return p;
    if (v === old) return;
    try { await api("POST", "/api/rename", {path: join(S.path, old), name: v}); } catch (e) { return e.message; }
  }});
  if (v !== null) { await refresh(); selectAndFocus(v); }
}
async function doMove(paths, to) {
  paths = paths || selected(); if (!paths.length) return;
  if (to === undefined) {
    to = await ask({title: `Move ${paths.length === 1 ? "“" + paths[0].split("/").pop() + "”" : paths.length + " items"}`,
                    message: "Choose the destination folder.", ok: "Move", picker: {start: S.path, exclude: new Set(paths)}});
    if (to === null) return;
  }
  try { await api("POST", "/api/move", {paths, to}); clearError(); say(`Moved ${paths.length} item(s) to /${to}`); }
  catch (e) { showError("Move failed: " + e.message); }
  await refresh();
}
async function doDelete() {
  const paths = selected(); if (!paths.length) return;
  const names = [...S.sel], dirs = names.filter(n => (itemByName(n) || {}).type === "dir").length;
  const what = names.length === 1 ? "“" + names[0] + "”" : names.length + " items";
  const ok = await ask({title: "Delete " + what + "?", danger: true, ok: "Delete",
    message: (dirs ? "Folders are deleted with everything inside them. " : "") + "This cannot be undone." +
             (names.length > 1 ? "\n\n" + names.slice(0, 8).join("\n") + (names.length > 8 ? "\n…" : "") : "")});
  if (!ok) return;
  try { await api("POST", "/api/delete", {paths}); clearError(); say(`Deleted ${what}`); }
  catch (e) { showError("Delete failed: " + e.message); }
  await refresh();
  focusRow(S.cursor);
}
function download(paths) {
  const a = document.createElement("a");
  a.href = "/api/download?" + qs(paths.map(p => ["path", p])); a.download = "";
  document.body.appendChild(a); a.click(); a.remove();
}
function selectAndFocus(name) {
  S.sel.clear(); S.sel.add(name); updateActions();
  const i = [...rows.children].findIndex(tr => tr.dataset.name === name); if (i >= 0) focusRow(i);
}
$("#b-mkdir").onclick = doMkdir; $("#b-touch").onclick = doTouch; $("#b-rename").onclick = doRename;
$("#b-move").onclick = () => doMove(); $("#b-delete").onclick = doDelete; $("#b-refresh").onclick = refresh;
$("#b-download").onclick = () => download(selected());
$("#b-upload").onclick = () => $("#f-files").click();
$("#b-upfolder").onclick = () => $("#f-dir").click();

// -- uploads --------------------------------------------------------------------------------------------
const UP = {queue: [], active: 0, max: 3, done: 0, failed: 0, total: 0, target: null};
$("#up-close").onclick = () => { if (!UP.active && !UP.queue.length) $("#uploads").hidden = true; };
$("#up-clear").onclick = () => { for (const li of [...$("#up-list").children]) if (li.classList.contains("done") || li.classList.contains("err")) li.remove(); upTitle(); };
function upTitle() {
  const left = UP.active + UP.queue.length;
  $("#up-title").textContent = left ? `Uploading ${left} file${left === 1 ? "" : "s"}…` :
    `Uploads finished` + (UP.failed ? ` (${UP.failed} failed)` : "");
}
async function startUpload(base, files, dirs) {
  // files: [[File, "rel/path"]], dirs: ["rel/dir"] (empty folders of a dropped tree)
  if (!files.length && !dirs.length) return;
  const top = new Set([...files.map(f => f[1]), ...dirs].map(p => p.split("/")[0]));
  const clash = base === S.path ? S.items.filter(i => top.has(i.name)).map(i => i.name) : [];
  let overwrite = false;
  if (clash.length) {
    const ok = await ask({title: "Replace existing items?", ok: "Replace", danger: true,
      message: `${clash.length === 1 ? "“" + clash[0] + "” already exists" : clash.length + " items already exist"} in this folder. Files with the same name will be replaced.`});
    if (!ok) return;
    overwrite = true;
  }
  for (const d of dirs) {
    try { await api("POST", "/api/mkdir", {path: join(base, d), parents: true}); }
    catch (e) { showError(`${d}: ${e.message}`); if (/read-only/i.test(e.message)) return; }
  }
  $("#uploads").hidden = false;
  for (const [file, rel] of files) {
    const li = document.createElement("li");
    li.innerHTML = `<div class="row"><span class="fn"></span><span class="st">Waiting</span></div><progress max="1" value="0"></progress>`;
    $(".fn", li).textContent = rel; $(".fn", li).title = join(base, rel);
    $("#up-list").appendChild(li);
    UP.queue.push({file, path: join(base, rel), li, overwrite});
  }
  upTitle(); pump();
  if (!dirs.length) return;
  refresh();
}
function pump() {
  while (UP.active < UP.max && UP.queue.length) send(UP.queue.shift());
  upTitle();
}
function send(u) {
  UP.active++;
  const xhr = new XMLHttpRequest(), st = $(".st", u.li), bar = $("progress", u.li);
  xhr.open("PUT", "/api/upload?" + qs([["path", u.path], ["overwrite", u.overwrite ? "1" : "0"]]));
  xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  st.textContent = "0%";
  xhr.upload.onprogress = e => { if (e.lengthComputable && e.total) { bar.value = e.loaded / e.total; st.textContent = Math.floor(100 * e.loaded / e.total) + "% of " + fmtSize(e.total); } };
  const fail = msg => { u.li.classList.add("err"); st.textContent = msg; UP.failed++; showError(`Upload of ${u.path} failed: ${msg}`); };
  xhr.onload = () => {
    if (xhr.status >= 200 && xhr.status < 300) { u.li.classList.add("done"); bar.value = 1; st.textContent = "Done · " + fmtSize(u.file.size); }
    else { let m = xhr.status + " " + xhr.statusText; try { m = JSON.parse(xhr.responseText).error || m; } catch (e) {} fail(m); }
  };
  xhr.onerror = () => fail("Network error");
  xhr.onabort = () => fail("Cancelled");
  xhr.onloadend = () => {
    UP.active--; pump();
    if (!UP.active && !UP.queue.length) refresh();
  };
  xhr.send(u.file);
}
$("#f-files").addEventListener("change", e => { const fs = [...e.target.files].map(f => [f, f.name]); e.target.value = ""; startUpload(S.path, fs, []); });
$("#f-dir").addEventListener("change", e => {
  const fs = [...e.target.files].map(f => [f, f.webkitRelativePath || f.name]); e.target.value = "";
  if (!fs.length) { showError("The folder is empty (browsers do not send empty folders from this dialog; drag and drop it instead)."); return; }
  startUpload(S.path, fs, []);
});

// drag & drop: files and folders from the desktop (kept with their structure), rows onto folders (move)
const INTERNAL = "application/x-workbay-paths";
let dragDepth = 0;
function isFiles(e) { return e.dataTransfer && [...e.dataTransfer.types].includes("Files"); }
function isInternal(e) { return e.dataTransfer && [...e.dataTransfer.types].includes(INTERNAL); }
document.addEventListener("dragenter", e => { if (isFiles(e)) { dragDepth++; $("#drop-where").textContent = "/" + S.path; document.body.classList.add("dragging"); } });
document.addEventListener("dragleave", e => { if (isFiles(e) && --dragDepth <= 0) { dragDepth = 0; document.body.classList.remove("dragging"); } });
document.addEventListener("dragover", e => { if (isFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; } });
document.addEventListener("drop", e => {
  if (!isFiles(e)) return;
  e.preventDefault(); dragDepth = 0; document.body.classList.remove("dragging");
  uploadDropped(e.dataTransfer, S.path);
});
function uploadDropped(dt, base) {
  // entries must be taken before anything awaits: the DataTransfer is emptied afterwards
  const entries = [...dt.items].filter(i => i.kind === "file").map(i => i.webkitGetAsEntry ? i.webkitGetAsEntry() : null);
  if (!entries.length || entries.some(x => !x)) { startUpload(base, [...dt.files].map(f => [f, f.name]), []); return; }
  const out = {files: [], dirs: []};
  say("Reading dropped folders…");
  Promise.all(entries.map(en => walk(en, "", out))).then(() => startUpload(base, out.files, out.dirs),
    err => showError("Could not read what was dropped: " + (err && err.message || err)));
}
async function walk(entry, prefix, out) {
  const p = prefix + entry.name;
  if (entry.isFile) { out.files.push([await new Promise((res, rej) => entry.file(res, rej)), p]); return; }
  if (!entry.isDirectory) return;
  out.dirs.push(p);
  const reader = entry.createReader();
  for (;;) {
    const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    for (const c of batch) await walk(c, p + "/", out);
  }
}
rows.addEventListener("dragstart", e => {
  const tr = e.target.closest("tr"); if (!tr) return;
  if (!S.sel.has(tr.dataset.name)) { S.sel.clear(); S.sel.add(tr.dataset.name); updateActions(); }
  e.dataTransfer.setData(INTERNAL, JSON.stringify(selected())); e.dataTransfer.effectAllowed = "move";
});
function dragOverTarget(e, target) {
  if (isInternal(e) || isFiles(e)) { e.preventDefault(); e.stopPropagation(); e.dataTransfer.dropEffect = isInternal(e) ? "move" : "copy"; }
}
function dropOnTarget(e, target) {
  if (isInternal(e)) {
    e.preventDefault(); e.stopPropagation();
    const paths = JSON.parse(e.dataTransfer.getData(INTERNAL) || "[]").filter(p => p !== target);
    if (paths.length) doMove(paths, target);
  } else if (isFiles(e)) {
    e.preventDefault(); e.stopPropagation(); dragDepth = 0; document.body.classList.remove("dragging");
    uploadDropped(e.dataTransfer, target);
  }
}
rows.addEventListener("dragover", e => {
  const tr = e.target.closest("tr"), it = tr && itemByName(tr.dataset.name);
  for (const r of rows.querySelectorAll(".drop-into")) if (r !== tr) r.classList.remove("drop-into");
  if (it && it.type === "dir" && !(isInternal(e) && S.sel.has(it.name))) { tr.classList.add("drop-into"); dragOverTarget(e, join(S.path, it.name)); }
});
rows.addEventListener("dragleave", e => { const tr = e.target.closest("tr"); if (tr && !tr.contains(e.relatedTarget)) tr.classList.remove("drop-into"); });
rows.addEventListener("drop", e => {
  const tr = e.target.closest("tr"), it = tr && itemByName(tr.dataset.name);
  for (const r of rows.querySelectorAll(".drop-into")) r.classList.remove("drop-into");
  if (it && it.type === "dir" && !(isInternal(e) && S.sel.has(it.name))) dropOnTarget(e, join(S.path, it.name));
});

load(pathFromHash()).then(() => focusRow(0));
</script></body></html>
"""


# -- the server -----------------------------------------------------------------------------------------------
def make_app(root: str) -> Any:
    """The tornado application serving ``root`` (tornado is imported here, not at module level)."""
    import tornado.ioloop
    import tornado.iostream
    import tornado.web

    root_real = os.path.realpath(root)
    root_label = os.path.basename(root_real) or root_real

    def api(method):
        """JSON errors for PathError and OSError; the header check for mutating requests."""
        async def wrapper(self, *args, **kwargs):
            try:
                if self.request.method not in ("GET", "HEAD"):
                    self.check_csrf()
                result = method(self, *args, **kwargs)
                if hasattr(result, "__await__"):
                    result = await result
                if result is not None and not self._finished:
                    self.send_json(result)
            except PathError as e:
                self.send_json({"error": e.message}, e.status)
            except OSError as e:
                err = fs_error(e)
                self.send_json({"error": err.message}, err.status)
        return wrapper

    class Base(tornado.web.RequestHandler):
        def set_default_headers(self) -> None:
            self.set_header("Cache-Control", "no-store")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Referrer-Policy", "same-origin")

        def check_csrf(self) -> None:
            if not self.request.headers.get("X-Requested-With"):
                raise PathError("Missing X-Requested-With header (requests must come from the page).", 403)

        def send_json(self, data: Any, status: int = 200) -> None:
            if self._headers_written:  # a download broke midway: end the connection
                self.abort()
                return
            self.set_status(status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps(data))

        def json_body(self) -> Dict[str, Any]:
            try:
                body = json.loads(self.request.body or b"{}")
            except ValueError:
                raise PathError("The request body must be JSON.") from None
            if not isinstance(body, dict):
                raise PathError("The request body must be a JSON object.")
            return body

        def abort(self) -> None:
            stream = getattr(self.request.connection, "stream", None)
            if stream is not None:
                stream.close()
            self._finished = True

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"error": self._reason}))

    class Page(Base):
        def get(self) -> None:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                            "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                            "frame-ancestors 'self'; base-uri 'none'")
            self.finish(PAGE)

    class Favicon(Base):
        def get(self) -> None:
            self.set_status(204)
            self.finish()

    class ListDir(Base):
        @api
        def get(self) -> Dict[str, Any]:
            rel = self.get_query_argument("path", "")
            listed = list_folder(root_real, rel)
            return {"path": "/".join(split_path(rel)), "root": root_label,
                    "readonly": listed["readonly"], "writable": listed["writable"],
                    "items": listed["items"]}

    class Mkdir(Base):
        @api
        def post(self) -> Dict[str, Any]:
            body = self.json_body()
            full = op_mkdir(root_real, body.get("path"), bool(body.get("parents")))
            return {"path": relative(root_real, full)}

    class Touch(Base):
        @api
        def post(self) -> Dict[str, Any]:
            return {"path": relative(root_real, op_touch(root_real, self.json_body().get("path")))}

    class Rename(Base):
        @api
        def post(self) -> Dict[str, Any]:
            body = self.json_body()
            return {"path": relative(root_real, op_rename(root_real, body.get("path"), body.get("name")))}

    class Move(Base):
        @api
        async def post(self) -> Dict[str, Any]:
            body = self.json_body()
            paths = body.get("paths", [body["path"]] if "path" in body else [])
            loop = tornado.ioloop.IOLoop.current()
            moved = await loop.run_in_executor(None, op_move, root_real, paths, body.get("to", ""))
            return {"paths": [relative(root_real, p) for p in moved]}

    class Delete(Base):
        @api
        async def post(self) -> Dict[str, Any]:
            body = self.json_body()
            paths = body.get("paths", [body["path"]] if "path" in body else [])
            loop = tornado.ioloop.IOLoop.current()
            return {"deleted": await loop.run_in_executor(None, op_delete, root_real, paths)}

    class Download(Base):
        @api
        async def get(self) -> None:
            rels = self.get_query_arguments("path") or [""]
            fulls = []
            for r in rels:
                with locate(root_real, r) as loc:
                    st = loc.lstat()
                    if st is None:
                        raise PathError(f"/{r}: No such file or directory", 404)
                    if len(rels) == 1 and not stat.S_ISDIR(st.st_mode):
                        # one file: served from the descriptor opened here (regular files only)
                        fd, fst = open_file(loc)
                        await self._file(fd, fst, loc.name)
                        return
                    fulls.append(loc.full)
            await self._zip(rels, fulls)

        async def _file(self, fd: int, st: os.stat_result, name: str) -> None:
            f = os.fdopen(fd, "rb")
            with f:
                self.set_header("Content-Type", "application/octet-stream")
                self.set_header("Content-Disposition", content_disposition(name))
                self.set_header("Content-Length", str(st.st_size))
                while True:
                    block = f.read(CHUNK)
                    if not block:
                        break
                    self.write(block)
                    try:
                        await self.flush()
                    except tornado.iostream.StreamClosedError:
                        return
            self.finish()

        async def _zip(self, rels: List[str], fulls: List[str]) -> None:
            if len(fulls) == 1:
                name = os.path.basename(fulls[0]) if fulls[0] != root_real else root_label
            else:
                parent = os.path.dirname(fulls[0])
                name = os.path.basename(parent) if parent != root_real else root_label
            sources = [(r, os.path.basename(f) if f != root_real else root_label) for r, f in zip(rels, fulls)]
            self.set_header("Content-Type", "application/zip")
            self.set_header("Content-Disposition", content_disposition(name + ".zip"))
            gen = iter_zip(root_real, sources)
            loop = tornado.ioloop.IOLoop.current()
            try:
                while True:
                    block = await loop.run_in_executor(None, next, gen, None)
                    if block is None:
                        break
                    self.write(block)
                    await self.flush()
            except tornado.iostream.StreamClosedError:
                return
            finally:
                gen.close()
            self.finish()

    @tornado.web.stream_request_body
    class Upload(Base):
        def initialize(self) -> None:
            self.fd: Optional[int] = None
            self.tmp: Optional[str] = None
            self.loc: Optional[Located] = None
            self.target: Optional[str] = None
            self.error: Optional[PathError] = None
            self.received = 0

        def prepare(self) -> None:
            self.request.connection.set_max_body_size(MAX_UPLOAD_BYTES)
            self.request.connection.set_body_timeout(24 * 3600)
            # Errors are answered once the body is read: a reply before that would reach the
            # browser (through the proxy) as a broken connection rather than as the message.
            try:
                self.check_csrf()
                rel = self.get_query_argument("path", "")
                overwrite = self.get_query_argument("overwrite", "0") in ("1", "true", "yes")
                parts = split_path(rel)
                if not parts:
                    raise PathError("A file name is required.")
                # the parents walked by descriptor (missing ones made); the file goes to a
                # temporary name in the parent's descriptor, renamed over the target when
                # complete (a link there is replaced, never written through)
                self.loc = locate(root_real, parts, follow=False, create=True)
                st = self.loc.lstat()
                if st is not None:
                    if stat.S_ISDIR(st.st_mode):
                        raise PathError(f"{parts[-1]}: Is a folder", 409)
                    if not overwrite:
                        raise PathError(f"{parts[-1]}: File exists", 409)
                self.target = self.loc.full
                self.tmp = TMP_PREFIX + secrets.token_hex(8)
                self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                  0o666, dir_fd=self.loc.dir_fd)
            except PathError as e:
                self.error = e
            except OSError as e:
                self.error = fs_error(e)

        def data_received(self, chunk: bytes) -> None:
            if self.fd is None:
                return
            view = memoryview(chunk)
            try:
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
                self.received += len(chunk)
            except OSError as e:
                self.error = fs_error(e)
                self._cleanup()

        def _cleanup(self) -> None:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            if self.tmp is not None and self.loc is not None:
                try:
                    os.unlink(self.tmp, dir_fd=self.loc.dir_fd)
                except OSError:
                    pass
            self.tmp = None
            if self.loc is not None:
                self.loc.close()
                self.loc = None

        def put(self) -> None:
            if self.error is not None:
                self._cleanup()
                return self.send_json({"error": self.error.message}, self.error.status)
            try:
                os.close(self.fd)
                self.fd = None
                os.rename(self.tmp, self.loc.name, src_dir_fd=self.loc.dir_fd, dst_dir_fd=self.loc.dir_fd)
                self.tmp = None
            except OSError as e:
                self._cleanup()
                err = fs_error(e)
                return self.send_json({"error": err.message}, err.status)
            self._cleanup()
            self.send_json({"path": relative(root_real, self.target), "size": self.received}, 201)

        post = put

        def on_connection_close(self) -> None:
            self._cleanup()

        def on_finish(self) -> None:
            self._cleanup()

    return tornado.web.Application([
        (r"/", Page),
        (r"/favicon\.ico", Favicon),
        (r"/api/list", ListDir),
        (r"/api/upload", Upload),
        (r"/api/mkdir", Mkdir),
        (r"/api/touch", Touch),
        (r"/api/rename", Rename),
        (r"/api/move", Move),
        (r"/api/delete", Delete),
        (r"/api/download", Download),
    ])


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Workbay File Browser")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", default=HOME)
    parser.add_argument("--home", default=HOME, help="the root must be inside this folder")
    parser.add_argument("--address", default="0.0.0.0")
    args = parser.parse_args(argv)
    root = root_allowed(args.root, args.home)

    import tornado.httpserver
    import tornado.ioloop

    server = tornado.httpserver.HTTPServer(make_app(root), max_body_size=8 << 20,
                                           max_buffer_size=16 << 20, idle_connection_timeout=3600)
    server.listen(args.port, address=args.address)
    print(f"File Browser for {root} on {args.address}:{args.port}", flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
