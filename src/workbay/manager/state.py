"""The manager's process-wide state, built once at startup."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from workbay.common.ratelimit import RateLimiter

from .services.auth import AuthService
from .services.context import ServiceContext
from .services.domains import DomainService
from .services.keypairs import KeypairService
from .services.policies import PolicyService
from .services.projects import ProjectService
from .services.settings import SettingsService
from .services.users import UserService


@dataclass
class ManagerState:
    ctx: ServiceContext
    engine: AsyncEngine
    rate_limiter: RateLimiter
    redis: object | None = None
    auth: AuthService = field(init=False)
    users: UserService = field(init=False)
    keypairs: KeypairService = field(init=False)
    domains: DomainService = field(init=False)
    projects: ProjectService = field(init=False)
    policies: PolicyService = field(init=False)
    settings: SettingsService = field(init=False)

    def __post_init__(self) -> None:
        self.auth = AuthService(self.ctx)
        self.users = UserService(self.ctx)
        self.keypairs = KeypairService(self.ctx)
        self.domains = DomainService(self.ctx)
        self.projects = ProjectService(self.ctx)
        self.policies = PolicyService(self.ctx)
        self.settings = SettingsService(self.ctx)
