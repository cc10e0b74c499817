"""The container engine, through the Docker Engine API only (aiodocker): Docker or Podman.

Podman 4.3's compatible API differences handled here: no ``precpu_stats`` (callers keep the
previous sample), empty blkio stats on cgroup v1 (read from the cgroup files instead).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

log = logging.getLogger(__name__)

PODMAN_SOCKET = "unix:///run/podman/podman.sock"
DOCKER_SOCKET = "unix:///var/run/docker.sock"
ARCH_ALIASES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


def _label_filters(labels: dict[str, str]) -> str:
    """The engine's JSON `filters` parameter selecting objects that carry all of labels."""
    return json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})


def normalize_arch(arch: str) -> str:
    return ARCH_ALIASES.get(arch.lower(), arch.lower())


def engine_candidates(configured: str, environ: dict[str, str] | None = None) -> list[str]:
    """Endpoints to try, in order. An explicit setting (config, then $DOCKER_HOST) is the only
    candidate: no silent fallback to another engine."""
    env = os.environ if environ is None else environ
    if configured:
        return [configured]
    if env.get("DOCKER_HOST"):
        return [env["DOCKER_HOST"]]
    return [PODMAN_SOCKET, DOCKER_SOCKET]


class EngineUnreachable(Exception):
    """No engine endpoint answers (the RPC answers errors.EngineUnavailable meanwhile)."""


class Engine:
    def __init__(self, url: str, docker: aiodocker.Docker, kind: str, api_version: str) -> None:
        self.url = url
        self.docker = docker
        self.kind = kind                       # podman | docker
        self.api_version = api_version
        self.arch = normalize_arch(platform.machine())  # the engine runs on this node

    @classmethod
    async def connect(cls, candidates: list[str]) -> Engine:
        """The first endpoint that answers ``/_ping``. The API version and the engine's kind come
        from the ping's headers (Podman's ``/version`` takes seconds: it runs its helpers)."""
        errors = []
        for url in candidates:
            if url.startswith("unix://") and not os.path.exists(url[len("unix://"):]):
                errors.append(f"{url}: no such socket")
                continue
            docker = aiodocker.Docker(url=url, api_version="v1.41")
            try:
                async def ping(docker: aiodocker.Docker = docker) -> tuple[str, dict[str, str]]:
                    async with docker._query("_ping", versioned_api=False) as resp:
                        return (await resp.text()), dict(resp.headers)
                body, headers = await asyncio.wait_for(ping(), 10)
                if body.strip() != "OK":
                    raise EngineUnreachable(f"unexpected /_ping answer {body[:50]!r}")
                api = headers.get("Api-Version") or "1.41"
                if tuple(int(x) for x in api.split(".")[:2]) > (1, 41):
                    api = "1.41"  # what this code speaks; newer engines accept older versions
                docker.api_version = f"v{api}"
                kind = "podman" if "Libpod-Api-Version" in headers or \
                    "libpod" in headers.get("Server", "").lower() else "docker"
                return cls(url, docker, kind, api)
            except Exception as e:  # connection refused, timeout, bad answer
                errors.append(f"{url}: {e}")
                await docker.close()
        raise EngineUnreachable("; ".join(errors) or "no engine endpoint")

    async def close(self) -> None:
        await self.docker.close()

    # --- containers ---------------------------------------------------------------------------
    async def _get_or_none(self, path: str) -> dict[str, Any] | None:
        """GET path as JSON; None when the engine answers 404."""
        try:
            return await self.docker._query_json(path, method="GET")
        except DockerError as e:
            if e.status == 404:
                return None
            raise

    async def list_containers(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return await self.docker._query_json("containers/json", method="GET",
                                             params={"all": "true", "filters": _label_filters(labels)})

    async def inspect(self, cid: str) -> dict[str, Any] | None:
        return await self._get_or_none(f"containers/{cid}/json")

    async def create(self, body: dict[str, Any], name: str) -> str:
        c = await self.docker.containers.create(body, name=name)
        return c.id

    async def start(self, cid: str) -> None:
        await self.docker.containers.container(cid).start()

    async def stop(self, cid: str, timeout: float) -> None:
        try:
            await self.docker.containers.container(cid).stop(t=int(timeout))
        except DockerError as e:
            if e.status not in (304, 404):
                raise

    async def kill(self, cid: str) -> None:
        try:
            await self.docker.containers.container(cid).kill()
        except DockerError as e:
            if e.status not in (404, 409, 500):
                raise

    async def remove(self, cid: str) -> None:
        try:
            await self.docker.containers.container(cid).delete(force=True, v=True)
        except DockerError as e:
            if e.status != 404:
                raise

    async def logs(self, cid: str, tail: int | None = None) -> str:
        params: dict[str, Any] = {"stdout": True, "stderr": True}
        if tail:
            params["tail"] = str(tail)
        lines = await self.docker.containers.container(cid).log(**params)
        return "".join(lines)

    async def archive(self, cid: str, path: str, limit: int) -> bytes | None:
        """A tar of ``path`` in the container (None when it does not exist); at most ``limit``
        bytes (ValueError beyond)."""
        try:
            async with self.docker._query(f"containers/{cid}/archive", method="GET",
                                          params={"path": path}) as resp:
                out = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    out += chunk
                    if len(out) > limit:
                        raise ValueError(f"larger than {limit} bytes")
                return bytes(out)
        except DockerError as e:
            if e.status == 404:
                return None
            raise

    async def stats(self, cid: str) -> dict[str, Any] | None:
        try:
            # Podman answers without a Content-Type: parse the body ourselves.
            async with self.docker._query(f"containers/{cid}/stats", method="GET",
                                          params={"stream": "false"}) as resp:
                body = await resp.read()
        except DockerError as e:
            if e.status in (404, 409):
                return None
            raise
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if isinstance(data, list):
            data = data[0] if data else None
        return data

    # --- images -------------------------------------------------------------------------------
    async def list_images(self) -> list[dict[str, Any]]:
        return await self.docker._query_json("images/json", method="GET")

    async def inspect_image(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.docker._query_json(f"images/{name}/json", method="GET")
        except DockerError as e:
            if e.status == 404:
                return None
            raise

    async def pull(self, name: str) -> None:
        await self.docker.images.pull(name)

    # --- networks -----------------------------------------------------------------------------
    async def network_exists(self, name: str) -> bool:
        try:
            await self.docker._query_json(f"networks/{name}", method="GET")
            return True
        except DockerError as e:
            if e.status == 404:
                return False
            raise

    async def create_network(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        """A bridge network isolated from every other one: Docker isolates user-defined bridges
        by default; Podman (netavark) does so for networks created with ``isolate`` (traffic
        between two such networks is dropped), egress stays NATed as on any bridge."""
        body: dict[str, Any] = {"Name": name, "Driver": "bridge", "CheckDuplicate": True,
                                "Labels": labels}
        if self.kind == "podman":
            body["Options"] = {"isolate": "true"}
        return await self.docker._query_json("networks/create", method="POST", data=body)

    async def list_networks(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return await self.docker._query_json("networks", method="GET",
                                             params={"filters": _label_filters(labels)})

    async def inspect_network(self, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(f"networks/{name}")

    async def remove_network(self, name: str) -> bool:
        try:
            net = await self.docker.networks.get(name)
            await net.delete()
            return True
        except DockerError as e:
            if e.status == 404:
                return False
            raise


def cgroup_io_bytes(container_id: str, root: str = "/sys/fs/cgroup") -> tuple[int, int] | None:
    """(read, write) bytes of a container from its cgroup files, when the engine's stats lack them."""
    v1 = [f"blkio/libpod_parent/libpod-{container_id}",
          f"blkio/machine.slice/libpod-{container_id}.scope",
          f"blkio/docker/{container_id}", f"blkio/system.slice/docker-{container_id}.scope"]
    for rel in v1:
        path = os.path.join(root, rel, "blkio.throttle.io_service_bytes_recursive")
        try:
            with open(path) as f:
                read = write = 0
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[1] == "Read":
                        read += int(parts[2])
                    elif len(parts) == 3 and parts[1] == "Write":
                        write += int(parts[2])
                return read, write
        except (OSError, ValueError):
            continue
    v2 = [f"machine.slice/libpod-{container_id}.scope", f"libpod_parent/libpod-{container_id}",
          f"system.slice/docker-{container_id}.scope", f"docker/{container_id}"]
    for rel in v2:
        path = os.path.join(root, rel, "io.stat")
        try:
            with open(path) as f:
                read = write = 0
                for line in f:
                    for kv in line.split()[1:]:
                        k, _, v = kv.partition("=")
                        if k == "rbytes":
                            read += int(v)
                        elif k == "wbytes":
                            write += int(v)
                return read, write
        except (OSError, ValueError):
            continue
    return None
