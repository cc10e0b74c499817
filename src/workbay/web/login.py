"""Logging in through the webserver: lockout, the manager's /auth/authorize, a new session.

Both the ``/server/login`` API and the login page use ``LoginService.login``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx

from workbay.client.sdk import APIError

from .lockout import Lock, LockoutStore, account_key
from .manager import LOGIN_EPOCH_HEADER, ManagerGateway
from .sessions import LoginSession, SessionStore

log = logging.getLogger(__name__)
OTP_NOT_PROVIDED = "OTP not provided"


class Outcome(Enum):
    OK = "ok"
    FAILED = "failed"                  # wrong credentials, wrong OTP, inactive account
    OTP_REQUIRED = "otp-required"      # 2FA is on and no OTP was given
    LOCKED = "locked"                  # too many failures: refused even with the right password
    UNAVAILABLE = "unavailable"        # the manager did not answer


@dataclass
class LoginResult:
    outcome: Outcome
    session: LoginSession | None = None
    error: dict[str, Any] | None = None  # {type, title, details} of the manager's answer
    lock: Lock | None = None


def _manager_lock(err: APIError) -> Lock:
    data = err.data if isinstance(err.data, dict) else {}
    try:
        seconds = max(1, int(data.get("retry_after") or 60))
    except (TypeError, ValueError):
        seconds = 60
    return Lock(time.time() + seconds)


class LoginService:
    def __init__(self, gateway: ManagerGateway, sessions: SessionStore, lockout: LockoutStore) -> None:
        self.gateway, self.sessions, self.lockout = gateway, sessions, lockout

    async def login(self, username: str, password: str, otp: str | None = None,
                    client: str | None = None) -> LoginResult:
        """``client``: the browser's address, for the manager's per-client throttling."""
        account = account_key(username)
        lock = await self.lockout.current_lock(account)
        if lock is not None:
            return LoginResult(Outcome.LOCKED, lock=lock)
        body: dict[str, Any] = {"type": "keypair", "domain": None, "username": account,
                                "password": password}
        if otp:
            body["otp"] = otp.strip()
        try:
            headers = {"X-Forwarded-For": client} if client else None
            async with self.gateway.keyed_client(None, None, headers=headers) as api:
                data = (await api.post("/auth/authorize", json=body))["data"]
            epoch = str(data.get("login_epoch") or "")
            async with self.gateway.keyed_client(data["access_key"], data["secret_key"],
                                                 headers={LOGIN_EPOCH_HEADER: epoch} if epoch else None) as api:
                prefs = await api.get("/user/preferences")
        except APIError as err:
            error = {"type": err.type, "title": err.title, "details": err.message}
            if err.status == 401 and err.message == OTP_NOT_PROVIDED:
                return LoginResult(Outcome.OTP_REQUIRED, error=error)
            if err.status == 429:  # the manager's throttling (per account or per client address)
                return LoginResult(Outcome.LOCKED, error=error, lock=_manager_lock(err))
            if err.status in (400, 401, 403):
                lock = await self.lockout.register_failure(account)
                log.info("failed login for %s%s", account, " (now locked)" if lock else "")
                return LoginResult(Outcome.FAILED, error=error)
            raise
        except httpx.TransportError as err:
            log.warning("manager unreachable during login: %s", err)
            return LoginResult(Outcome.UNAVAILABLE)
        await self.lockout.reset(account)
        session = LoginSession.new(access_key=data["access_key"], secret_key=data["secret_key"],
                                   email=account, role=data["role"], status=data["status"],
                                   need_password_change=bool(data.get("need_password_change")),
                                   preferences=prefs, login_epoch=epoch)
        await self.sessions.save(session)
        log.info("login of %s (access key %s)", account, session.access_key)
        return LoginResult(Outcome.OK, session=session)

    async def logout(self, session: LoginSession | None) -> None:
        if session is not None:
            await self.sessions.delete(session.id)
