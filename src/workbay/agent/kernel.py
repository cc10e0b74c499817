"""Kernels: the in-memory record, and the pure builders of a kernel's container and runner config."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workbay.common.slots import ResourceSlot
from workbay.runner import protocol

from .models import CreateKernels, KernelSpec
from .resources import slots_to_wire
from .resources.cpu import thread_count

# Container labels (Backend.AI's names where it has one).
L_KERNEL = "ai.backend.kernel-id"
L_SESSION = "ai.backend.session-id"
L_SESSION_NAME = "ai.backend.session-name"
L_SESSION_TYPE = "ai.backend.session-type"
L_OWNER = "ai.backend.owner"
L_OWNER_USER = "ai.backend.owner-user"
L_AGENT = "ai.backend.agent-id"
L_ROLE = "ai.backend.cluster-role"
L_IDX = "ai.backend.cluster-idx"
L_HOSTNAME = "ai.backend.cluster-hostname"
L_SLOTS = "ai.backend.resource-slots"
L_SERVICE_PORTS = "ai.backend.service-ports"
L_ALLOCATIONS = "workbay.allocations"
L_DATA_DIR = "workbay.data-dir"
L_BATCH_TIMEOUT = "workbay.batch-timeout"
L_CREATED = "workbay.created-at"

RUNNER_ENTRY = ["python3", f"{protocol.RUNNER_DIR}/entry.py"]
HPC_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class KernelRuntime:
    """A kernel on this node as the agent tracks it (in memory; rebuilt from container labels and
    spec.json when the agent restarts)."""

    id: str
    session_id: str
    session_type: str
    image: str
    cluster_role: str
    cluster_idx: int
    cluster_hostname: str
    slots: ResourceSlot
    allocations: dict[str, Any]
    container_id: str = ""
    status: str = "preparing"  # preparing | running | restarting | terminating | terminated
    service_ports: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    exit_code: int | None = None
    batch_timeout: float | None = None
    last_stats: dict[str, Any] | None = None
    raw_stats: tuple[float, dict[str, Any]] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task | None = None
    adopted: bool = False
    network: str | None = None  # the session's network on this node (removed with its last kernel)

    def to_wire(self, kernel_host: str) -> dict[str, Any]:
        return {"kernel_id": self.id, "session_id": self.session_id, "status": self.status,
                "session_type": self.session_type, "image": self.image,
                "container_id": self.container_id, "cluster_role": self.cluster_role,
                "cluster_idx": self.cluster_idx, "cluster_hostname": self.cluster_hostname,
                "slots": slots_to_wire(self.slots),
                "allocations": self.allocations, "service_ports": self.service_ports,
                "kernel_host": kernel_host, "created_at": self.created_at,
                "started_at": self.started_at, "exit_code": self.exit_code,
                "adopted": self.adopted, "last_stats": self.last_stats}


def parse_service_ports(label: str | None) -> list[dict[str, Any]]:
    """``ai.backend.service-ports`` (``name:proto:port`` or ``name:proto:[p1,p2]``, comma
    separated) → [{"name","protocol","container_ports"}]; malformed items are skipped."""
    out: list[dict[str, Any]] = []
    if not label:
        return out
    items, depth, cur = [], 0, ""
    for ch in label:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    seen: set[str] = set()
    for item in items:
        parts = item.strip().split(":", 2)
        if len(parts) != 3:
            continue
        name, proto, ports = parts[0].strip(), parts[1].strip(), parts[2].strip()
        try:
            nums = [int(p) for p in ports.strip("[]").split(",") if p.strip()]
        except ValueError:
            continue
        if not name or name in seen or not nums or any(not 1 <= p <= 65535 for p in nums):
            continue
        seen.add(name)
        out.append({"name": name, "protocol": proto, "container_ports": nums})
    return out


def kernel_service_ports(image_labels: dict[str, str], preopen: list[int]) -> list[dict[str, Any]]:
    ports = parse_service_ports(image_labels.get(L_SERVICE_PORTS))
    used = {p for sp in ports for p in sp["container_ports"]}
    for p in preopen:
        if p not in used:
            ports.append({"name": str(p), "protocol": "preopen", "container_ports": [p]})
    return ports


def add_gate_ports(service_ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service ports with ``gate_ports``: the container port of each app port's gate (the
    runner's gate.py), which is what gets published."""
    ports = [p for sp in service_ports for p in sp["container_ports"]]
    gates = iter(protocol.gate_ports(ports, set(ports)))
    return [{**sp, "gate_ports": [next(gates) for _ in sp["container_ports"]]} for sp in service_ports]


def published_ports(sp: dict[str, Any]) -> list[int]:
    """The container ports published on the host for a service port: its gates' where it has them."""
    return list(sp.get("gate_ports") or sp["container_ports"])


def cluster_env(req: CreateKernels, k: KernelSpec) -> dict[str, str]:
    """BACKENDAI_* variables of a kernel (CS-8)."""
    hosts = req.cluster_hosts or [x.cluster_hostname for x in req.kernels]
    if k.cluster_hostname not in hosts:
        hosts = [*hosts, k.cluster_hostname]
    size = req.cluster_size or len(hosts)
    roles: dict[str, int] = {}
    for h in hosts:
        role = h.rstrip("0123456789") or h
        roles[role] = roles.get(role, 0) + 1
    return {
        "BACKENDAI_KERNEL_ID": k.kernel_id,
        "BACKENDAI_SESSION_ID": req.session_id,
        "BACKENDAI_SESSION_NAME": req.session_name,
        "BACKENDAI_SESSION_TYPE": req.session_type,
        "BACKENDAI_CLUSTER_HOST": k.cluster_hostname,
        "BACKENDAI_CLUSTER_HOSTS": ",".join(hosts),
        "BACKENDAI_CLUSTER_IDX": str(k.cluster_idx),
        "BACKENDAI_CLUSTER_ROLE": k.cluster_role,
        "BACKENDAI_CLUSTER_MODE": req.cluster_mode,
        "BACKENDAI_CLUSTER_SIZE": str(size),
        "BACKENDAI_CLUSTER_REPLICAS": ",".join(f"{r}:{n}" for r, n in roles.items()),
        "BACKENDAI_CLUSTER_LOCAL_RANK": str(hosts.index(k.cluster_hostname)),
    }


def hpc_env(cpu: Decimal, override: int | None) -> dict[str, str]:
    n = str(override or thread_count(cpu))
    return {v: n for v in HPC_VARS}


def kernel_environ(req: CreateKernels, k: KernelSpec, cpu: Decimal,
                   plugin_env: dict[str, str], service_ports: list[dict[str, Any]]
                   ) -> dict[str, str]:
    """Every variable of the container. Precedence: plugin (devices) and BACKENDAI_* (not
    overridable) > the user's variables > defaults (HPC threads, LANG)."""
    env: dict[str, str] = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                           **hpc_env(cpu, req.thread_count)}
    env.update(req.environ)
    env.update(k.environ)
    env.update(cluster_env(req, k))
    env["LOCAL_USER_ID"] = str(req.uid)    # Backend.AI's names for the user's uid/gid
    env["LOCAL_GROUP_ID"] = str(req.gid)
    preopen = [str(sp["container_ports"][0]) for sp in service_ports
               if sp["protocol"] == "preopen"]
    if preopen:
        env["BACKENDAI_PREOPEN_PORTS"] = ",".join(preopen)
    if req.model_service is not None:  # a model service's replica: where it serves, its model
        env["WORKBAY_MODEL_SERVICE_PORT"] = str(req.model_service.port)
        if req.model_service.model_path:
            env["WORKBAY_MODEL_PATH"] = req.model_service.model_path
    env.update(plugin_env)
    return env


def build_container_body(
    *, req: CreateKernels, k: KernelSpec, image: str, agent_id: str, data_dir: str,
    env: dict[str, str], host_config: dict[str, Any], service_ports: list[dict[str, Any]],
    runner_dir: str, ipc_dir: str, scratch_dir: str, ulimits: dict[str, int],
    host_ip: str, host_ports: list[int] | None, slots: ResourceSlot,
    allocations: dict[str, Any],
) -> dict[str, Any]:
    """The Docker Engine API ``POST /containers/create`` body of a kernel (pure)."""
    import json

    labels = {
        L_KERNEL: k.kernel_id, L_SESSION: req.session_id, L_SESSION_NAME: req.session_name,
        L_SESSION_TYPE: req.session_type, L_OWNER: req.owner_access_key,
        L_OWNER_USER: req.owner_user_id, L_AGENT: agent_id, L_ROLE: k.cluster_role,
        L_IDX: str(k.cluster_idx), L_HOSTNAME: k.cluster_hostname, L_DATA_DIR: data_dir,
        L_SLOTS: json.dumps(slots_to_wire(slots)),
        L_ALLOCATIONS: json.dumps(allocations, sort_keys=True),
        L_SERVICE_PORTS: ",".join(f"{sp['name']}:{sp['protocol']}:"
                                  f"[{','.join(str(p) for p in sp['container_ports'])}]"
                                  for sp in service_ports),
        L_CREATED: str(time.time()),
    }
    if req.batch_timeout:
        labels[L_BATCH_TIMEOUT] = str(req.batch_timeout)
    mounts = [
        {"Type": "bind", "Source": runner_dir, "Target": protocol.RUNNER_DIR, "ReadOnly": True},
        {"Type": "bind", "Source": ipc_dir, "Target": protocol.IPC_DIR, "ReadOnly": False},
        {"Type": "bind", "Source": scratch_dir, "Target": "/home/work", "ReadOnly": False},
    ] + [{"Type": "bind", "Source": m.source, "Target": m.target, "ReadOnly": m.read_only}
         for m in req.mounts]
    container_ports = [p for sp in service_ports for p in published_ports(sp)]
    exposed: dict[str, dict[str, Any]] = {f"{p}/tcp": {} for p in container_ports}
    bindings: dict[str, list[dict[str, str]]] = {}
    for i, p in enumerate(container_ports):
        hp = str(host_ports[i]) if host_ports else ""
        bindings[f"{p}/tcp"] = [{"HostIp": host_ip, "HostPort": hp}]
    hc: dict[str, Any] = {
        "Init": True,
        "Mounts": mounts,
        "Ulimits": [{"Name": n, "Soft": v, "Hard": v} for n, v in sorted(ulimits.items())],
        "PortBindings": bindings,
        "RestartPolicy": {"Name": "no"},
    }
    hc.update(host_config)
    if req.extra_hosts:
        hc["ExtraHosts"] = [f"{h}:{ip}" for h, ip in sorted(req.extra_hosts.items())]
    body: dict[str, Any] = {
        "Image": image,
        "Hostname": k.cluster_hostname,
        "Entrypoint": RUNNER_ENTRY,
        "Cmd": [],
        "User": "root",
        "WorkingDir": "/home/work",
        "Env": [f"{key}={value}" for key, value in sorted(env.items())],
        "Labels": labels,
        "ExposedPorts": exposed,
        "Tty": False,
        "OpenStdin": False,
        "StopSignal": "SIGTERM",
        "HostConfig": hc,
    }
    if req.network:
        hc["NetworkMode"] = req.network
        body["NetworkingConfig"] = {"EndpointsConfig": {
            req.network: {"Aliases": [k.cluster_hostname]}}}
    return body


def runner_config(req: CreateKernels, k: KernelSpec, env: dict[str, str],
                  service_ports: list[dict[str, Any]], resources: dict[str, str],
                  ssh_keypair: dict[str, str]) -> dict[str, Any]:
    """``kernel.json``: what the runner needs to prepare the kernel."""
    hosts = req.cluster_hosts or [x.cluster_hostname for x in req.kernels]
    cluster = None
    if req.cluster_ssh_keypair is not None:
        cluster = {"role": k.cluster_role, "idx": k.cluster_idx,
                   "hostname": k.cluster_hostname, "hosts": hosts,
                   "private_key": req.cluster_ssh_keypair.private_key,
                   "public_key": req.cluster_ssh_keypair.public_key}
    return {
        "kernel_id": k.kernel_id, "session_id": req.session_id,
        "session_type": req.session_type, "user": "work", "home": "/home/work",
        "uid": req.uid, "gid": req.gid, "supplementary_gids": req.supplementary_gids,
        "sudo": req.sudo, "environ": env, "resources": resources,
        "dotfiles": [d.model_dump() for d in req.dotfiles],
        "bootstrap_script": req.bootstrap_script, "startup_command": req.startup_command,
        "batch_timeout": req.batch_timeout, "service_ports": service_ports,
        "ssh_keypair": ssh_keypair, "cluster": cluster, "authorized_keys": list(req.authorized_keys),
        "app_secret": req.app_secret,  # kernel.json is root's (0600 in a 0700 directory)
        "model_service": req.model_service.model_dump(mode="json") if req.model_service else None,
    }


def publish_ip(container_host: str, is_local_address: Callable[[str], bool]) -> str:
    """The host address published container ports bind to, from ``agent.container_host``.

    Loopback stays on loopback; an address of this node binds there alone, so the ports are not
    open on the node's other interfaces; a DNS name, or an address the node does not hold (a NAT
    or floating address), publishes on every interface, the only binding that still works."""
    if container_host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(container_host)
    except ValueError:
        return "0.0.0.0"
    if address.is_loopback or is_local_address(str(address)):
        return str(address)
    return "0.0.0.0"


def parse_port_range(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    lo, sep, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi if sep else lo)
    except ValueError:
        raise ValueError(f"port_range must look like 30000-31000, got {text!r}") from None
    if not (1 <= a <= b <= 65535):
        raise ValueError(f"bad port_range {text!r}")
    return a, b


class PortPool:
    """Host ports from ``agent.port_range`` (pure bookkeeping), reused least recently freed first."""

    def __init__(self, lo: int, hi: int) -> None:
        self.free = list(range(lo, hi + 1))
        self.held: dict[str, list[int]] = {}

    def take(self, kernel_id: str, n: int) -> list[int]:
        if n > len(self.free):
            from .resources import InsufficientResources

            raise InsufficientResources(f"need {n} host ports, {len(self.free)} free")
        got, self.free = self.free[:n], self.free[n:]
        self.held[kernel_id] = got
        return got

    def restore(self, kernel_id: str, ports: list[int]) -> None:
        self.free = [p for p in self.free if p not in ports]
        self.held[kernel_id] = list(ports)

    def release(self, kernel_id: str) -> None:
        # To the back of the line: a port just freed is handed out again last, so a client still
        # holding the old address (a model service's route, an open circuit) does not meet another
        # session's gate there as soon as a replacement starts.
        self.free.extend(self.held.pop(kernel_id, []))
