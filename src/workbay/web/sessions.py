"""Login sessions: in memory (lite) or in Redis (a cluster of webservers), expiring after
``login_session_ttl`` seconds of inactivity."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..common.secrets import SecretBox, SecretDecryptionError

REDIS_PREFIX = "workbay:web:"


@dataclass
class LoginSession:
    id: str
    access_key: str
    secret_key: str
    email: str
    role: str
    status: str
    csrf_token: str
    created_at: float
    need_password_change: bool = False
    # names the password this login was made with (the manager's login epoch): sent with every
    # request, so a changed password ends the login (issue 10, finding 12)
    login_epoch: str = ""
    # cached preferences (the manager is the source of truth): language, theme, project, …
    preferences: dict[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.role in ("superadmin", "admin")

    @property
    def is_superadmin(self) -> bool:
        return self.role == "superadmin"

    @classmethod
    def new(cls, *, access_key: str, secret_key: str, email: str, role: str, status: str,
            need_password_change: bool = False, preferences: dict[str, Any] | None = None,
            login_epoch: str = "") -> LoginSession:
        return cls(id=secrets.token_urlsafe(32), access_key=access_key, secret_key=secret_key,
                   email=email, role=role, status=status, csrf_token=secrets.token_urlsafe(32),
                   created_at=time.time(), need_password_change=need_password_change,
                   login_epoch=login_epoch, preferences=dict(preferences or {}))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> LoginSession:
        data = json.loads(raw)
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


class SessionStore(Protocol):
    async def save(self, session: LoginSession) -> None: ...
    async def get(self, session_id: str) -> LoginSession | None: ...
    async def delete(self, session_id: str) -> None: ...
    async def close(self) -> None: ...


class MemorySessionStore:
    def __init__(self, ttl: int, clock=time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._items: dict[str, tuple[LoginSession, float]] = {}

    def _prune(self) -> None:
        now = self.clock()
        for key in [k for k, (_, exp) in self._items.items() if exp <= now]:
            del self._items[key]

    async def save(self, session: LoginSession) -> None:
        self._prune()
        self._items[session.id] = (session, self.clock() + self.ttl)

    async def get(self, session_id: str) -> LoginSession | None:
        found = self._items.get(session_id)
        if found is None:
            return None
        session, expires = found
        if expires <= self.clock():
            del self._items[session_id]
            return None
        self._items[session_id] = (session, self.clock() + self.ttl)  # sliding expiry
        return session

    async def delete(self, session_id: str) -> None:
        self._items.pop(session_id, None)

    async def close(self) -> None:
        self._items.clear()


class RedisSessionStore:
    """Login sessions hold the user's secret key: in Redis (shared by webservers, often by more)
    they are sealed with the webservers' ``secrets.session``, bound to the session id, so a reader
    of Redis learns no keypair and cannot move one session's value under another id."""

    def __init__(self, redis, ttl: int, box: SecretBox) -> None:
        self.redis = redis
        self.ttl = ttl
        self.box = box

    @staticmethod
    def _key(session_id: str) -> str:
        return f"{REDIS_PREFIX}session:{session_id}"

    async def save(self, session: LoginSession) -> None:
        sealed = self.box.encrypt(session.to_json(), f"login-session:{session.id}")
        await self.redis.set(self._key(session.id), sealed, ex=self.ttl)

    async def get(self, session_id: str) -> LoginSession | None:
        raw = await self.redis.getex(self._key(session_id), ex=self.ttl)
        if not raw:
            return None
        try:
            return LoginSession.from_json(self.box.decrypt(raw, f"login-session:{session_id}"))
        except SecretDecryptionError:
            # sealed with another secret (or written before sessions were sealed): not a login
            await self.delete(session_id)
            return None

    async def delete(self, session_id: str) -> None:
        await self.redis.delete(self._key(session_id))

    async def close(self) -> None:
        pass
