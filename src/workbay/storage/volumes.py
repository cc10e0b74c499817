"""Volumes: a directory holding folders laid out as ``<root>/<scope_type>/<scope_id>/<vfid>``.

``vfs`` enforces quotas itself (usage summed per scope before an upload is accepted); ``xfs`` sets
project quotas with ``xfs_quota`` when the filesystem supports them (detected at startup) and
otherwise reports quotas as unsupported. Quota limits are remembered in ``<root>/.workbay/``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from workbay.common.config import StorageVolumeConfig, WorkbayConfig
from workbay.common.errors import InvalidAPIParameters

from . import ownership, safe_fs
from .errors import FileExists, InvalidPath, NotFound, NotRegularFile, QuotaUnsupported
from .quota import SCOPE_TYPES, QuotaScope, parse_vfid, percentage

log = logging.getLogger(__name__)
META = ".workbay"


def tree_usage(path: Path) -> tuple[int, int]:
    """(bytes, file count) under ``path``; walked by descriptor, symlinks are counted as entries,
    never followed (a directory swapped for a link while it is walked is not entered)."""
    try:
        fd = safe_fs.open_folder(path)
    except (NotFound, InvalidPath, PermissionError):
        return 0, 0
    try:
        return safe_fs.tree_usage_fd(fd)
    finally:
        safe_fs.close(fd)


def copy_tree(src_fd: int, dst_fd: int) -> None:
    """A copy of everything below ``src_fd`` into ``dst_fd``, walked and written by descriptor:
    links are copied as links (never followed), regular files opened ``O_NOFOLLOW`` and their
    type checked before reading, FIFOs, sockets and devices left out, modes and times kept."""
    dirs: dict[str, int] = {"": os.dup(dst_fd)}
    times: dict[str, tuple[int, int]] = {}
    try:
        for prefix, entry, sfd in safe_fs.walk_tree(src_fd):
            out = dirs.get(prefix)
            if out is None:  # its directory was left out
                continue
            name = entry.name
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(name, stat.S_IMODE(st.st_mode) | 0o700, dir_fd=out)
                    path = f"{prefix}/{name}" if prefix else name
                    dirs[path] = safe_fs.open_dir_at(out, name, path)
                    times[path] = (st.st_atime_ns, st.st_mtime_ns)
                elif stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(name, dir_fd=sfd), name, dir_fd=out)
                elif stat.S_ISREG(st.st_mode):
                    _copy_file(sfd, name, out)
            except (FileNotFoundError, InvalidPath, NotFound, NotRegularFile):
                continue  # vanished or swapped meanwhile: left out
        for path, ns in times.items():  # times of directories, now their contents are written
            try:
                os.utime(dirs[path], ns=ns)
            except OSError:
                pass
    finally:
        for fd in dirs.values():
            safe_fs.close(fd)


def _copy_file(sfd: int, name: str, out: int) -> None:
    src, st = safe_fs.open_node(sfd, name)
    try:
        if not stat.S_ISREG(st.st_mode):
            return
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      stat.S_IMODE(st.st_mode), dir_fd=out)
        try:
            remaining = st.st_size
            while remaining > 0:
                n = os.copy_file_range(src, dst, min(remaining, 1 << 30)) \
                    if hasattr(os, "copy_file_range") else 0
                if n <= 0:
                    while chunk := os.read(src, 1 << 20):
                        os.write(dst, chunk)
                    break
                remaining -= n
            os.fchmod(dst, stat.S_IMODE(st.st_mode))
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(dst)
    finally:
        os.close(src)


# Seconds a folder's usage figure is reused.  Writes through the proxy drop it at once; writes made
# in sessions (straight to the mounted directory) show in the figure within this time.
USAGE_TTL = 60.0


class UsageCache:
    """(bytes, file count) per folder, from one walk, reused until a write through the proxy drops
    it or it is older than ``ttl``.  A walk that a write overtook is not kept (the generation
    counter), so a figure is never older than the last write through the proxy."""

    def __init__(self, ttl: float = USAGE_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._lock = threading.Lock()
        self._figures: dict[str, tuple[float, int, int]] = {}
        self._generations: dict[str, int] = {}

    def get(self, key: str, walk: Callable[[], tuple[int, int]]) -> tuple[int, int]:
        now = self.clock()
        with self._lock:
            cached = self._figures.get(key)
            generation = self._generations.get(key, 0)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1], cached[2]
        used, count = walk()
        with self._lock:
            if self._generations.get(key, 0) == generation:
                self._figures[key] = (now, used, count)
        return used, count

    def drop(self, key: str) -> None:
        with self._lock:
            self._figures.pop(key, None)
            self._generations[key] = self._generations.get(key, 0) + 1


class Volume:
    backend = "vfs"

    def __init__(self, name: str, root: Path, host: str = "", usage_ttl: float = USAGE_TTL) -> None:
        self.usage_cache = UsageCache(usage_ttl)
        self.name = name
        self.host = host or name
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # The proxy's own state (unfinished uploads, quotas) is nobody else's business: volumes of a
        # cluster live outside the 0700 data dir, so the meta dir is private itself (fixed at start).
        for d in (self.meta_dir, self.upload_dir, self.meta_dir / "quota"):
            d.mkdir(mode=0o700, exist_ok=True)
            os.chmod(d, 0o700)

    # --- layout ---
    @property
    def meta_dir(self) -> Path:
        return self.root / META

    @property
    def upload_dir(self) -> Path:
        return self.meta_dir / "uploads"

    def scope_dir(self, scope: QuotaScope) -> Path:
        return self.root / scope.type / scope.id

    def find_folder(self, vfid: str) -> Path | None:
        hexid = parse_vfid(vfid)
        for kind in SCOPE_TYPES:
            base = self.root / kind
            try:
                scopes = os.scandir(base)
            except FileNotFoundError:
                continue
            with scopes:
                for s in scopes:
                    candidate = Path(s.path) / hexid
                    if candidate.is_dir():
                        return candidate
        return None

    def folder_path(self, vfid: str) -> Path:
        path = self.find_folder(vfid)
        if path is None:
            raise NotFound(f"No folder {vfid} on volume {self.name}.", title="No such virtual folder.")
        return path

    def folder_scope(self, folder: Path) -> QuotaScope:
        return QuotaScope(folder.parent.parent.name, folder.parent.name)

    # --- folders ---
    def changed(self, folder: Path) -> None:
        """A write through the proxy into ``folder``: its usage figure is walked again next time."""
        self.usage_cache.drop(folder.name)

    def create_folder(self, scope: QuotaScope, vfid: str, *, exist_ok: bool = False,
                      owner: ownership.Owner | None = None) -> Path:
        hexid = parse_vfid(vfid)
        existing = self.find_folder(hexid)
        if existing is not None:
            if exist_ok:
                return existing
            raise FileExists(f"Folder {hexid} already exists.")
        path = self.scope_dir(scope) / hexid
        path.mkdir(parents=True)
        self.on_scope_dir(scope)
        self.changed(path)
        ownership.give(path, [path], owner)
        return path

    def delete_folder(self, vfid: str) -> None:
        path = self.folder_path(vfid)
        try:
            shutil.rmtree(path)
        finally:
            self.changed(path)

    def clone_folder(self, vfid: str, dst: Volume, dst_scope: QuotaScope, dst_vfid: str,
                     owner: ownership.Owner | None = None) -> Path:
        src = self.folder_path(vfid)
        target = dst.create_folder(dst_scope, dst_vfid, owner=owner)
        try:
            with safe_fs.folder_fd(src) as sfd, safe_fs.folder_fd(target) as tfd:
                copy_tree(sfd, tfd)
        finally:
            dst.changed(target)
        ownership.give_tree(target, owner)
        return target

    def folder_usage(self, vfid: str) -> dict:
        """Bytes and file count of a folder: the cached figure (UsageCache), else a walk."""
        path = self.folder_path(vfid)
        used, count = self.usage_cache.get(path.name, lambda: tree_usage(path))
        return {"used_bytes": used, "file_count": count}

    def folders_usage(self, vfids: list[str]) -> dict[str, dict | None]:
        """``folder_usage`` of many folders (one listing's worth); None for a folder not here."""
        out: dict[str, dict | None] = {}
        for vfid in vfids:
            try:
                out[vfid] = self.folder_usage(vfid)
            except (NotFound, InvalidAPIParameters):
                out[vfid] = None
        return out

    # --- volume ---
    @property
    def quota_supported(self) -> bool:
        return True

    @property
    def capabilities(self) -> list[str]:
        return ["vfolder", "quota"] if self.quota_supported else ["vfolder"]

    def usage(self) -> dict:
        du = shutil.disk_usage(self.root)
        used = du.total - du.free
        return {"used": used, "total": du.total, "percentage": percentage(used, du.total)}

    def info(self) -> dict:
        return {"name": self.name, "host": self.host, "backend": self.backend, "path": str(self.root),
                "capabilities": self.capabilities, "quota_supported": self.quota_supported,
                "usage": self.usage()}

    # --- quotas ---
    def _limit_file(self, scope: QuotaScope) -> Path:
        return self.meta_dir / "quota" / f"{scope.type}-{scope.id}.json"

    def scope_limit(self, scope: QuotaScope) -> int | None:
        try:
            return int(json.loads(self._limit_file(scope).read_text())["limit_bytes"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def scope_used(self, scope: QuotaScope) -> int:
        return tree_usage(self.scope_dir(scope))[0]

    def get_quota(self, scope: QuotaScope, with_usage: bool = True) -> dict:
        """The scope's limit and (unless ``with_usage`` is off: a walk of the scope) its usage."""
        used, count = tree_usage(self.scope_dir(scope)) if with_usage else (None, None)
        return {"quota_scope_id": str(scope), "supported": self.quota_supported,
                "limit_bytes": self.scope_limit(scope) if self.quota_supported else None,
                "used_bytes": used, "file_count": count}

    def set_quota(self, scope: QuotaScope, limit_bytes: int) -> None:
        if not self.quota_supported:
            raise QuotaUnsupported(f"Volume {self.name} ({self.backend}) does not support quotas.")
        if limit_bytes < 0:
            raise InvalidAPIParameters("limit_bytes must be >= 0.")
        self.scope_dir(scope).mkdir(parents=True, exist_ok=True)
        self.on_scope_dir(scope)
        tmp = self._limit_file(scope).with_suffix(".tmp")
        tmp.write_text(json.dumps({"limit_bytes": int(limit_bytes)}))
        os.replace(tmp, self._limit_file(scope))
        self.apply_limit(scope, int(limit_bytes))

    def unset_quota(self, scope: QuotaScope) -> None:
        if not self.quota_supported:
            raise QuotaUnsupported(f"Volume {self.name} ({self.backend}) does not support quotas.")
        self._limit_file(scope).unlink(missing_ok=True)
        self.apply_limit(scope, None)

    # hooks for backends enforcing quotas in the filesystem
    def on_scope_dir(self, scope: QuotaScope) -> None:
        pass

    def apply_limit(self, scope: QuotaScope, limit_bytes: int | None) -> None:
        pass


Runner = Callable[[list[str]], tuple[int, str]]


def run_command(argv: list[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, str(e)
    return proc.returncode, proc.stdout + proc.stderr


def mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path):
        path = path.parent
    return path


class XfsVolume(Volume):
    """Project quotas: one XFS project id per quota scope (ids kept in .workbay/xfs-projects.json)."""

    backend = "xfs"

    def __init__(self, name: str, root: Path, host: str = "", runner: Runner = run_command,
                 usage_ttl: float = USAGE_TTL) -> None:
        super().__init__(name, root, host, usage_ttl)
        self.runner = runner
        self.mount = mount_point(self.root)
        self._supported = self._detect()
        if not self._supported:
            log.warning("volume %s: no XFS project quotas at %s; quotas unsupported", name, self.root)

    def _detect(self) -> bool:
        rc, out = self.runner(["stat", "-f", "-c", "%T", str(self.root)])
        if rc != 0 or out.strip() != "xfs":
            return False
        rc, out = self.runner(["xfs_quota", "-x", "-c", "state -p", str(self.mount)])
        return rc == 0 and "Enforcement: ON" in out

    @property
    def quota_supported(self) -> bool:
        return self._supported

    def _projects_file(self) -> Path:
        return self.meta_dir / "xfs-projects.json"

    def project_id(self, scope: QuotaScope) -> int:
        path = self._projects_file()
        try:
            ids = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            ids = {}
        key = str(scope)
        if key not in ids:
            ids[key] = max(ids.values(), default=10000) + 1
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(ids))
            os.replace(tmp, path)
        return int(ids[key])

    def _xfs(self, command: str) -> None:
        rc, out = self.runner(["xfs_quota", "-x", "-c", command, str(self.mount)])
        if rc != 0:
            raise RuntimeError(f"xfs_quota {command!r} failed: {out.strip()}")

    def on_scope_dir(self, scope: QuotaScope) -> None:
        if self._supported:
            self._xfs(f"project -s -p {self.scope_dir(scope)} {self.project_id(scope)}")

    def apply_limit(self, scope: QuotaScope, limit_bytes: int | None) -> None:
        if self._supported:
            self._xfs(f"limit -p bhard={limit_bytes or 0} {self.project_id(scope)}")


BACKENDS: dict[str, type[Volume]] = {"vfs": Volume, "xfs": XfsVolume}


def volume_configs(config: WorkbayConfig) -> list[StorageVolumeConfig]:
    if config.storage.volumes:
        return list(config.storage.volumes)
    return [StorageVolumeConfig(name="volume1", backend="vfs",
                                path=config.data_dir / "volumes" / "volume1")]


class Volumes:
    """The configured volumes, addressed as ``volume1`` or ``<proxy_name>:volume1``."""

    def __init__(self, config: WorkbayConfig) -> None:
        self.proxy_name = config.storage.proxy_name
        ownership.configure(config.storage.file_owner)
        self.by_name: dict[str, Volume] = {}
        for vc in volume_configs(config):
            cls = BACKENDS[vc.backend]
            self.by_name[vc.name] = cls(vc.name, vc.path, f"{self.proxy_name}:{vc.name}",
                                        usage_ttl=config.storage.usage_ttl)

    def get(self, name: str) -> Volume:
        proxy, sep, vol = str(name).rpartition(":")
        if sep and proxy != self.proxy_name:
            raise NotFound(f"No volume {name!r}.", title="No such volume.")
        try:
            return self.by_name[vol]
        except KeyError:
            raise NotFound(f"No volume {name!r}.", title="No such volume.") from None

    def __iter__(self):
        return iter(self.by_name.values())
