"""The agent RPC caller: turns scheduling decisions into kernels on agents, stops them, and
carries the in-session calls (execute, interrupt, logs, files, services) to the kernel's agent.

(Not to be confused with the WebUI's session launcher, the wizard in ``web/routes/launcher.py``.)
Every agent is reached through one pooled HTTP client (``AgentClientPool``), closed at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from sqlalchemy import select

from workbay.agent.client import AgentClient, AgentError, agent_http
from workbay.common.domain import DEAD_STATUSES
from workbay.common.errors import BackendError, ObjectNotFound, ServiceUnavailable
from workbay.manager.models import Keypair, User
from workbay.manager.models.compute import ComputeSession, Kernel
from workbay.manager.services.context import ServiceContext
from workbay.manager.services.folder_mounts import agent_mount
from workbay.manager.services.keys import generate_ssh_keypair
from workbay.manager.services.session_apps import app_secret, session_network
from workbay.manager.services.session_status import set_status

from .lifecycle import Lifecycle

log = logging.getLogger(__name__)
T = TypeVar("T")


class KernelRunnerError(BackendError):
    status, kind, title = 502, "kernel-runner-error", "The session's runner did not answer."


# What the agent takes of a replica's launch spec (agent.models.ModelServiceSpec); the rest of
# ``sessions.model_service`` (health check, variant) is the manager's own.
REPLICA_KEYS = ("start_command", "port", "pre_start_actions", "model_path", "definition_name")
REQUEUE_WINDOW = 60.0  # seconds an agent may keep refusing a scheduled session


class AgentRefused(Exception):
    """The agent answered insufficient-resource to a create (nothing was created)."""

    def __init__(self, agent_id: str | None, message: str) -> None:
        super().__init__(message)
        self.agent_id, self.message = agent_id, message


def _addr(kernel: Kernel) -> str:
    if not kernel.agent_addr:
        raise ServiceUnavailable(f"Kernel {kernel.id} is not placed on an agent (status {kernel.status}).")
    return kernel.agent_addr


class AgentClientPool:
    """One HTTP client per agent address, shared by every RPC to that agent (connections are kept
    alive between calls instead of a new client, and a new TLS/TCP handshake, per call)."""

    def __init__(self, secret: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._secret = secret
        self._transport = transport
        self._http: dict[str, httpx.AsyncClient] = {}

    def client(self, addr: str, timeout: float = 30.0) -> AgentClient:
        """An ``AgentClient`` on the pooled connection (``async with`` it: closing it keeps the
        pool's client open)."""
        key = addr.rstrip("/")
        http = self._http.get(key)
        if http is None or http.is_closed:
            http = self._http[key] = agent_http(key, self._secret, transport=self._transport)
        return AgentClient(key, self._secret, timeout=timeout, http=http)

    def __len__(self) -> int:
        return len(self._http)

    async def close(self) -> None:
        clients, self._http = list(self._http.values()), {}
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


class AgentRPC:
    """Implements ``services.compute_ports.KernelOps`` for the services."""

    def __init__(self, ctx: ServiceContext, lifecycle: Lifecycle, agents: AgentClientPool) -> None:
        self.ctx = ctx
        self.lifecycle = lifecycle
        self.agents = agents
        self.launching: set[uuid.UUID] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def client(self, addr: str, timeout: float = 30.0) -> AgentClient:
        return self.agents.client(addr, timeout)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- start -------------------------------------------------------------------------------------
    def launch(self, session_id: uuid.UUID) -> None:
        if session_id not in self.launching:
            self.launching.add(session_id)
            self.spawn(self._launch(session_id))

    async def _launch(self, session_id: uuid.UUID) -> None:
        try:
            await self._create_kernels(session_id)
        except AgentRefused as e:
            await self._requeue(session_id, e)
        except Exception as e:  # every failure ends the session with a reason, never silently
            log.exception("launching session %s failed", session_id)
            await self._fail(session_id, str(e) or type(e).__name__)
        finally:
            self.launching.discard(session_id)

    async def _create_kernels(self, session_id: uuid.UUID) -> None:
        async with self.ctx.db.begin() as s:
            sess = await s.get(ComputeSession, session_id)
            if sess is None or sess.status not in ("SCHEDULED", "PREPARING", "PULLING"):
                return
            kernels = (await s.execute(select(Kernel).where(Kernel.session_id == session_id)
                                       .order_by(Kernel.cluster_role != "main", Kernel.cluster_idx))).scalars().all()
            kp = await s.get(Keypair, sess.access_key)
            user = await s.get(User, sess.user_id)
            if kp is None or user is None:  # the start fails with this reason (see _launch)
                raise LookupError(f"the session's owner (keypair {sess.access_key}, user {sess.user_id}) "
                                  "no longer exists")
            set_status(sess, "PREPARING", "preparing")
            cluster_keys = sess.status_data.get("cluster_ssh_keypair") if sess.status_data else None
            if sess.cluster_size > 1 and not cluster_keys:
                public, private = generate_ssh_keypair(comment=f"cluster-{sess.id}")
                cluster_keys = {"public_key": public, "private_key": private}
                sess.status_data = {**(sess.status_data or {}), "cluster_ssh_keypair": cluster_keys}
        by_agent: dict[str, list[Kernel]] = defaultdict(list)
        for k in kernels:
            by_agent[_addr(k)].append(k)
        # Every session on a network of its own (isolated from the others' on each node), and a
        # secret its apps' gates open to (only the app-proxy and the manager's streams know it).
        network = session_network(session_id)
        hosts = [k.cluster_hostname for k in kernels]
        base = {
            "session_id": str(sess.id), "session_name": sess.name, "session_type": sess.session_type,
            "owner_access_key": sess.access_key, "owner_user_id": str(sess.user_id), "image": sess.image,
            "environ": sess.environ or {}, "mounts": [agent_mount(m) for m in sess.mounts or []], "preopen_ports": sess.preopen_ports or [],
            "startup_command": sess.startup_command, "bootstrap_script": sess.bootstrap_script or kp.bootstrap_script
            or None, "dotfiles": kp.dotfiles or [], "uid": user.container_uid or 1000,
            "gid": user.container_gid or 1000, "sudo": user.sudo_session_enabled,
            "batch_timeout": sess.batch_timeout, "network": network, "cluster_mode": sess.cluster_mode,
            "cluster_size": sess.cluster_size, "cluster_hosts": hosts, "cluster_ssh_keypair": cluster_keys,
            "authorized_keys": [key] if (key := (kp.ssh_public_key or "").strip()) else [],
            "pull_image": False, "app_secret": app_secret(self.ctx.config, sess.id),
            # a model service's replica (docs/serving.md, "The replica"); None for other sessions
            "model_service": {k: v for k, v in sess.model_service.items() if k in REPLICA_KEYS}
            if sess.model_service else None,
        }
        for n, (addr, group) in enumerate(by_agent.items()):
            async with self.client(addr, timeout=120) as agent:
                await agent.create_network(network, str(sess.id))
                request = {**base, "kernels": [{
                    "kernel_id": str(k.id), "cluster_role": k.cluster_role, "cluster_idx": k.cluster_idx,
                    "cluster_hostname": k.cluster_hostname, "resource_slots": k.occupied_slots,
                    "resource_opts": sess.resource_opts or {}} for k in group]}
                try:
                    created = await agent.create_kernels(request)
                except AgentError as e:
                    # The agent's own bookkeeping says no room (it still holds kernels this manager
                    # already counts as gone, e.g. orphans being destroyed): schedule again later
                    # rather than fail -- unless kernels were already created elsewhere.
                    if e.status == 409 and e.type.endswith("insufficient-resource") and n == 0:
                        raise AgentRefused(group[0].agent_id, e.msg or e.title) from e
                    raise
            async with self.ctx.db.begin() as s:
                for info in created:
                    row = await s.get(Kernel, uuid.UUID(info["kernel_id"]))
                    if row is not None and row.status not in DEAD_STATUSES:
                        row.allocation = info.get("allocations") or {}
                        if info.get("container_id"):
                            row.container_id = info["container_id"]
                        set_status(row, "PREPARING")
        # Events normally report the start; polling too makes it robust to lost deliveries.  The
        # kernels exist now: losing the agent from here on is the reconciler's business (agent
        # lost, kernels it stops reporting), not a failure to start.
        for addr, group in by_agent.items():
            try:
                async with self.client(addr, timeout=30) as agent:
                    states = await agent.wait_kernels([str(k.id) for k in group],
                                                      timeout=self.ctx.config.manager.kernel_start_timeout)
            except (AgentError, httpx.HTTPError, OSError) as e:
                log.warning("polling the start of session %s on %s failed (events will tell): %s",
                            session_id, addr, e)
                continue
            for kid, info in states.items():
                if info.get("status") == "running":
                    await self.lifecycle.kernel_started(uuid.UUID(kid), info)

    async def _requeue(self, session_id: uuid.UUID, refusal: AgentRefused) -> None:
        """Back to PENDING (kernels unplaced) after an agent refused for lack of resources, to be
        placed again on a later regular tick; refusals for longer than REQUEUE_WINDOW seconds
        fail the start as usual."""
        now = datetime.now(UTC)
        give_up = False
        async with self.ctx.db.begin() as s:
            sess = await s.get(ComputeSession, session_id)
            if sess is None or sess.status not in ("SCHEDULED", "PREPARING", "PULLING"):
                return
            data = dict(sess.status_data or {})
            since = datetime.fromisoformat(data.get("requeued_since") or now.isoformat())
            give_up = (now - since).total_seconds() > REQUEUE_WINDOW
            if not give_up:
                data["requeues"] = int(data.get("requeues", 0)) + 1
                data["requeued_since"] = since.isoformat()
                log.warning("agent %s refused session %s (%s); requeued (%d)", refusal.agent_id, session_id,
                            refusal.message, data["requeues"])
                kernels = (await s.execute(select(Kernel).where(Kernel.session_id == session_id))).scalars().all()
                for k in kernels:
                    k.agent_id, k.agent_addr, k.occupied_slots, k.allocation = None, None, {}, {}
                    set_status(k, "PENDING")
                sess.occupying_slots = {}
                sess.status_data = data
                set_status(sess, "PENDING", f"requeued: agent {refusal.agent_id} lacked resources")
                sess.status_info = "pending"
        if give_up:
            await self._fail(session_id, f"agent {refusal.agent_id}: {refusal.message}")

    async def _fail(self, session_id: uuid.UUID, message: str) -> None:
        async with self.ctx.db.begin() as s:
            sess = await s.get(ComputeSession, session_id)
            if sess is None or sess.status not in ("SCHEDULED", "PREPARING", "PULLING"):
                return  # it started (or ended) meanwhile: not a failure to start
            sess.status_data = {**(sess.status_data or {}), "error": {"type": "failed-to-start", "message": message}}
            set_status(sess, "TERMINATING", "failed-to-start")
        await self.terminate_session(session_id, "failed-to-start", forced=True)

    # -- stop --------------------------------------------------------------------------------------
    async def terminate_later(self, session_id: uuid.UUID, reason: str) -> None:
        """Destroy a session's remaining kernels in the background (the lifecycle's
        ``on_session_outcome``: a kernel ended and the session ends with it)."""
        self.spawn(self.terminate_session(session_id, reason))

    async def terminate_session(self, session_id: uuid.UUID, reason: str, forced: bool = False) -> None:
        cancelled = None
        async with self.ctx.db.begin() as s:
            sess = await s.get(ComputeSession, session_id)
            if sess is None or sess.status in DEAD_STATUSES:
                return
            kernels = (await s.execute(select(Kernel).where(Kernel.session_id == session_id))).scalars().all()
            if sess.status == "PENDING" or all(k.agent_addr is None for k in kernels):
                for k in kernels:
                    set_status(k, "CANCELLED", reason)
                set_status(sess, "CANCELLED", reason)
                cancelled = sess
            else:
                set_status(sess, "TERMINATING", reason if sess.status_info != "failed-to-start" else sess.status_info)
        if cancelled is not None:
            await self.lifecycle.publish(cancelled, "session_cancelled", reason)
            return
        await self.lifecycle.publish(sess, "session_terminating", reason)
        await self._destroy_kernels(session_id, reason, forced)
        await self.lifecycle.finish_terminating(session_id)

    async def _destroy_kernels(self, session_id: uuid.UUID, reason: str, forced: bool) -> None:
        async with self.ctx.db() as s:
            kernels = (await s.execute(select(Kernel).where(Kernel.session_id == session_id))).scalars().all()
            sess = await s.get(ComputeSession, session_id)
        networks: set[str] = set()
        for k in kernels:
            if k.status in DEAD_STATUSES:
                continue
            if k.agent_addr is None:
                await self.lifecycle.kernel_terminated(k.id, reason, None)
                continue
            try:
                async with self.client(k.agent_addr, timeout=120) as agent:
                    result = await agent.destroy_kernel(str(k.id), reason, forced)
                await self.lifecycle.kernel_terminated(k.id, reason, result.get("exit_code"), None, result.get("stats"))
                networks.add(k.agent_addr)
            except AgentError as e:
                if e.status == 404:  # already gone
                    await self.lifecycle.kernel_terminated(k.id, reason, None)
                elif forced:
                    await self.lifecycle.kernel_terminated(k.id, "force-terminated", None, str(e))
                else:
                    log.warning("destroying kernel %s failed: %s (will retry)", k.id, e)
            except (httpx.HTTPError, OSError) as e:
                if forced:
                    await self.lifecycle.kernel_terminated(k.id, "force-terminated", None, str(e))
                else:
                    log.warning("agent %s unreachable while destroying %s: %s (will retry)", k.agent_id, k.id, e)
        if sess is not None:
            for addr in networks:
                try:
                    async with self.client(addr) as agent:
                        await agent.destroy_network(session_network(session_id))
                except (AgentError, httpx.HTTPError, OSError):
                    pass  # gone with its last kernel already (the agent removes it), or still in use

    async def restart_session(self, session_id: uuid.UUID) -> None:
        async with self.ctx.db.begin() as s:
            sess = await s.get(ComputeSession, session_id)
            if sess is None:
                raise ObjectNotFound(object_name="session")
            kernels = (await s.execute(select(Kernel).where(Kernel.session_id == session_id))).scalars().all()
            set_status(sess, "RESTARTING", "user-requested restart")
            for k in kernels:
                set_status(k, "RESTARTING")
        for k in kernels:
            async with self.client(_addr(k), timeout=120) as agent:
                await self._agent_call(agent.restart_kernel(str(k.id)))

    # -- in-session calls ----------------------------------------------------------------------------
    async def _agent_call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return await coro
        except AgentError as e:
            err = KernelRunnerError(e.body.get("msg") or e.body.get("title") or str(e))
            err.status = e.status if 400 <= e.status < 500 else 502
            raise err from e
        except (httpx.HTTPError, OSError) as e:
            raise ServiceUnavailable(f"The agent does not answer: {e}") from e

    async def execute(self, kernel: Kernel, body: dict[str, Any]) -> dict[str, Any]:
        async with self.client(_addr(kernel), timeout=150) as agent:
            result = await self._agent_call(agent.execute(
                str(kernel.id), mode=body.get("mode") or "query", code=body.get("code") or "",
                run_id=body.get("runId") or body.get("run_id") or "", options=body.get("options"),
                flush_timeout=float(body.get("flush_timeout") or 2.0)))
        return {"result": result}

    async def interrupt(self, kernel: Kernel) -> None:
        async with self.client(_addr(kernel)) as agent:
            await self._agent_call(agent.interrupt(str(kernel.id)))

    async def archive(self, kernel: Kernel, path: str) -> bytes:
        async with self.client(_addr(kernel), timeout=300) as agent:
            return await self._agent_call(agent.archive(str(kernel.id), path))

    async def start_service(self, kernel: Kernel, name: str, port: int | None, args: dict[str, Any],
                            envs: dict[str, str]) -> dict[str, Any]:
        async with self.client(_addr(kernel), timeout=90) as agent:
            return await self._agent_call(agent.start_service(str(kernel.id), name, port, args, envs))

    async def logs(self, kernel: Kernel) -> str:
        async with self.client(_addr(kernel)) as agent:
            return await self._agent_call(agent.logs(str(kernel.id)))
