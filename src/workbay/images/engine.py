"""Where the container engine is, and the ulimits containers need on it.

Workbay talks to Docker or Podman only through the Docker Engine API (aiodocker).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import aiodocker
from aiodocker.exceptions import DockerError

# Pinned instead of aiodocker's "auto": asking Podman 4.3 for /version takes about a second.
# 1.41 is what Podman 4.x speaks and Docker 20.10+ accepts.
DOCKER_API_VERSION = "v1.41"
PODMAN_SOCKET = Path("/run/podman/podman.sock")
DOCKER_SOCKET = Path("/var/run/docker.sock")


def engine_url() -> str:
    """``$DOCKER_HOST``, else Podman's API socket, else Docker's (the first that exists)."""
    env = os.environ.get("DOCKER_HOST")
    if env:
        return env
    for sock in (PODMAN_SOCKET, DOCKER_SOCKET):
        if sock.is_socket():
            return f"unix://{sock}"
    return f"unix://{PODMAN_SOCKET}"


def connect(url: str | None = None) -> aiodocker.Docker:
    """An aiodocker client for ``url`` (default: engine_url()); close it when done."""
    return aiodocker.Docker(url=url or engine_url(), api_version=DOCKER_API_VERSION)


async def ping(docker: aiodocker.Docker) -> None:
    """Raise DockerError (or OSError) unless the engine answers ``GET /_ping``."""
    async with docker._query("_ping", versioned_api=False) as resp:
        body = (await resp.read()).decode(errors="replace").strip()
    if body != "OK":
        raise DockerError(resp.status, f"unexpected answer to /_ping: {body[:100]!r}")


def _limit(which: int, cap: int) -> int:
    _soft, hard = resource.getrlimit(which)
    return cap if hard == resource.RLIM_INFINITY else min(hard, cap)


def container_ulimits() -> list[dict[str, int | str]]:
    """``HostConfig.Ulimits`` every container needs on Podman 4.3 with runc.

    Soft == hard, at or below this host's hard limits (Podman 4.3's compatible API swaps soft and
    hard, and runc cannot raise a limit above the host's: "error setting rlimit type 7"). nproc
    stays at 32768 or below (65536 fails on hosts whose hard limit is higher). The same numbers
    as tools/podman_service.sh writes to containers.conf.
    """
    nofile = _limit(resource.RLIMIT_NOFILE, 1048576)
    nproc = _limit(resource.RLIMIT_NPROC, 32768)
    return [{"Name": "nofile", "Soft": nofile, "Hard": nofile},
            {"Name": "nproc", "Soft": nproc, "Hard": nproc}]
