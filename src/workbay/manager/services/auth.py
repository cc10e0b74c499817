"""Authentication and the caller's own account (ID-2…ID-8, ID-13)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyotp
import segno
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.errors import (
    AuthFailed,
    GenericBadRequest,
    GenericForbidden,
    InvalidAPIParameters,
    ObjectNotFound,
)
from workbay.common.forwarded import client_ip, networks
from workbay.common.http import validation_error
from workbay.common.lockout import LoginThrottle, UsedSteps, lock_error
from workbay.common.text import TEXT_REFUSED, first_refused
from workbay.manager.models import Domain, Keypair, Project, ProjectMember, User

from . import keys, passwords
from .access import Actor
from .context import ServiceContext
from .serialize import user_out
from .settings import SettingsService

if TYPE_CHECKING:
    from redis.asyncio import Redis

PREFERENCE_KEYS = {"theme": ("light", "dark"), "language": ("en", "ko")}
PREFERENCE_DEFAULTS: dict[str, Any] = {"theme": None, "language": None, "project": None,
                                       "compact_sidebar": False, "preferred_ssh_port": None}


@dataclass(frozen=True)
class Roles:
    """The caller's roles: overall, in their domain, and in one project (when asked about one)."""

    global_role: str
    domain_role: str
    project_role: str | None = None


OTP_NOT_PROVIDED = "OTP not provided"
OTP_ALREADY_USED = "OTP already used"
LOGIN_EPOCH_HEADER = "X-Workbay-Login-Epoch"
LOGIN_REVOKED_HEADER = "X-Workbay-Login-Revoked"


def login_epoch(password_hash: str | None) -> str:
    """Names the user's current password without revealing anything about it: the webserver keeps
    it with each login and sends it back; a changed password (a new salted hash) ends the logins
    made before (issue 10, finding 12)."""
    digest = hashlib.sha256(b"workbay-login-epoch:" + (password_hash or "").encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def otp_step(key: str, otp: str, now: float | None = None) -> int | None:
    """The time-step (of now-1, now, now+1) whose code ``otp`` is, or None."""
    totp = pyotp.TOTP(key)
    current = totp.timecode(datetime.fromtimestamp(now if now is not None else time.time()))
    code = otp.strip()
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


class AuthService:
    def __init__(self, ctx: ServiceContext, redis: Redis | None = None) -> None:
        self.ctx = ctx
        cfg = ctx.config.manager
        # Failed logins per account and per client address (in Redis in a cluster, shared by
        # every manager replica), and the last TOTP step used per user.
        self.throttle = LoginThrottle.create(redis, attempts=cfg.lockout_attempts,
                                             client_attempts=cfg.lockout_client_attempts,
                                             seconds=cfg.lockout_seconds)
        self.used_steps = UsedSteps(redis)
        self._trusted = networks(cfg.trusted_proxies)

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str | None:
        return client_ip(peer, forwarded_for, self._trusted)

    # -- request authentication -------------------------------------------------------------
    async def resolve_access_key(self, access_key: str) -> tuple[Keypair, User] | None:
        async with self.ctx.db() as s:
            row = (await s.execute(
                select(Keypair, User).join(User, User.uuid == Keypair.user_id)
                .where(Keypair.access_key == access_key, Keypair.is_active.is_(True))
            )).first()
        return (row[0], row[1]) if row else None

    async def touch_keypair(self, access_key: str) -> None:
        """Count the request and remember when the keypair was last used (written in batches)."""
        self.ctx.keypair_usage.record(access_key)

    # -- login --------------------------------------------------------------------------------
    async def authorize(self, domain: str, email: str, password: str,
                        otp: str | None, client: str | None = None) -> dict[str, Any]:
        """Check a login; failures are counted per account and per client address, and while
        either is locked every attempt is refused (429), the right password included."""
        lock = await self.throttle.current_lock(email, client)
        if lock is not None:
            raise lock_error(lock)
        try:
            data = await self._authorize(domain, email, password, otp)
        except AuthFailed as err:
            if err.msg != OTP_NOT_PROVIDED:  # the first step of a 2FA login is no failure
                await self.throttle.register_failure(email, client)
            raise
        await self.throttle.succeeded(email)
        return data

    async def _authorize(self, domain: str, email: str, password: str,
                         otp: str | None) -> dict[str, Any]:
        async with self.ctx.db() as s:
            user = (await s.execute(select(User).where(User.email == email))).scalar_one_or_none()
            # An unknown e-mail costs one bcrypt check too, so timing does not tell it apart.
            hashed = user.password if user is not None else passwords.DUMMY_HASH
            if not await passwords.verify_password_async(password, hashed) or user is None:
                raise AuthFailed("User credential mismatch.", title="User credential mismatch.")
            if domain and domain != user.domain_name:
                raise AuthFailed("User credential mismatch.", title="User credential mismatch.")
            if user.status != "active":
                raise AuthFailed(f"The account is {user.status}.", title="User credential mismatch.")
            user_domain = await s.get(Domain, user.domain_name)
            if user_domain is None or not user_domain.is_active:
                raise AuthFailed("The account's domain is inactive.", title="User credential mismatch.")
            if user.totp_activated:
                if not otp:
                    raise AuthFailed(OTP_NOT_PROVIDED, title=OTP_NOT_PROVIDED)
                if user.totp_key is None:  # activated without a key: no code can be right
                    raise AuthFailed("Invalid OTP", title="Invalid OTP")
                step = otp_step(user.totp_key, otp)
                if step is None:
                    raise AuthFailed("Invalid OTP", title="Invalid OTP")
                # A code is good for one login: the step must be after the last one accepted.
                if not await self.used_steps.claim(str(user.uuid), step):
                    raise AuthFailed(OTP_ALREADY_USED, title="Invalid OTP")
            kp = (await s.execute(
                select(Keypair).where(Keypair.user_id == user.uuid, Keypair.is_active.is_(True))
                .order_by(Keypair.is_default.desc(), Keypair.created_at)
            )).scalars().first()
        if kp is None:
            raise AuthFailed("The user has no active keypair.", title="User credential mismatch.")
        return {"access_key": kp.access_key, "secret_key": kp.secret_key, "role": user.role,
                "status": user.status, "need_password_change": user.need_password_change,
                "login_epoch": login_epoch(user.password)}

    async def current_login_epoch(self, user_id: uuid.UUID) -> str:
        async with self.ctx.db() as s:
            user = await s.get(User, user_id)
            return login_epoch(user.password if user is not None else None)

    async def signup(self, domain: str, email: str, password: str, username: str | None,
                     full_name: str, description: str, invitation_token: str | None) -> dict[str, Any]:
        settings = await SettingsService(self.ctx).current()
        if not settings.signup_enabled:
            raise GenericForbidden("Sign-up is disabled.")
        token = settings.signup_invitation_token
        if token and not hmac.compare_digest(token, invitation_token or ""):
            raise GenericForbidden("A valid invitation token is required to sign up.")
        from .users import NewUser, UserService  # users imports auth-free helpers only

        try:
            # Backend.AI: the user name defaults to the e-mail address (unique already).
            new = NewUser(email=email, username=username or email, password=password,
                          full_name=full_name, description=description,
                          domain_name=domain or "default")
        except ValidationError as e:
            raise validation_error(list(e.errors())) from e
        created = await UserService(self.ctx).create_user_unchecked(new, join_default_project=True)
        kp = created.keypair
        if kp is None or kp.secret_key is None:  # create_user_unchecked always gives the new keypair
            raise RuntimeError("sign-up created a user without a keypair")
        return {"access_key": kp.access_key, "secret_key": kp.secret_key}

    # -- own account ---------------------------------------------------------------------------
    async def _load_user(self, s: AsyncSession, actor: Actor) -> User:
        user = await s.get(User, actor.user_id)
        if user is None:
            raise AuthFailed("Unauthorized access", title="Unauthorized access")
        return user

    async def me(self, actor: Actor) -> dict[str, Any]:
        async with self.ctx.db() as s:
            user = await self._load_user(s, actor)
            projects = (await s.execute(
                select(Project).join(ProjectMember, ProjectMember.project_id == Project.id)
                .where(ProjectMember.user_id == user.uuid).order_by(Project.name)
            )).scalars().all()
            kp = await s.get(Keypair, actor.access_key)
        if kp is None:
            raise AuthFailed("Unauthorized access", title="Unauthorized access")
        out = user_out(user, list(projects))
        out["keypair"] = {"access_key": kp.access_key, "secret_key": kp.secret_key,
                          "rate_limit": kp.rate_limit, "resource_policy": kp.resource_policy}
        out["preferences"] = {**PREFERENCE_DEFAULTS, **(user.preferences or {})}
        return out

    async def update_password(self, actor: Actor, old: str, new: str, new2: str) -> str:
        """Backend.AI's order: the old password first (401), then the repetition (400 with a
        top-level ``error_msg``), then the rules (ID-4).  Returns the new login epoch: logins
        made with the old password end, the caller's own is carried over by the webserver.
        A wrong old password counts as a failed login of the account (it is a password guess
        too), and a locked account cannot change its password either."""
        lock = await self.throttle.current_lock(actor.email, None)
        if lock is not None:
            raise lock_error(lock)
        async with self.ctx.db.begin() as s:
            user = await self._load_user(s, actor)
            if not await passwords.verify_password_async(old, user.password):
                await self.throttle.register_failure(actor.email, None)
                raise AuthFailed("Old password mismatch", title="Old password mismatch")
            if new != new2:
                raise GenericBadRequest("new password mismatch",
                                        extra={"error_msg": "new password mismatch"})
            problems = passwords.password_problems(new)
            if problems:
                msg = passwords.describe_problems(problems)
                raise InvalidAPIParameters(msg, data={"new_password": msg}, extra={"error_msg": msg})
            user.password = await passwords.hash_password_async(new)
            user.need_password_change = False
            user.password_changed_at = datetime.now(UTC)
            return login_epoch(user.password)

    async def update_full_name(self, actor: Actor, full_name: str) -> None:
        if len(full_name) > 64:
            raise InvalidAPIParameters("Full name must be at most 64 characters.",
                                       data={"full_name": "at most 64 characters"})
        bad = first_refused(full_name, TEXT_REFUSED, allow="\t")
        if bad:
            raise InvalidAPIParameters(f"Full name must not contain {bad}.", data={"full_name": f"contains {bad}"})
        async with self.ctx.db.begin() as s:
            (await self._load_user(s, actor)).full_name = full_name

    async def get_ssh_public_key(self, actor: Actor) -> str | None:
        async with self.ctx.db() as s:
            kp = await s.get(Keypair, actor.access_key)
            return kp.ssh_public_key if kp else None

    async def set_ssh_keypair(self, actor: Actor, public: str | None = None,
                              private: str | None = None) -> dict[str, str]:
        if public is None:
            public, private = keys.generate_ssh_keypair(comment=actor.email)
        elif private is None:
            raise InvalidAPIParameters("A public key needs its private key.", data={"privkey": "required"})
        else:
            try:
                keys.validate_ssh_keypair(public, private)
            except ValueError as e:
                raise InvalidAPIParameters(str(e)) from e
        async with self.ctx.db.begin() as s:
            kp = await s.get(Keypair, actor.access_key)
            if kp is None:
                raise AuthFailed("Unauthorized access", title="Unauthorized access")
            kp.ssh_public_key, kp.ssh_private_key = public.strip(), private
        return {"ssh_public_key": public.strip(), "ssh_private_key": private}

    async def role(self, actor: Actor, project_id: uuid.UUID | None) -> Roles:
        domain_role = "admin" if actor.is_admin else "user"
        global_role = "superadmin" if actor.is_superadmin else (actor.role if actor.role != "admin" else "user")
        project_role = None
        if project_id is not None:
            async with self.ctx.db() as s:
                member = await s.get(ProjectMember, (project_id, actor.user_id))
            if member is None:
                raise ObjectNotFound("You are not a member of this project.", object_name="project")
            project_role = "admin" if actor.is_admin else "user"
        return Roles(global_role=global_role, domain_role=domain_role, project_role=project_role)

    # -- two-factor authentication (ID-7) ------------------------------------------------------
    async def totp_status(self, actor: Actor) -> dict[str, Any]:
        async with self.ctx.db() as s:
            return {"enabled": (await self._load_user(s, actor)).totp_activated}

    async def totp_register(self, actor: Actor) -> dict[str, Any]:
        secret = pyotp.random_base32()
        async with self.ctx.db.begin() as s:
            user = await self._load_user(s, actor)
            if user.totp_activated:
                raise GenericBadRequest("Two-factor authentication is already enabled.")
            user.totp_key = secret
        uri = pyotp.TOTP(secret).provisioning_uri(name=actor.email, issuer_name="Workbay")
        qr_svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff")
        return {"secret": secret, "uri": uri, "qr_svg": qr_svg}

    async def totp_confirm(self, actor: Actor, otp: str) -> dict[str, Any]:
        async with self.ctx.db.begin() as s:
            user = await self._load_user(s, actor)
            if not user.totp_key:
                raise GenericBadRequest("Register two-factor authentication first.")
            if user.totp_activated:
                raise GenericBadRequest("Two-factor authentication is already enabled.")
            if not pyotp.TOTP(user.totp_key).verify(otp, valid_window=1):
                raise InvalidAPIParameters("Invalid OTP", data={"otp": "Invalid OTP"})
            user.totp_activated = True
            user.totp_activated_at = datetime.now(UTC)
        return {"enabled": True}

    async def totp_disable(self, actor: Actor, otp: str) -> dict[str, Any]:
        async with self.ctx.db.begin() as s:
            user = await self._load_user(s, actor)
            if not user.totp_activated or user.totp_key is None:
                raise GenericBadRequest("Two-factor authentication is not enabled.")
            if not pyotp.TOTP(user.totp_key).verify(otp, valid_window=1):
                raise InvalidAPIParameters("Invalid OTP", data={"otp": "Invalid OTP"})
            user.totp_activated, user.totp_key, user.totp_activated_at = False, None, None
        return {"enabled": False}

    # -- preferences (theme, language, current project) ----------------------------------------
    async def preferences(self, actor: Actor) -> dict[str, Any]:
        async with self.ctx.db() as s:
            return {**PREFERENCE_DEFAULTS, **((await self._load_user(s, actor)).preferences or {})}

    async def update_preferences(self, actor: Actor, patch: dict[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for key, value in patch.items():
            if key in PREFERENCE_KEYS:
                if value is not None and value not in PREFERENCE_KEYS[key]:
                    raise InvalidAPIParameters(f"{key} must be one of {', '.join(PREFERENCE_KEYS[key])}",
                                               data={key: "invalid value"})
            elif key == "compact_sidebar":
                if not isinstance(value, bool):
                    raise InvalidAPIParameters("compact_sidebar must be a boolean",
                                               data={key: "must be a boolean"})
            elif key == "preferred_ssh_port":  # AP-4: tried first for the session's SSH/SFTP app
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                          or not 1024 <= value <= 65535):
                    raise InvalidAPIParameters("preferred_ssh_port must be a port number 1024–65535 (or null)",
                                               data={key: "invalid port"})
            elif key == "project":
                if value is not None:
                    try:
                        pid = uuid.UUID(str(value))
                    except ValueError as e:
                        raise InvalidAPIParameters("project must be a project id",
                                                   data={key: "invalid id"}) from e
                    async with self.ctx.db() as s:
                        if await s.get(ProjectMember, (pid, actor.user_id)) is None:
                            raise InvalidAPIParameters("You are not a member of this project.",
                                                       data={key: "not a member"})
                    value = str(pid)
            else:
                raise InvalidAPIParameters(f"Unknown preference: {key}", data={key: "unknown"})
            clean[key] = value
        async with self.ctx.db.begin() as s:
            user = await self._load_user(s, actor)
            user.preferences = {**(user.preferences or {}), **clean}
            return {**PREFERENCE_DEFAULTS, **user.preferences}
