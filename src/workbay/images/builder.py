"""Build kernel images from recipes, and list the Workbay images an engine has.

How each step reaches the engine:

* rootfs: ``mmdebstrap`` runs as a subprocess on the host. Making a Debian root filesystem is not
  an engine operation, so no API can do it (and it needs no container: one apt run, ~20-40 s).
  Its tarball streams from mmdebstrap's stdout straight into the import below: no tarball on disk.
* import: Docker Engine API ``POST /images/create?fromSrc=-`` (through aiodocker). Tagged
  ``localhost/workbay/rootfs:<name>-<tag>-<hash>`` so a changed Containerfile reuses the rootfs.
* build: Docker Engine API ``POST /build`` with the recipe directory as the context, the base as
  build argument ``BASE_IMAGE`` and the labels as the ``labels`` parameter; Podman's extra
  parameter ``layers=0`` makes one layer and leaves no intermediate images. The host's CA bundle
  travels in the context and is bind-mounted into the RUN steps that fetch over HTTPS
  (``RUN --mount=type=bind``, Buildah and BuildKit syntax), so it never lands in a layer.
* inspect, tag, delete, list: Docker Engine API.

So nothing calls ``podman``: the same code works against Podman's compatible socket and (for
everything but ``layers``/``RUN --mount``, which need Buildah or BuildKit) Docker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import json
import os
import shutil
import signal
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiodocker
from aiodocker.exceptions import DockerError

from .engine import connect, engine_url, ping
from .recipes import (
    LABEL_IMAGE,
    LABEL_KERNELSPEC,
    LABEL_RECIPE_HASH,
    REGISTRY_PREFIX,
    ROOTFS_REPO,
    Recipe,
    RecipeError,
    all_build_order,
    build_order,
    find_recipe,
    image_labels,
    load_recipes,
    recipe_hash,
    rootfs_hash,
    short_image_name,
)

# What mmdebstrap leaves out of every rootfs (and, through /etc/dpkg/dpkg.cfg.d, out of packages
# installed later in the image): manuals, docs except copyright files, translations.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)
APT_OPTIONS = ('Acquire::Retries "3"',)
CA_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",     # Debian, Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",       # Fedora, RHEL
    "/etc/ssl/cert.pem",                      # Alpine, macOS
)
CONTEXT_CA_PATH = ".workbay/host-ca.crt"
TEMP_PREFIX = "workbay-rootfs-"
_TAIL_LINES = 25

EventKind = Literal["start", "step", "log", "skip", "done"]


@dataclass(frozen=True)
class BuildEvent:
    """One thing to tell the person waiting: a step begins, a line of output, the end."""

    image: str            # short name, "python:3.11"
    kind: EventKind
    message: str
    elapsed: float        # seconds since build_image() was called


ProgressCallback = Callable[[BuildEvent], None]


@dataclass(frozen=True)
class BuildResult:
    image: str            # full reference, "localhost/workbay/python:3.11"
    image_id: str
    size: int
    recipe_hash: str
    built: bool           # False when the image was already up to date
    seconds: float


class BuildError(Exception):
    """A build failed; the message says which image, which step, and the last lines of output."""

    def __init__(self, message: str, *, image: str | None = None, step: str | None = None,
                 tail: list[str] | None = None) -> None:
        self.image = image
        self.step = step
        self.tail = list(tail or [])
        text = message
        if image or step:
            where = " ".join(x for x in (image, f"at {step!r}" if step else None) if x)
            text = f"building {where} failed: {message}"
        if self.tail:
            text += "\nlast output:\n  " + "\n  ".join(self.tail)
        super().__init__(text)


def host_ca_bundle() -> Path:
    """The host's CA bundle, which builds use for HTTPS (the host may trust a proxy's CA)."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), *CA_BUNDLE_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BuildError("no CA bundle found on this host (looked at $SSL_CERT_FILE and "
                     + ", ".join(CA_BUNDLE_CANDIDATES) + ")")


class _Reporter:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.t0 = time.monotonic()

    def __call__(self, image: str, kind: EventKind, message: str) -> None:
        if self.callback is not None:
            self.callback(BuildEvent(image, kind, message, time.monotonic() - self.t0))


async def build_image(name: str, progress_callback: ProgressCallback | None = None, *,
                      force: bool = False, docker_url: str | None = None,
                      recipes_dir: Path | None = None) -> list[BuildResult]:
    """Build image ``name`` ("python:3.11", a full name, or "all") and the bases it needs.

    Idempotent: an image whose ``org.workbay.recipe-hash`` label matches its recipe is skipped.
    ``force`` rebuilds the named image(s) (rootfs included) but not up-to-date bases. Returns one
    result per image in build order (bases first). Raises BuildError or RecipeError.
    """
    report = _Reporter(progress_callback)
    recipes = load_recipes(recipes_dir)
    if name == "all":
        targets = all_build_order(recipes)
        forced = {r.short_name for r in targets} if force else set()
    else:
        target = find_recipe(recipes, name)
        targets = build_order(recipes, target.short_name)
        forced = {target.short_name} if force else set()
    url = docker_url or engine_url()
    docker = connect(url)
    try:
        await _ping(docker, url)
        results = []
        for recipe in targets:
            results.append(await _build_one(docker, recipes, recipe, recipe.short_name in forced, report))
        return results
    finally:
        await docker.close()


def build_image_sync(name: str, progress_callback: ProgressCallback | None = None, **kwargs: Any) -> list[BuildResult]:
    """build_image() for code without an event loop."""
    return asyncio.run(build_image(name, progress_callback, **kwargs))


async def _ping(docker: aiodocker.Docker, url: str) -> None:
    try:
        await ping(docker)
    except DockerError as e:
        raise BuildError(f"cannot reach the container engine at {url} ({e.message}); "
                         "start Podman's API service with `bash tools/podman_service.sh` "
                         "or set DOCKER_HOST") from None
    except (OSError, ValueError) as e:
        raise BuildError(f"cannot reach the container engine at {url} ({e})") from None


async def _inspect(docker: aiodocker.Docker, ref: str) -> dict[str, Any] | None:
    try:
        return await docker.images.inspect(ref)
    except DockerError as e:
        if e.status == 404:
            return None
        raise


@contextlib.asynccontextmanager
async def _recipe_lock(recipe: Recipe, report: _Reporter) -> AsyncIterator[None]:
    """One build per recipe at a time on this host (flock on its recipe.toml: no lock files)."""
    fd = os.open(recipe.path / "recipe.toml", os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(recipe.short_name, "step", "waiting for another build of this image to finish")
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


async def _build_one(docker: aiodocker.Docker, recipes: dict[str, Recipe], recipe: Recipe,
                     force: bool, report: _Reporter) -> BuildResult:
    name = recipe.short_name
    want = recipe_hash(recipes, name)
    async with _recipe_lock(recipe, report):
        t0 = time.monotonic()
        existing = await _inspect(docker, recipe.ref)
        have = ((existing or {}).get("Config") or {}).get("Labels") or {}
        if existing and have.get(LABEL_RECIPE_HASH) == want and not force:
            report(name, "skip", f"{recipe.ref} is up to date (recipe {want[:12]})")
            await _remove_previous_images(docker, name, existing["Id"], report)
            return BuildResult(recipe.ref, existing["Id"], int(existing.get("Size") or 0), want, False, 0.0)
        report(name, "start", f"building {recipe.ref} (recipe {want[:12]})"
               + (" — forced" if force and existing else ""))
        if recipe.rootfs is not None:
            base_ref = await _ensure_rootfs(docker, recipe, force, report)
        else:
            assert recipe.base is not None
            base_ref = recipes[recipe.base].ref
        await _run_build(docker, recipes, recipe, base_ref, report)
        built = await _inspect(docker, recipe.ref)
        labels = ((built or {}).get("Config") or {}).get("Labels") or {}
        if not built or labels.get(LABEL_RECIPE_HASH) != want:
            raise BuildError("the engine reported success but the image is missing or carries "
                             "another recipe hash", image=name, step="verify")
        await _remove_previous_images(docker, name, built["Id"], report)
        seconds = time.monotonic() - t0
        size = int(built.get("Size") or 0)
        report(name, "done", f"built {recipe.ref} ({built['Id'].removeprefix('sha256:')[:12]}, "
               f"{size / 1e6:.0f} MB) in {_fmt_seconds(seconds)}")
        return BuildResult(recipe.ref, built["Id"], size, want, True, seconds)


async def _remove_quietly(docker: aiodocker.Docker, ref: str, name: str, report: _Reporter, what: str) -> None:
    try:
        await docker.images.delete(ref)
        report(name, "log", f"removed {what} {_short_ref(ref)}")
    except DockerError as e:  # in use by a container or a child image: keep it (retried next build)
        report(name, "log", f"kept {what} {_short_ref(ref)} ({e.message})")


def _short_ref(ref: str) -> str:
    return ref.removeprefix("sha256:")[:12] if ref.startswith("sha256:") else short_image_name(ref)


async def _remove_previous_images(docker: aiodocker.Docker, name: str, keep_id: str, report: _Reporter) -> None:
    """Untagged images an earlier build of ``name`` left (kept while containers used them)."""
    for img in await docker.images.list(filters={"label": [f"{LABEL_IMAGE}={name}"]}):
        tags = [t for t in img.get("RepoTags") or [] if not t.startswith("<none>")]
        if img.get("Id") != keep_id and not tags:
            await _remove_quietly(docker, img["Id"], name, report, "previous image")


def _rootfs_tag(recipe: Recipe) -> str:
    return f"{recipe.name}-{recipe.tag}-{rootfs_hash(recipe)[:12]}"


async def _ensure_rootfs(docker: aiodocker.Docker, recipe: Recipe, force: bool, report: _Reporter) -> str:
    """The imported Debian rootfs for ``recipe``: reused when present, else mmdebstrap + import."""
    assert recipe.rootfs is not None
    name = recipe.short_name
    tag = _rootfs_tag(recipe)
    ref = f"{ROOTFS_REPO}:{tag}"
    if not force and await _inspect(docker, ref) is not None:
        report(name, "step", f"rootfs: reusing {short_image_name(ref)}")
        return ref
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is not installed (`make setup` installs it; or apt-get install mmdebstrap)",
                         image=name, step="rootfs")
    r = recipe.rootfs
    report(name, "step", f"rootfs: mmdebstrap {r.suite} ({r.variant} + {len(r.packages)} packages)")
    tmp = tempfile.mkdtemp(prefix=TEMP_PREFIX)
    cmd = ["mmdebstrap", f"--variant={r.variant}", "--format=tar", "--verbose",
           "--include=" + ",".join(r.packages),
           *(f"--dpkgopt={o}" for o in DPKG_OPTIONS), *(f"--aptopt={o}" for o in APT_OPTIONS),
           r.suite, "-", *r.sources]
    env = {**os.environ, "TMPDIR": tmp, "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    image_id: str | None = None
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True, limit=1 << 20)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr

    async def read_log() -> None:
        async for raw in stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                tail.append(line)
                report(name, "log", line)

    async def tarball() -> AsyncIterator[bytes]:
        while chunk := await stdout.read(1 << 20):
            yield chunk

    log_task = asyncio.create_task(read_log())
    try:
        try:
            async with docker._query("images/create", "POST", params={"fromSrc": "-"},
                                     data=tarball(), headers={"Content-Type": "application/x-tar"},
                                     timeout=None) as resp:
                image_id = _imported_id(await resp.read())
        except DockerError as e:
            await _stop(proc)
            await log_task
            raise BuildError(f"importing the rootfs failed: {e.message}", image=name, step="rootfs",
                             tail=list(tail)) from None
        rc = await proc.wait()
        await log_task
        if rc != 0:
            raise BuildError(f"mmdebstrap exited with status {rc}", image=name, step="rootfs", tail=list(tail))
        if image_id is None:
            raise BuildError("the engine did not say which image it imported", image=name, step="rootfs")
        await docker.images.tag(image_id, ROOTFS_REPO, tag=tag)
        report(name, "log", f"imported rootfs as {short_image_name(ref)}")
        image_id = None  # tagged: keep it
    finally:
        if proc.returncode is None:
            await _stop(proc)
        if not log_task.done():
            log_task.cancel()
        if image_id is not None:
            with contextlib.suppress(DockerError):
                await docker.images.delete(image_id, force=True)
        _remove_tempdir(tmp)
    await _remove_old_rootfs(docker, recipe, tag, report)
    return ref


def _imported_id(body: bytes) -> str | None:
    """The image id in an import answer (one or more JSON objects with status/id)."""
    found = None
    for obj in _json_objects(body.decode(errors="replace")):
        for key in ("id", "status"):
            value = obj.get(key)
            if isinstance(value, str) and value.startswith("sha256:"):
                found = value
    return found


def _json_objects(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    out, i = [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = decoder.raw_decode(text, i)
        if isinstance(obj, dict):
            out.append(obj)
    return out


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (mmdebstrap unmounts and cleans up on it), then SIGKILL after 30 s."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def _remove_tempdir(tmp: str) -> None:
    """Remove mmdebstrap's TMPDIR, unless something is still mounted under it (never recurse
    into a bind-mounted /dev or /proc of the host)."""
    prefix = os.path.realpath(tmp) + "/"
    try:
        with open("/proc/self/mounts") as f:
            mounted = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    except OSError:
        mounted = []
    if mounted:
        raise BuildError(f"{tmp} still has mounts ({', '.join(mounted[:3])}); unmount them and remove it")
    shutil.rmtree(tmp, ignore_errors=True)


async def _remove_old_rootfs(docker: aiodocker.Docker, recipe: Recipe, keep_tag: str, report: _Reporter) -> None:
    prefix = f"{ROOTFS_REPO}:{recipe.name}-{recipe.tag}-"
    for img in await docker.images.list():
        for ref in img.get("RepoTags") or []:
            if ref.startswith(prefix) and ref != f"{ROOTFS_REPO}:{keep_tag}":
                await _remove_quietly(docker, ref, recipe.short_name, report, "old rootfs")


def _build_context(recipe: Recipe) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in recipe.files():
            tar.add(path, arcname=path.relative_to(recipe.path).as_posix(), recursive=False)
        tar.add(host_ca_bundle(), arcname=CONTEXT_CA_PATH, recursive=False)
    return buf.getvalue()


async def _run_build(docker: aiodocker.Docker, recipes: dict[str, Recipe], recipe: Recipe,
                     base_ref: str, report: _Reporter) -> None:
    name = recipe.short_name
    labels = image_labels(recipes, name)
    params = {
        "t": recipe.ref,
        "dockerfile": "Containerfile",
        "buildargs": json.dumps({"BASE_IMAGE": base_ref}),
        "labels": json.dumps(labels),
        "rm": "1",
        "forcerm": "1",
        "pull": "0",
        "layers": "0",
    }
    report(name, "step", f"build: Containerfile FROM {short_image_name(base_ref)}")
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    step = "build"
    error: str | None = None
    decoder = json.JSONDecoder()
    pending = ""
    partial_line = ""

    def handle(obj: dict[str, Any]) -> None:
        nonlocal step, error, partial_line
        if obj.get("error") or obj.get("errorDetail"):
            detail = obj.get("errorDetail") or {}
            error = str(obj.get("error") or (detail.get("message") if isinstance(detail, dict) else detail))
            return
        text = obj.get("stream")
        if not isinstance(text, str):
            return
        text = partial_line + text
        lines = text.split("\n")
        partial_line = lines.pop()
        for line in lines:
            line = line.rstrip("\r")
            if not line.strip():
                continue
            if line.startswith("STEP ") and ": " in line and ": LABEL " not in line:
                step = line
                report(name, "step", f"build: {line}")
            else:
                tail.append(line)
                report(name, "log", line)

    try:
        async with docker._query("build", "POST", params=params, data=_build_context(recipe),
                                 headers={"Content-Type": "application/x-tar"}, timeout=None) as resp:
            async for chunk in resp.content.iter_any():
                pending += chunk.decode(errors="replace")
                while True:
                    stripped = pending.lstrip()
                    if not stripped:
                        pending = ""
                        break
                    try:
                        obj, end = decoder.raw_decode(stripped)
                    except json.JSONDecodeError:
                        pending = stripped
                        break
                    pending = stripped[end:]
                    if isinstance(obj, dict):
                        handle(obj)
    except DockerError as e:
        raise BuildError(e.message, image=name, step=step, tail=list(tail)) from None
    if partial_line.strip():
        tail.append(partial_line)
    if error:
        raise BuildError(error, image=name, step=step, tail=list(tail))


def _fmt_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


async def list_images(docker_url: str | None = None, recipes_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every local image with a ``ai.backend.kernelspec`` label, Workbay's first.

    Each item: name (short for Workbay images), image (full reference), id, size, created,
    display_name, version, recipe_hash, status ("current"/"outdated" against its recipe, or
    null when no recipe builds it), labels.
    """
    try:
        recipes = load_recipes(recipes_dir)
    except RecipeError:
        recipes = {}
    url = docker_url or engine_url()
    docker = connect(url)
    try:
        await _ping(docker, url)
        images = await docker.images.list(filters={"label": [LABEL_KERNELSPEC]})
    finally:
        await docker.close()
    items = []
    for img in images:
        labels = img.get("Labels") or {}
        if LABEL_KERNELSPEC not in labels:
            continue
        for ref in img.get("RepoTags") or []:
            if ref.startswith("<none>"):
                continue
            short = short_image_name(ref)
            recipe = recipes.get(short) if ref.startswith(REGISTRY_PREFIX + "/") else None
            status = None
            if recipe is not None:
                status = "current" if labels.get(LABEL_RECIPE_HASH) == recipe_hash(recipes, short) else "outdated"
            items.append({
                "name": short,
                "image": ref,
                "id": str(img.get("Id", "")).removeprefix("sha256:"),
                "size": int(img.get("Size") or 0),
                "created": img.get("Created"),
                "display_name": labels.get("org.workbay.display-name"),
                "version": labels.get("org.workbay.version"),
                "recipe_hash": labels.get(LABEL_RECIPE_HASH),
                "built_by_workbay": LABEL_IMAGE in labels,
                "status": status,
                "labels": dict(sorted(labels.items())),
            })
    items.sort(key=lambda i: (not i["image"].startswith(REGISTRY_PREFIX + "/"), i["image"]))
    return items
