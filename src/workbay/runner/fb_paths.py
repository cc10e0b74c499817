"""The File Browser's path operations (pure Python, no tornado): every path the API takes is
relative to the root and confined to it.

Confinement: no ``..``, no absolute paths, no NUL, names of at most 255 bytes; paths are walked
component by component by descriptor (``O_NOFOLLOW``), links inside the root are followed, links
that lead out of it refused, and the last component is acted on with ``*at`` calls, so a link
swapped in mid-operation never takes an operation outside the root.  Only regular files are read
(a FIFO would block the server's one event loop).

Used by ``fb_server`` (the tornado handlers) and by ``services`` (the root check), and tested on
the host.  Python 3.9 compatible, standard library only."""

from __future__ import annotations

import errno
import os
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
