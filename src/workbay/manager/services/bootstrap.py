"""First start: the default domain, projects, resource group, policies and the superadmin."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from workbay.common.errors import AlreadyExists
from workbay.manager.models import (
    Domain,
    KeypairResourcePolicy,
    Project,
    ProjectResourcePolicy,
    ResourceGroup,
    SystemSetting,
    User,
    UserResourcePolicy,
)

from . import passwords
from .context import ServiceContext
from .policies import HOST_PERMISSIONS
from .users import NewUser, UserService

log = logging.getLogger(__name__)
STORAGE_HOSTS_APPLIED = "bootstrap.storage_hosts_applied"
ADMIN_EMAIL = "admin@workbay.local"
DEMO_EMAILS = ("user@workbay.local", "user2@workbay.local")


@dataclass
class BootstrapResult:
    admin_created: bool
    generated_admin_password: str | None = None
    generated_demo_password: str | None = None


def _write_secret_file(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)


async def bootstrap(ctx: ServiceContext, demo: bool = False, attempts: int = 5) -> BootstrapResult:
    """Idempotent.  Replicas starting together on one database race for the same rows: the
    loser's insert fails on a unique key, and its retry finds what the winner created."""
    for attempt in range(attempts):
        try:
            return await _bootstrap(ctx, demo)
        except (IntegrityError, AlreadyExists):
            if attempt == attempts - 1:
                raise
            log.info("bootstrap raced with another manager; retrying")
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


async def _bootstrap(ctx: ServiceContext, demo: bool) -> BootstrapResult:
    async with ctx.db.begin() as s:
        if await s.get(Domain, "default") is None:
            s.add(Domain(name="default", description="The default domain"))
        for model in (KeypairResourcePolicy, UserResourcePolicy, ProjectResourcePolicy):
            if await s.get(model, "default") is None:
                s.add(model(name="default"))
        if await s.get(ResourceGroup, "default") is None:
            s.add(ResourceGroup(name="default", description="The default resource group"))
        await s.flush()
        if await s.get(SystemSetting, STORAGE_HOSTS_APPLIED) is None:
            # Once, on a new (or pre-storage) database: the default keypair policy may use the
            # default storage host, so folders work out of the box.  Admins may change it later.
            kp_policy = await s.get(KeypairResourcePolicy, "default")
            if kp_policy is not None and not kp_policy.allowed_folder_hosts:
                kp_policy.allowed_folder_hosts = {ctx.config.storage.default_volume_host: sorted(HOST_PERMISSIONS)}
            s.add(SystemSetting(key=STORAGE_HOSTS_APPLIED, value=True))
        for name, ptype in (("default", "general"), ("model-store", "model-store")):
            exists = (await s.execute(select(Project.id).where(
                Project.domain_name == "default", Project.name == name))).first()
            if not exists:
                s.add(Project(name=name, domain_name="default", type=ptype, resource_policy="default",
                              description=f"The {name} project"))
    result = BootstrapResult(admin_created=False)
    users = UserService(ctx)
    async with ctx.db() as s:
        has_admin = (await s.execute(select(User.uuid).where(User.email == ADMIN_EMAIL))).first()
    if not has_admin:
        password = os.environ.get("WORKBAY_ADMIN_PASSWORD") or ""
        generated = not password
        if generated:
            password = passwords.generate_password()
        await users.create_user_unchecked(NewUser(
            email=ADMIN_EMAIL, username="admin", password=password, full_name="Administrator",
            role="superadmin", description="Superadmin created at first start"),
            join_default_project=True)
        if generated:  # only the replica that created the account writes its password
            result.generated_admin_password = password
            _write_secret_file(ctx.config.data_dir / "initial-admin-password", password)
        result.admin_created = True
        log.info("created the superadmin %s", ADMIN_EMAIL)
    if demo:
        async with ctx.db() as s:
            missing = [e for e in DEMO_EMAILS
                       if not (await s.execute(select(User.uuid).where(User.email == e))).first()]
        if missing:
            password = os.environ.get("WORKBAY_DEMO_PASSWORD") or ""
            generated = not password
            if generated:
                password = passwords.generate_password()
            for email in missing:
                await users.create_user_unchecked(NewUser(
                    email=email, username=email.split("@")[0], password=password,
                    full_name=email.split("@")[0].capitalize()), join_default_project=True)
            if generated:
                result.generated_demo_password = password
                _write_secret_file(ctx.config.data_dir / "demo-password", password)
    return result
