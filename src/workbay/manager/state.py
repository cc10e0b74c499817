"""The manager's process-wide state, built once at startup."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from workbay.common.background import BackgroundLoop
from workbay.common.ratelimit import RateLimiter

from .compute.agent_rpc import AgentClientPool, AgentRPC
from .compute.dispatcher import Dispatcher
from .compute.lifecycle import Lifecycle
from .compute.reconciler import ComputeReconciler
from .compute.serving import ServingReconciler
from .compute.serving_validate import DryRun
from .services.agent_registry import AgentRegistry
from .services.auth import AuthService
from .services.bgtasks import BackgroundTasks
from .services.compute_admin import ComputeAdmin
from .services.compute_ports import ServiceValidator
from .services.context import ServiceContext
from .services.domains import DomainService
from .services.folder_admin import FolderAdmin
from .services.folder_apps import FolderApps
from .services.folder_mounts import FolderMounts
from .services.folder_sharing import FolderSharing
from .services.folders import FolderService
from .services.keypairs import KeypairService
from .services.model_definitions import ModelDefinitions
from .services.model_services import ServingService
from .services.model_store import ModelStore
from .services.policies import PolicyService
from .services.projects import ProjectService
from .services.resource_usage import ResourceSummary, ResourceUsageService
from .services.session_apps import AppProxyClient, SessionApps
from .services.session_callbacks import SessionCallbacks
from .services.session_files import SessionFiles
from .services.session_stream import SessionStreams
from .services.sessions import SessionService
from .services.settings import SettingsService
from .services.storage_proxy import StorageProxy
from .services.users import UserService

if TYPE_CHECKING:
    from redis.asyncio import Redis

KEYPAIR_USAGE_FLUSH_INTERVAL = 2.0  # seconds between batched num_queries/last_used writes


@dataclass
class ManagerState:
    ctx: ServiceContext
    engine: AsyncEngine
    rate_limiter: RateLimiter
    redis: Redis | None = None
    storage_transport: httpx.AsyncBaseTransport | None = None  # tests route the storage-proxy in-process
    auth: AuthService = field(init=False)
    session_callbacks: SessionCallbacks = field(init=False)
    users: UserService = field(init=False)
    keypairs: KeypairService = field(init=False)
    domains: DomainService = field(init=False)
    projects: ProjectService = field(init=False)
    policies: PolicyService = field(init=False)
    settings: SettingsService = field(init=False)
    agents: AgentRegistry = field(init=False)
    lifecycle: Lifecycle = field(init=False)
    agent_clients: AgentClientPool = field(init=False)
    agent_rpc: AgentRPC = field(init=False)
    dispatcher: Dispatcher = field(init=False)
    reconciler: ComputeReconciler = field(init=False)
    sessions: SessionService = field(init=False)
    compute_admin: ComputeAdmin = field(init=False)
    usage: ResourceUsageService = field(init=False)
    resource_summary: ResourceSummary = field(init=False)
    storage: StorageProxy = field(init=False)
    bgtasks: BackgroundTasks = field(init=False)
    apps: SessionApps = field(init=False)
    streams: SessionStreams = field(init=False)
    session_files: SessionFiles = field(init=False)
    folder_apps: FolderApps = field(init=False)
    folders: FolderService = field(init=False)
    folder_sharing: FolderSharing = field(init=False)
    folder_admin: FolderAdmin = field(init=False)
    model_store: ModelStore = field(init=False)
    serving: ServingService = field(init=False)
    serving_reconciler: ServingReconciler = field(init=False)
    serving_validator: ServiceValidator = field(init=False)

    def __post_init__(self) -> None:
        self.auth = AuthService(self.ctx, self.redis)
        self.users = UserService(self.ctx)
        self.keypairs = KeypairService(self.ctx)
        self.domains = DomainService(self.ctx)
        self.projects = ProjectService(self.ctx)
        self.policies = PolicyService(self.ctx)
        self.settings = SettingsService(self.ctx)
        self.agents = AgentRegistry(self.ctx)
        self.agent_clients = AgentClientPool(self.ctx.config.secrets.cluster)
        self.session_callbacks = SessionCallbacks()
        self.lifecycle = Lifecycle(self.ctx, on_session_outcome=self._session_outcome,
                                   callbacks=self.session_callbacks)
        self.agent_rpc = AgentRPC(self.ctx, self.lifecycle, self.agent_clients)
        self.dispatcher = Dispatcher(self.ctx, self.agent_rpc, self.lifecycle)
        self.reconciler = ComputeReconciler(self.ctx, self.agent_rpc, self.lifecycle, self.agents)
        self.bgtasks = BackgroundTasks(self.ctx)
        self.storage = StorageProxy(self.ctx.config, transport=self.storage_transport)
        self.folders = FolderService(self.ctx, self.storage, self.bgtasks)
        self.folder_sharing = FolderSharing(self.ctx)
        self.folder_admin = FolderAdmin(self.ctx, self.folders)
        self.sessions = SessionService(self.ctx, self.dispatcher, self.agent_rpc, FolderMounts(self.folders),
                                       self.session_callbacks)
        self.compute_admin = ComputeAdmin(self.ctx, self.agent_clients)
        self.usage = ResourceUsageService(self.ctx, self.sessions)
        self.resource_summary = ResourceSummary(self.ctx, self.sessions)
        self.session_files = SessionFiles(self.sessions, self.agent_rpc)
        self.apps = SessionApps(self.ctx, self.sessions, self.agent_rpc, AppProxyClient(self.ctx))
        self.folder_apps = FolderApps(self.ctx, self.sessions, self.apps)
        self.streams = SessionStreams(self.sessions, self.apps)
        definitions = ModelDefinitions(self.ctx, self.storage)
        self.model_store = ModelStore(self.ctx, self.folders, definitions)
        self.serving_reconciler = ServingReconciler(self.ctx, self.sessions, self.agent_rpc, definitions,
                                                    self.apps.proxy, ServingService.replica_limit)
        self.serving = ServingService(self.ctx, self.sessions, self.serving_reconciler, definitions)
        self.serving_validator = DryRun(self.ctx, self.sessions, self.agent_rpc, definitions)

    async def _session_outcome(self, session_id: uuid.UUID, reason: str) -> None:
        """The lifecycle decided a session's end while kernels of it still run: destroy them."""
        await self.agent_rpc.terminate_later(session_id, reason)

    def start_background(self) -> None:
        """The scheduler and the reconcilers (one set per manager process)."""
        self.dispatcher.start()
        self.reconciler.start()
        self.serving_reconciler.start()
        self._loops = [
            BackgroundLoop("keypair-usage", self.ctx.keypair_usage.flush, KEYPAIR_USAGE_FLUSH_INTERVAL),
            BackgroundLoop("system-session-reclaimer", self.folder_apps.reclaim_idle,
                           self.folder_apps.reclaim_interval),
        ]
        for loop in self._loops:
            loop.start()
        self._circuit_task = asyncio.create_task(self.apps.watch_terminations(), name="circuit-janitor")

    async def stop_background(self) -> None:
        await self.bgtasks.close()
        await self.dispatcher.stop()
        await self.reconciler.stop()
        await self.serving_reconciler.stop()
        await self.agent_rpc.close()
        await self.agent_clients.close()
        await self.session_callbacks.close()
        for loop in getattr(self, "_loops", ()):
            await loop.stop()
        task = getattr(self, "_circuit_task", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.ctx.keypair_usage.flush()
