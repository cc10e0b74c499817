"""What the services need from the compute side (``manager/compute/``), as typed Protocols.

The services never import ``manager/compute/`` (it imports them: the loader reads the models, the
lifecycle uses the status rules); ``state.py`` passes the real objects in, tests may pass fakes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

from workbay.agent.client import AgentClient
from workbay.manager.models.compute import Kernel
from workbay.manager.models.serving import ModelService


class SchedulerWake(Protocol):
    """The scheduler's wake-up hint: something changed, tick soon."""

    def wake(self) -> None: ...


class ServingWake(Protocol):
    """The serving reconciler's wake-up hint: a model service changed, pass soon."""

    def wake(self) -> None: ...


class ServiceValidator(Protocol):
    """The validate dry run (``compute.serving_validate.DryRun``): one replica of a service that is
    not stored, its progress as ``(event, data)`` pairs (``step``, ``log``, then ``verdict``); the
    replica's session is terminated when the stream ends, however it ends."""

    def run(self, svc: ModelService) -> AsyncIterator[tuple[str, dict[str, Any]]]: ...


class KernelOps(Protocol):
    """Starting, stopping and talking to a session's kernels through their agents."""

    async def terminate_session(self, session_id: uuid.UUID, reason: str, forced: bool = False) -> None: ...

    async def restart_session(self, session_id: uuid.UUID) -> None: ...

    async def execute(self, kernel: Kernel, body: dict[str, Any]) -> dict[str, Any]: ...

    async def interrupt(self, kernel: Kernel) -> None: ...

    async def archive(self, kernel: Kernel, path: str) -> bytes: ...

    async def start_service(self, kernel: Kernel, name: str, port: int | None, args: dict[str, Any],
                            envs: dict[str, str]) -> dict[str, Any]: ...

    async def logs(self, kernel: Kernel) -> str: ...


class AgentClients(Protocol):
    """The pooled clients of the agents' RPC API (``compute.agent_rpc.AgentClientPool``)."""

    def client(self, addr: str, timeout: float = 30.0) -> AgentClient: ...
