"""The agent: kernels on this node, their resources and lifecycle, reports to the manager."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import shutil
import socket
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiodocker.exceptions import DockerError

import workbay.runner
from workbay import __version__
from workbay.common.background import BackgroundLoop
from workbay.common.config import WorkbayConfig
from workbay.common.datadir import private_dir, private_tree, secure_data_dir, write_private
from workbay.common.domain import parse_bytes
from workbay.common.errors import Conflict, InvalidAPIParameters, ObjectNotFound
from workbay.runner import protocol

from . import engine as engine_mod
from . import errors, isolation
from .engine import Engine, cgroup_io_bytes, engine_candidates, normalize_arch
from .kernel import (
    L_AGENT,
    L_ALLOCATIONS,
    L_DATA_DIR,
    L_HOSTNAME,
    L_IDX,
    L_KERNEL,
    L_ROLE,
    L_SESSION,
    L_SESSION_TYPE,
    L_SLOTS,
    KernelRuntime,
    PortPool,
    add_gate_ports,
    build_container_body,
    kernel_environ,
    kernel_service_ports,
    parse_port_range,
    publish_ip,
    published_ports,
    runner_config,
)
from .manager_link import ManagerLink
from .models import CreateKernels, KernelSpec
from .resources import (
    InsufficientResources,
    InvalidResourceRequest,
    build_registry,
    slots_from_wire,
    slots_to_wire,
)
from .runner_client import runner_request
from .stats import NodeStats, compute_stats

log = logging.getLogger(__name__)

KERNELSPEC_LABEL = "ai.backend.kernelspec"
MAX_SAVED_LOG = 10 * 2**20
ARCHIVE_LIMIT = 256 * 2**20  # the largest download from a container through the agent
L_NETWORK = "workbay.network"  # on the networks this agent creates (a session's own bridge)
HOUSEKEEPING_INTERVAL = 60.0  # seconds between image rescans, network sweeps, log pruning
NETWORK_GRACE = 300.0  # seconds a session network may wait for its kernels before the sweep removes it


class LaunchError(Exception):
    def __init__(self, msg: str, reason: str = "failed-to-start", exit_code: int | None = None):
        super().__init__(msg)
        self.reason = reason
        self.exit_code = exit_code


def is_kernel_image(labels: dict[str, str] | None) -> bool:
    """Images the agent reports: Backend.AI kernelspec images or images with Workbay labels."""
    labels = labels or {}
    return KERNELSPEC_LABEL in labels or any(k.startswith(("workbay.", "org.workbay."))
                                             for k in labels)


def image_architecture(image: str, detail: dict[str, Any]) -> str:
    """The architecture of an inspected image (``x86_64``, ``aarch64``, …); raises
    ``errors.ImageUnreadable`` naming the image when the engine does not tell it."""
    arch = detail.get("Architecture")
    if not isinstance(arch, str) or not arch.strip():
        raise errors.ImageUnreadable(f"image {image}: the engine reports no architecture for it "
                                     f"(Architecture = {arch!r}); rebuild or re-pull it",
                                     data={"image": image})
    return normalize_arch(arch.strip())


def is_local_address(ip: str) -> bool:
    """Whether this node holds the address (a socket can bind to it)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((ip, 0))
    except OSError:
        return False
    return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_private(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)


def _created_at(value: Any) -> float:
    """An engine's ``Created`` (RFC 3339, maybe with nanoseconds) as a timestamp; now when unknown."""
    import re
    from datetime import datetime

    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$", str(value or ""))
    if m is None:
        return time.time()
    offset = m.group(2) or "Z"
    return datetime.fromisoformat(m.group(1) + ("+00:00" if offset == "Z" else offset)).timestamp()


def generate_ssh_keypair() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return {"private_key": private, "public_key": public + " work@workbay"}


class NodeAgent:
    """The agent of one node: its kernels, their resources and lifecycle, its reports to the manager."""

    def __init__(self, config: WorkbayConfig) -> None:
        self.config = config
        self.ac = config.agent
        self.id = self.ac.id or platform.node()
        if not config.secrets.cluster:
            raise ValueError("secrets.cluster is empty: the agent needs the cluster secret")
        self.data_dir = Path(config.data_dir).resolve()
        self.registry = build_registry(self.ac)
        rng = parse_port_range(self.ac.port_range)
        self.ports = PortPool(*rng) if rng else None
        self.node_stats = NodeStats(str(self.data_dir))
        self.runner_dir = Path(workbay.runner.__file__).resolve().parent
        self.kernels: dict[str, KernelRuntime] = {}
        self.engine: Engine | None = None
        self.engine_ready = False  # connected, and the kernels of a previous run re-adopted
        self.engine_error = ""
        self.images: list[dict[str, Any]] = []
        self.images_scanned_at = 0.0
        self.addr = self.ac.rpc_url
        self.link = ManagerLink(self.ac.manager_url, config.secrets.cluster, self.id,
                                self.heartbeat_payload, self.ac.heartbeat_interval)
        self.tasks: list[asyncio.Task] = []  # the engine connection (a one-off with retries)
        self.background: set[asyncio.Task] = set()
        # Every periodic task of the agent (the manager link has its own two).
        self.loops = [
            BackgroundLoop("agent-poll", self._poll, lambda: self.ac.poll_interval, max_backoff=30, logger=log),
            BackgroundLoop("agent-stats", self._sample_all_stats, lambda: self.ac.stats_interval, logger=log),
            BackgroundLoop("agent-housekeeping", self._housekeeping, HOUSEKEEPING_INTERVAL, immediate=True,
                           logger=log),
        ]
        self.started_at = time.time()
        if self.ac.container_ulimits:
            self.ulimits = dict(self.ac.container_ulimits)
        else:
            from workbay.images.engine import container_ulimits

            self.ulimits = {str(u["Name"]): int(u["Hard"]) for u in container_ulimits()}
        self.host_ip = publish_ip(self.ac.container_host, is_local_address)

    # --- paths --------------------------------------------------------------------------------
    def kernel_dir(self, kernel_id: str) -> Path:
        return self.data_dir / "kernels" / kernel_id

    def ipc_dir(self, kernel_id: str) -> Path:
        return self.kernel_dir(kernel_id) / "ipc"

    def scratch_dir(self, kernel_id: str) -> Path:
        return self.data_dir / "scratch" / kernel_id

    def log_path(self, kernel_id: str) -> Path:
        return self.data_dir / "kernel-logs" / f"{kernel_id}.log"

    @property
    def labels(self) -> dict[str, str]:
        """Labels that mark this agent's containers."""
        return {L_AGENT: self.id, L_DATA_DIR: str(self.data_dir)}

    # --- lifecycle of the agent ---------------------------------------------------------------
    async def start(self) -> None:
        secure_data_dir(self.data_dir)  # 0700; kernel-logs/ and its files private (older ones fixed)
        for d in ("kernels", "scratch"):
            (self.data_dir / d).mkdir(parents=True, exist_ok=True)
        private_tree(self.data_dir / "kernel-logs")
        self.link.start()
        self.tasks = [asyncio.create_task(self._engine_loop(), name="agent-engine")]
        for loop in self.loops:
            loop.start()

    async def stop(self) -> None:
        """Stop the agent; kernels keep running and are adopted by the next start."""
        for k in self.kernels.values():
            if k.task is not None:
                k.task.cancel()
        if self.background:  # let running clean-ups finish
            await asyncio.wait(self.background, timeout=10)
        for loop in self.loops:
            await loop.stop()
        for t in [*self.tasks, *self.background]:
            t.cancel()
        await asyncio.gather(*self.tasks, *self.background,
                             *(k.task for k in self.kernels.values() if k.task),
                             return_exceptions=True)
        await self.link.close()
        if self.engine is not None:
            await self.engine.close()
        await self.registry.close()

    def spawn(self, coro) -> asyncio.Task:
        """A background task the agent keeps a reference to until it ends."""
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    async def _engine_loop(self) -> None:
        """Connect to the engine (retrying with backoff until one answers), then re-adopt the
        kernels of a previous run; a one-off task, not a periodic one."""
        delay = 1.0
        candidates = engine_candidates(self.ac.docker_host)
        while self.engine is None:
            try:
                self.engine = await Engine.connect(candidates)
            except engine_mod.EngineUnreachable as e:
                if e.args[0] != self.engine_error:
                    log.warning("no container engine answers (retrying): %s", e)
                self.engine_error = str(e.args[0])
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
        log.info("agent %s: %s engine at %s (%s)", self.id, self.engine.kind, self.engine.url,
                 self.engine.arch)
        self.engine_error = ""
        try:
            await self.adopt()
        except Exception:
            log.exception("re-adopting running kernels failed")
        with contextlib.suppress(Exception):  # networks of kernels that ended while it was down;
            await self.sweep_networks(grace=0)  # before RPCs are served: none is being launched
        try:
            await self.sync_isolation()
        except Exception as e:
            log.error("session networks are NOT isolated from each other on this node: %s", e)
        self.engine_ready = True
        try:
            await self.scan_images()
        except Exception as e:
            log.error("the image list is empty until a rescan works: %s", e)
        self.link.request_heartbeat()

    def need_engine(self) -> Engine:
        if self.engine is None or not self.engine_ready:
            raise errors.EngineUnavailable(self.engine_error or "still connecting")
        return self.engine

    # --- reports ------------------------------------------------------------------------------
    def live_kernels(self) -> list[KernelRuntime]:
        return [k for k in self.kernels.values() if k.status != "terminated"]

    def info(self) -> dict[str, Any]:
        eng = self.engine
        return {
            "id": self.id, "addr": self.addr, "region": self.ac.region,
            "resource_group": self.ac.resource_group,
            "architecture": eng.arch if eng else normalize_arch(platform.machine()),
            "slots": slots_to_wire(self.registry.capacity()),
            "occupied": slots_to_wire(self.registry.occupied()),
            "slot_types": self.registry.slot_types(),
            "images": self.images,
            "version": __version__,
            "accelerators": self.registry.accelerators(),
            "kernels": [k.id for k in self.live_kernels()],
            "cpu_set": self.registry.plugins[0].alloc.cores,  # type: ignore[attr-defined]
            "kernel_host": self.ac.container_host,
            "engine": {"available": self.engine_ready, "kind": eng.kind if eng else None,
                       "url": eng.url if eng else None, "error": self.engine_error or None},
            "started_at": self.started_at,
        }

    async def heartbeat_payload(self) -> dict[str, Any] | None:
        if not self.engine_ready:
            # Until the engine answers and earlier kernels are re-adopted the kernel list would
            # be wrong (the manager could take running kernels for lost).
            return None
        payload = self.info()
        payload["kernel_stats"] = {k.id: k.last_stats for k in self.live_kernels()
                                   if k.last_stats is not None}
        payload["stats"] = {"node": self.node_stats.sample()}
        payload["timestamp"] = time.time()
        return payload

    def emit(self, name: str, k: KernelRuntime, **data: Any) -> None:
        self.link.emit(name, k.id, k.session_id, **data)

    # --- images -------------------------------------------------------------------------------
    async def scan_images(self) -> list[dict[str, Any]]:
        """Refresh the list of kernel images on this node.  Raises ``errors.ImageUnreadable``
        naming the image whose architecture the engine does not tell (the list is then left as
        it was: a guess would let the manager place sessions on a node that cannot run them)."""
        eng = self.need_engine()
        out = []
        try:
            listed = await eng.list_images()
        except Exception as e:
            log.warning("listing images failed: %s", e)
            return self.images
        for img in listed:
            labels = img.get("Labels") or {}
            if not is_kernel_image(labels):
                continue
            tags = [t for t in img.get("RepoTags") or [] if not t.endswith("<none>")]
            if not tags:
                continue
            try:
                detail = await eng.inspect_image(img["Id"])
            except DockerError as e:
                raise errors.ImageUnreadable(f"image {tags[0]} ({img['Id']}): the engine does not "
                                             f"answer its inspection: {e.message}",
                                             data={"image": tags[0]}) from e
            if detail is None:  # removed since it was listed: nothing to report
                continue
            arch = image_architecture(tags[0], detail)
            for tag in tags:
                out.append({"name": tag, "digest": img["Id"], "labels": labels,
                            "architecture": arch, "size": img.get("Size", 0),
                            "repo_digests": img.get("RepoDigests") or []})
        out.sort(key=lambda i: i["name"])
        self.images = out
        self.images_scanned_at = time.time()
        return out

    # --- kernels: create ----------------------------------------------------------------------
    def get(self, kernel_id: str) -> KernelRuntime:
        k = self.kernels.get(kernel_id)
        if k is None:
            raise errors.KernelNotFound(kernel_id)
        return k

    async def create_kernels(self, req: CreateKernels) -> list[KernelRuntime]:
        eng = self.need_engine()
        if req.network and not await eng.network_exists(req.network):
            raise errors.NetworkNotFound(f"network {req.network} does not exist")
        # No await from here on: a concurrent retry of the same request sees these kernels.
        existing = [k.kernel_id for k in req.kernels if k.kernel_id in self.kernels]
        if existing:
            if len(existing) == len(req.kernels):  # a retried request: answer the same
                return [self.kernels[kid] for kid in existing]
            raise errors.KernelConflict(f"kernels already exist here: {', '.join(existing)}")
        for m in req.mounts:
            if not os.path.exists(m.source):
                raise InvalidAPIParameters(f"mount source {m.source} does not exist on agent "
                                           f"{self.id}")
        requests = []
        for k in req.kernels:
            try:
                slots = slots_from_wire(k.resource_slots)
                opts = dict(k.resource_opts)
                if opts.get("shmem") is not None:
                    opts["shmem"] = int(parse_bytes(opts["shmem"]))
            except (InvalidResourceRequest, ValueError) as e:
                raise InvalidAPIParameters(f"kernel {k.kernel_id}: {e}") from e
            requests.append((k.kernel_id, slots, opts))
        try:
            allocs = self.registry.allocate_many(requests)
        except InvalidResourceRequest as e:
            raise InvalidAPIParameters(str(e)) from e
        except InsufficientResources as e:
            raise errors.InsufficientResource(str(e), data={
                "free": slots_to_wire(self.registry.free_capacity())}) from e
        created = []
        for (kid, slots, _), k in zip(requests, req.kernels, strict=True):
            kernel = KernelRuntime(id=kid, session_id=req.session_id, session_type=req.session_type,
                            image=k.image or req.image, cluster_role=k.cluster_role,
                            cluster_idx=k.cluster_idx, cluster_hostname=k.cluster_hostname,
                            slots=slots, allocations=allocs[kid],
                            batch_timeout=req.batch_timeout, network=req.network)
            self.kernels[kid] = kernel
            created.append(kernel)
            self.emit("kernel_preparing", kernel)
            kernel.task = asyncio.create_task(self._launch(kernel, req, k),
                                              name=f"launch-{kid}")
        self.link.request_heartbeat()
        return created

    async def _launch(self, kernel: KernelRuntime, req: CreateKernels, k: KernelSpec) -> None:
        try:
            await self._create_container(kernel, req, k, restart=False)
            await self._wait_ready(kernel, restarted=False)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if not isinstance(e, LaunchError):
                log.exception("kernel %s failed to start", kernel.id)
            await self._fail(kernel, e)

    async def _create_container(self, kernel: KernelRuntime, req: CreateKernels, k: KernelSpec,
                                restart: bool) -> None:
        eng = self.need_engine()
        kdir, ipc, scratch = self.kernel_dir(kernel.id), self.ipc_dir(kernel.id), \
            self.scratch_dir(kernel.id)
        spec_path = kdir / "spec.json"
        saved = _read_json(spec_path) if restart else None
        image = kernel.image
        if saved is None:
            info = await eng.inspect_image(image)
            if info is None and req.pull_image:
                self.emit("kernel_pulling", kernel, image=image)
                try:
                    await eng.pull(image)
                except DockerError as e:
                    raise LaunchError(f"pulling {image} failed: {e.message}") from e
                info = await eng.inspect_image(image)
            if info is None:
                raise LaunchError(f"image {image} is not on agent {self.id}")
            labels = (info.get("Config") or {}).get("Labels") or info.get("Labels") or {}
            service_ports = kernel_service_ports(labels, req.preopen_ports)
            if req.app_secret:  # every app behind the runner's gate (runner/gate.py)
                service_ports = add_gate_ports(service_ports)
            host_ports = self.ports.take(kernel.id, sum(len(sp["container_ports"])
                                                        for sp in service_ports)) \
                if self.ports else None
            saved = {"request": req.model_dump(mode="json", exclude={"kernels"}),
                     "kernel": k.model_dump(mode="json"), "image": image,
                     "service_ports": service_ports, "host_ports": host_ports,
                     "ssh_keypair": generate_ssh_keypair()}
            for d in (kdir, ipc, scratch):
                d.mkdir(parents=True, exist_ok=True)
            os.chmod(kdir, 0o700)
            _write_private(spec_path, json.dumps(saved))
        service_ports = saved["service_ports"]
        contrib = self.registry.contrib(kernel.allocations, {"engine": eng.kind})
        cpu = kernel.slots.get("cpu", Decimal(1))
        env = kernel_environ(req, k, cpu, contrib.env, service_ports)
        resources = slots_to_wire(kernel.slots)
        cpu_rec = kernel.allocations.get("cpu") or {}
        if cpu_rec.get("cores") is not None:
            resources["cpuset"] = ",".join(str(c) for c in cpu_rec["cores"])
        for name in (protocol.READY, protocol.RESULT):
            with contextlib.suppress(FileNotFoundError):
                (ipc / name).unlink()
        _write_private(ipc / protocol.KERNEL_CONFIG, json.dumps(
            runner_config(req, k, env, service_ports, resources, saved["ssh_keypair"])))
        body = build_container_body(
            req=req, k=k, image=image, agent_id=self.id, data_dir=str(self.data_dir), env=env,
            host_config=contrib.host_config, service_ports=service_ports,
            runner_dir=str(self.runner_dir), ipc_dir=str(ipc), scratch_dir=str(scratch),
            ulimits=self.ulimits, host_ip=self.host_ip,
            host_ports=saved["host_ports"], slots=kernel.slots, allocations=kernel.allocations)
        await self._remove_containers_of(kernel.id)
        try:
            cid = await eng.create(body, name=f"wb-{kernel.id}")
            kernel.container_id = cid
            await eng.start(cid)
        except DockerError as e:
            raise LaunchError(f"the engine refused the container: {e.message}") from e

    async def _remove_containers_of(self, kernel_id: str) -> None:
        eng = self.need_engine()
        for c in await eng.list_containers({**self.labels, L_KERNEL: kernel_id}):
            await eng.remove(c["Id"])

    async def _wait_ready(self, kernel: KernelRuntime, restarted: bool) -> None:
        eng = self.need_engine()
        ready_path = self.ipc_dir(kernel.id) / protocol.READY
        deadline = time.monotonic() + self.ac.prepare_timeout
        delay = 0.05
        while True:
            ready = _read_json(ready_path)
            if ready is None:
                info = await eng.inspect(kernel.container_id)
                running = bool(info and info["State"].get("Running"))
                if not running:
                    ready = _read_json(ready_path)  # it may have become ready and exited since
                    if ready is None:
                        code = info["State"].get("ExitCode") if info else None
                        raise LaunchError(f"the container exited with code {code} while "
                                          "preparing", exit_code=code)
            if ready is not None:
                if ready.get("status") != "ready":
                    raise LaunchError(f"preparation failed: {ready.get('error')}")
                await self._mark_running(kernel, ready, restarted)
                return
            if time.monotonic() > deadline:
                raise LaunchError(f"not ready after {self.ac.prepare_timeout:.0f}s",
                                  reason="prepare-timeout")
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 1.5)

    async def _mark_running(self, kernel: KernelRuntime, ready: dict[str, Any], restarted: bool) -> None:
        info = await self.need_engine().inspect(kernel.container_id)
        saved = _read_json(self.kernel_dir(kernel.id) / "spec.json") or {}
        kernel.service_ports = self._published(saved.get("service_ports", []), info)
        kernel.status = "running"
        kernel.started_at = ready.get("at") or time.time()
        self.emit("kernel_started", kernel, container_id=kernel.container_id,
                  service_ports=kernel.service_ports, kernel_host=self.ac.container_host,
                  ssh_public_key=ready.get("ssh_public_key"), restarted=restarted,
                  bootstrap_exit_code=ready.get("bootstrap_exit_code"))
        self.link.request_heartbeat()

    @staticmethod
    def _published(service_ports: list[dict[str, Any]], info: dict[str, Any] | None
                   ) -> list[dict[str, Any]]:
        ports = ((info or {}).get("NetworkSettings") or {}).get("Ports") or {}
        out = []
        for sp in service_ports:
            host_ports = []
            for p in published_ports(sp):
                bound = ports.get(f"{p}/tcp") or []
                host_ports.append(int(bound[0]["HostPort"]) if bound and
                                  bound[0].get("HostPort") else None)
            out.append({**sp, "host_ports": host_ports})
        return out

    async def _fail(self, kernel: KernelRuntime, e: Exception) -> None:
        reason = e.reason if isinstance(e, LaunchError) else "failed-to-start"
        code = e.exit_code if isinstance(e, LaunchError) else None
        log.warning("kernel %s failed to start: %s", kernel.id, e)
        async with kernel.lock:
            if self.kernels.get(kernel.id) is not kernel:
                return
            msg = str(e)
            if kernel.container_id and self.engine is not None:
                with contextlib.suppress(Exception):  # what the container said last, for people
                    tail = (await self.engine.logs(kernel.container_id, 5)).strip()
                    if tail:
                        msg += "; last output: " + tail[-1000:]
            await self._cleanup(kernel, code, reason, msg=msg)

    # --- kernels: end -------------------------------------------------------------------------
    async def _save_logs(self, kernel: KernelRuntime) -> None:
        if not kernel.container_id or self.engine is None:
            return
        try:
            text = await self.engine.logs(kernel.container_id)
        except DockerError:
            return
        path = self.log_path(kernel.id)
        private_dir(path.parent)
        data = text.encode("utf-8", "replace")[-MAX_SAVED_LOG:]
        write_private(path, data)  # a container's output may hold anything: 0600

    async def _cleanup(self, kernel: KernelRuntime, exit_code: int | None, reason: str,
                       msg: str | None = None) -> dict[str, Any]:
        """Everything after a kernel's end (caller holds its lock): save logs, remove the
        container and directories, free resources, report kernel_terminated."""
        kernel.status = "terminated"
        kernel.exit_code = exit_code
        await self._save_logs(kernel)
        try:
            if kernel.container_id:
                await self.need_engine().remove(kernel.container_id)
            await self._remove_containers_of(kernel.id)
        except Exception as e:
            log.warning("removing the container of kernel %s failed: %s", kernel.id, e)
        self.registry.free(kernel.id)
        if self.ports:
            self.ports.release(kernel.id)
        for d in (self.scratch_dir(kernel.id), self.kernel_dir(kernel.id)):
            await asyncio.to_thread(shutil.rmtree, d, True)
        self.kernels.pop(kernel.id, None)
        if kernel.network and not any(k.network == kernel.network for k in self.kernels.values()):
            await self._remove_network_quietly(kernel.network)  # the session's last kernel here
        event = {"exit_code": exit_code, "reason": reason, "stats": kernel.last_stats}
        if msg:
            event["msg"] = msg
        self.emit("kernel_terminated", kernel, **event)
        self.link.request_heartbeat()
        log.info("kernel %s terminated (%s, exit code %s)", kernel.id, reason, exit_code)
        return {"kernel_id": kernel.id, "session_id": kernel.session_id, **event}

    async def destroy(self, kernel_id: str, reason: str, forced: bool) -> dict[str, Any]:
        kernel = self.get(kernel_id)
        if kernel.task is not None and not kernel.task.done():
            kernel.task.cancel()
            await asyncio.gather(kernel.task, return_exceptions=True)
        async with kernel.lock:
            if self.kernels.get(kernel_id) is not kernel:
                raise errors.KernelNotFound(kernel_id)
            eng = self.need_engine()
            if kernel.status == "running":  # a last sample for the usage statistics
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.sample_stats(kernel), 3)
            kernel.status = "terminating"
            exit_code = None
            if kernel.container_id:
                if forced:
                    await eng.kill(kernel.container_id)
                else:
                    await eng.stop(kernel.container_id, self.ac.stop_timeout)
                info = await eng.inspect(kernel.container_id)
                if info is not None:
                    exit_code = info["State"].get("ExitCode")
            return await self._cleanup(kernel, exit_code, reason)

    async def _on_exit(self, kernel: KernelRuntime) -> None:
        async with kernel.lock:
            if self.kernels.get(kernel.id) is not kernel or kernel.status != "running":
                return
            info = await self.need_engine().inspect(kernel.container_id)
            if info is not None and info["State"].get("Running"):
                return
            code = info["State"].get("ExitCode") if info else None
            if kernel.session_type == "batch":
                result = _read_json(self.ipc_dir(kernel.id) / protocol.RESULT) or {}
                if result.get("timed_out"):
                    reason = "batch-timeout"
                elif code == 0:
                    reason = "task-finished"
                else:
                    reason = "task-failed"
            else:
                reason = "self-terminated"
            msg = None if info else "the container disappeared"
            if info and info["State"].get("OOMKilled"):
                msg = "killed for running out of memory"
            await self._cleanup(kernel, code, reason, msg=msg)

    # --- kernels: restart ---------------------------------------------------------------------
    async def restart(self, kernel_id: str) -> KernelRuntime:
        kernel = self.get(kernel_id)
        if kernel.status != "running":
            raise errors.KernelConflict(f"kernel {kernel_id} is {kernel.status}")
        saved = _read_json(self.kernel_dir(kernel_id) / "spec.json")
        if saved is None:
            raise errors.KernelConflict(f"kernel {kernel_id} has no saved spec to restart from")
        req = CreateKernels.model_validate({**saved["request"], "kernels": [saved["kernel"]]})
        k = req.kernels[0]
        async with kernel.lock:
            kernel.status = "restarting"
            self.emit("kernel_restarting", kernel)
            eng = self.need_engine()
            await eng.stop(kernel.container_id, self.ac.stop_timeout)
            await eng.remove(kernel.container_id)
            kernel.task = asyncio.create_task(self._relaunch(kernel, req, k),
                                              name=f"restart-{kernel_id}")
        return kernel

    async def _relaunch(self, kernel: KernelRuntime, req: CreateKernels, k: KernelSpec) -> None:
        try:
            await self._create_container(kernel, req, k, restart=True)
            await self._wait_ready(kernel, restarted=True)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if not isinstance(e, LaunchError):
                log.exception("kernel %s failed to restart", kernel.id)
            await self._fail(kernel, e)

    # --- adoption -----------------------------------------------------------------------------
    async def adopt(self) -> None:
        """Take over the containers a previous run of this agent left (same id and data dir)."""
        eng = self.engine
        assert eng is not None
        for c in await eng.list_containers(self.labels):
            labels = c.get("Labels") or {}
            kid = labels.get(L_KERNEL)
            if not kid or kid in self.kernels:
                continue
            try:
                allocations = json.loads(labels.get(L_ALLOCATIONS) or "{}")
                slots = slots_from_wire(json.loads(labels.get(L_SLOTS) or "{}"))
            except (ValueError, InvalidResourceRequest):
                log.warning("container %s of kernel %s has bad labels; removing it", c["Id"], kid)
                await eng.remove(c["Id"])
                continue
            saved = _read_json(self.kernel_dir(kid) / "spec.json") or {}
            req = saved.get("request") or {}
            kernel = KernelRuntime(id=kid, session_id=labels.get(L_SESSION, ""),
                            session_type=labels.get(L_SESSION_TYPE, "interactive"),
                            image=saved.get("image") or c.get("Image", ""),
                            cluster_role=labels.get(L_ROLE, "main"),
                            cluster_idx=int(labels.get(L_IDX, "1") or 1),
                            cluster_hostname=labels.get(L_HOSTNAME, ""), slots=slots,
                            allocations=allocations, container_id=c["Id"], adopted=True,
                            batch_timeout=req.get("batch_timeout"), network=req.get("network"),
                            created_at=float(c.get("Created") or time.time()))
            self.registry.restore(kid, allocations)
            if self.ports and saved.get("host_ports"):
                self.ports.restore(kid, saved["host_ports"])
            self.kernels[kid] = kernel
            ready = _read_json(self.ipc_dir(kid) / protocol.READY)
            if c.get("State") == "running" and ready is None:
                kernel.status = "preparing"
                kernel.task = asyncio.create_task(self._adopt_preparing(kernel))
            elif c.get("State") == "running" and ready is not None and ready.get("status") == "ready":
                info = await eng.inspect(c["Id"])
                kernel.status = "running"
                kernel.started_at = ready.get("at")
                kernel.service_ports = self._published(saved.get("service_ports", []), info)
            else:
                kernel.status = "running"  # the poll loop reports its end
            log.info("adopted kernel %s (container %s, %s)", kid, c["Id"][:12], c.get("State"))

    async def _adopt_preparing(self, kernel: KernelRuntime) -> None:
        while not self.engine_ready:  # adoption still going on
            await asyncio.sleep(0.05)
        try:
            await self._wait_ready(kernel, restarted=False)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            await self._fail(kernel, e)

    # --- background loops ---------------------------------------------------------------------
    async def _poll(self) -> None:
        if self.engine_ready:
            await self.poll_once()

    async def poll_once(self) -> None:
        eng = self.need_engine()
        states = {(c.get("Labels") or {}).get(L_KERNEL): c.get("State")
                  for c in await eng.list_containers(self.labels)}
        now = time.time()
        for kernel in list(self.kernels.values()):
            if kernel.status != "running" or kernel.lock.locked():
                continue
            if states.get(kernel.id) != "running":
                self.spawn(self._on_exit(kernel))
            elif (kernel.session_type == "batch" and kernel.batch_timeout and kernel.started_at
                  and now > kernel.started_at + kernel.batch_timeout + 30):
                # The runner enforces the timeout; this is the safety net.
                self.spawn(self._destroy_quietly(kernel.id, "batch-timeout"))

    async def _destroy_quietly(self, kernel_id: str, reason: str) -> None:
        with contextlib.suppress(errors.KernelNotFound):
            await self.destroy(kernel_id, reason, forced=True)

    async def _sample_all_stats(self) -> None:
        for kernel in list(self.kernels.values()):
            if kernel.status == "running":
                with contextlib.suppress(Exception):  # one kernel's (ending) container spoils no other's
                    await self.sample_stats(kernel)

    async def _housekeeping(self) -> None:
        # Each chore on its own: one that fails leaves the others done.
        with contextlib.suppress(Exception):
            self.prune_logs()
        if not self.engine_ready:
            return
        try:
            await self.scan_images()
        except Exception as e:
            log.error("the image list was not refreshed: %s", e)
        with contextlib.suppress(Exception):
            await self.sweep_networks()
        try:
            await self.sync_isolation()
        except Exception as e:
            log.error("session networks are NOT isolated from each other on this node: %s", e)

    def prune_logs(self) -> None:
        cutoff = time.time() - self.ac.log_retention
        for p in (self.data_dir / "kernel-logs").glob("*.log"):
            if p.stat().st_mtime < cutoff and p.stem not in self.kernels:
                p.unlink(missing_ok=True)

    # --- stats --------------------------------------------------------------------------------
    async def sample_stats(self, kernel: KernelRuntime, fresh: bool = False) -> dict[str, Any]:
        eng = self.need_engine()
        raw = await eng.stats(kernel.container_id)
        now = time.time()
        if raw is None:
            return kernel.last_stats or {}
        prev = kernel.raw_stats
        if fresh and (prev is None or now - prev[0] > 60):
            await asyncio.sleep(0.5)  # Podman has no precpu_stats: take a second sample
            prev = (now, raw)
            raw = await eng.stats(kernel.container_id) or raw
            now = time.time()
        cpu_rec = kernel.allocations.get("cpu") or {}
        cores = len(cpu_rec.get("cores") or []) or 1
        io = await asyncio.to_thread(cgroup_io_bytes, kernel.container_id)
        stats = compute_stats(raw, now, prev[1] if prev else None, prev[0] if prev else None,
                              float(min(Decimal(cores), kernel.slots.get("cpu", Decimal(cores)))),
                              io)
        kernel.raw_stats = (now, raw)
        kernel.last_stats = stats
        return stats

    # --- runner requests ----------------------------------------------------------------------
    async def runner(self, kernel: KernelRuntime, req: dict[str, Any], timeout: float
                     ) -> dict[str, Any]:
        return await runner_request(self.ipc_dir(kernel.id), req, timeout)

    async def execute(self, kernel_id: str, mode: str, run_id: str, code: str,
                      options: dict[str, Any] | None, flush_timeout: float) -> dict[str, Any]:
        kernel = self.get(kernel_id)
        if kernel.status in ("terminating", "terminated"):
            return self._vanished(run_id)
        if kernel.status != "running":
            raise errors.KernelConflict(f"kernel {kernel_id} is {kernel.status}")
        try:
            resp = await self.runner(kernel, {"op": "execute", "mode": mode, "run_id": run_id,
                                              "code": code, "options": options or {},
                                              "flush_timeout": flush_timeout},
                                     timeout=flush_timeout + 60)
        except (TimeoutError, OSError, ValueError) as e:
            log.info("execute on kernel %s: the runner is gone (%s)", kernel_id, e)
            return self._vanished(run_id)
        self._raise_runner_error(resp)
        return resp

    @staticmethod
    def _vanished(run_id: str) -> dict[str, Any]:
        """Backend.AI's answer for a kernel that went away."""
        return {"status": "finished", "runId": run_id, "exitCode": 130, "options": {},
                "files": [], "console": [["stderr", "The kernel is not running.\n"]]}

    @staticmethod
    def _raise_runner_error(resp: dict[str, Any]) -> None:
        err = resp.get("error")
        if err == "busy":
            raise errors.KernelConflict(resp.get("msg"))
        if err == "invalid":
            raise InvalidAPIParameters(resp.get("msg"))
        if err:
            raise errors.RunnerError(resp.get("msg"))

    async def interrupt(self, kernel_id: str) -> bool:
        kernel = self.get(kernel_id)
        if kernel.status != "running":
            raise errors.KernelConflict(f"kernel {kernel_id} is {kernel.status}")
        try:
            resp = await self.runner(kernel, {"op": "interrupt"}, timeout=10)
        except (TimeoutError, OSError) as e:
            raise errors.RunnerError(f"the runner does not answer: {e}") from e
        self._raise_runner_error(resp)
        return bool(resp.get("ok"))

    async def start_service(self, kernel_id: str, name: str, port: int | None,
                            args: dict[str, Any], envs: dict[str, str]) -> dict[str, Any]:
        kernel = self.get(kernel_id)
        if kernel.status != "running":
            raise errors.KernelConflict(f"kernel {kernel_id} is {kernel.status}")
        sp = next((s for s in kernel.service_ports if s["name"] == name), None)
        ports = [port] if port else (sp["container_ports"] if sp else [])
        if not ports:
            raise InvalidAPIParameters(f"the kernel declares no port for service {name!r}; "
                                       "give one")
        try:
            resp = await self.runner(kernel, {"op": "start_service", "name": name,
                                              "ports": ports, "args": args, "envs": envs},
                                     timeout=60)
        except (TimeoutError, OSError) as e:
            raise errors.RunnerError(f"the runner does not answer: {e}") from e
        self._raise_runner_error(resp)
        resp["container_ports"] = ports
        resp["host_ports"] = (sp or {}).get("host_ports", []) if not port or (
            sp and port in sp["container_ports"]) else []
        resp["kernel_host"] = self.ac.container_host
        return resp

    async def archive(self, kernel_id: str, path: str, limit: int = ARCHIVE_LIMIT) -> bytes:
        """A file or directory of the container as a tar (Docker's archive API)."""
        kernel = self.get(kernel_id)
        if kernel.status != "running" or not kernel.container_id:
            raise errors.KernelConflict(f"kernel {kernel_id} is {kernel.status}")
        if not path.startswith("/"):
            path = "/home/work/" + path
        if "\x00" in path:
            raise InvalidAPIParameters("bad path")
        try:
            tar = await self.need_engine().archive(kernel.container_id, path, limit)
        except ValueError as e:
            raise InvalidAPIParameters(f"{path} is too large to download this way ({e}).") from e
        if tar is None:
            raise ObjectNotFound(f"No such file in the session: {path}", object_name="file")
        return tar

    async def logs(self, kernel_id: str, tail: int | None) -> str:
        kernel = self.kernels.get(kernel_id)
        if kernel is not None and kernel.container_id and self.engine is not None:
            try:
                return await self.engine.logs(kernel.container_id, tail)
            except DockerError as e:
                if e.status != 404:
                    raise
        path = self.log_path(kernel_id)
        if path.exists():
            text = path.read_text(errors="replace")
            if tail:
                text = "".join(text.splitlines(keepends=True)[-tail:])
            return text
        raise errors.KernelNotFound(kernel_id)

    # --- networks -----------------------------------------------------------------------------
    # Every session has a bridge network of its own on each node it runs on (the launcher asks for
    # it before the kernels), isolated from every other network (engine.create_network).  It is
    # removed with the session's last kernel on this node, and the housekeeping loop sweeps those
    # a lost request or crash left behind.
    async def create_network(self, name: str, session_id: str) -> dict[str, Any]:
        eng = self.need_engine()
        if await eng.network_exists(name):
            return {"name": name, "created": False}
        try:
            await eng.create_network(name, {L_SESSION: session_id, L_AGENT: self.id,
                                            L_DATA_DIR: str(self.data_dir),
                                            L_NETWORK: "session"})
        except DockerError as e:
            if e.status == 409 or await eng.network_exists(name):  # created concurrently
                return {"name": name, "created": False}
            raise InvalidAPIParameters(f"the engine refused the network: {e.message}") from e
        try:  # before any container joins it
            await self.sync_isolation()
        except isolation.IsolationError as e:
            await self._remove_network_quietly(name)
            raise errors.IsolationFailed(str(e)) from e
        return {"name": name, "created": True}

    async def sync_isolation(self) -> None:
        """Rewrite this node's isolation rules for every session network on it (isolation.py;
        Podman only: Docker isolates its user-defined bridges itself)."""
        eng = self.engine
        if eng is None or eng.kind != "podman":
            return
        lock = isolation.NodeLock()
        await asyncio.to_thread(lock.__enter__)
        try:
            nets = await eng.list_networks({L_NETWORK: "session"})
            subnets = [c["Subnet"] for n in nets for c in (n.get("IPAM") or {}).get("Config") or []
                       if c.get("Subnet")]
            await asyncio.to_thread(isolation.apply, subnets)
        finally:
            lock.__exit__()

    async def _remove_network_quietly(self, name: str) -> None:
        """Remove a session network this agent created (others are left alone)."""
        if self.engine is None:
            return
        try:
            net = await self.engine.inspect_network(name)
            labels = (net or {}).get("Labels") or {}
            if net is not None and labels.get(L_AGENT) == self.id and L_NETWORK in labels:
                await self.engine.remove_network(name)
                log.info("network %s removed", name)
                await self.sync_isolation()
        except Exception as e:  # a container still attached, the engine gone: the sweep retries
            log.info("network %s not removed yet: %s", name, e)

    async def sweep_networks(self, grace: float = NETWORK_GRACE) -> list[str]:
        """Remove this agent's session networks that no kernel here uses and that are older than
        ``grace`` seconds (a launch that failed between the network and its kernels, a kernel that
        ended while the agent was down)."""
        eng = self.engine
        if eng is None:
            return []
        used = {k.network for k in self.kernels.values() if k.network}
        removed = []
        for net in await eng.list_networks({L_AGENT: self.id, L_NETWORK: "session"}):
            name = net.get("Name") or ""
            if not name or name in used or time.time() - _created_at(net.get("Created")) < grace:
                continue
            await self._remove_network_quietly(name)
            if not await eng.network_exists(name):
                removed.append(name)
        return removed

    async def destroy_network(self, name: str) -> dict[str, Any]:
        eng = self.need_engine()
        try:
            removed = await eng.remove_network(name)
        except DockerError as e:
            raise Conflict(f"network {name} cannot be removed: {e.message}") from e
        if not removed:
            raise errors.NetworkNotFound(f"network {name} does not exist")
        return {"name": name, "removed": True}
