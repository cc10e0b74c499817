"""The webserver's process-wide state, built once in ``create_app``."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from workbay.common.config import WorkbayConfig
from workbay.common.forwarded import Network, networks
from workbay.common.secrets import SecretBox

from .cookies import CookieSigner
from .i18n import Translator, load_translators
from .lockout import LockoutStore, MemoryLockout, RedisLockout
from .login import LoginService
from .manager import ManagerGateway
from .rendering import Renderer
from .sessions import MemorySessionStore, RedisSessionStore, SessionStore

log = logging.getLogger(__name__)


@dataclass
class WebState:
    config: WorkbayConfig
    gateway: ManagerGateway
    sessions: SessionStore
    lockout: LockoutStore
    signer: CookieSigner
    translators: dict[str, Translator]
    renderer: Renderer
    redis: Any | None = None
    trusted_proxies: list[Network] = field(default_factory=list)  # webserver.trusted_proxies
    logins: LoginService = field(init=False)
    started: bool = False

    def __post_init__(self) -> None:
        self.logins = LoginService(self.gateway, self.sessions, self.lockout)

    async def close(self) -> None:
        await self.gateway.close()
        await self.sessions.close()
        if self.redis is not None:
            await self.redis.aclose()


def build_state(config: WorkbayConfig, manager_transport: httpx.AsyncBaseTransport | None = None
                ) -> WebState:
    web = config.webserver
    secret = config.secrets.session
    if not secret:
        secret = secrets.token_urlsafe(32)
        if config.redis.url:
            log.warning("secrets.session is empty: cookies will not be valid on other webservers")
    redis = None
    if config.redis.url:
        import redis.asyncio as aioredis

        redis = aioredis.from_url(config.redis.url, decode_responses=True)
        sessions: SessionStore = RedisSessionStore(redis, web.login_session_ttl, SecretBox(secret))
        lockout: LockoutStore = RedisLockout(redis, web.lockout_attempts, web.lockout_seconds)
    else:
        sessions = MemorySessionStore(web.login_session_ttl)
        lockout = MemoryLockout(web.lockout_attempts, web.lockout_seconds)
    return WebState(config=config, gateway=ManagerGateway(web.manager_url, manager_transport),
                    sessions=sessions, lockout=lockout, signer=CookieSigner(secret),
                    translators=load_translators(), renderer=Renderer(), redis=redis,
                    trusted_proxies=networks(web.trusted_proxies))
