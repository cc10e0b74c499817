"""First start (issue 2, item 3) and replicas starting together on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import stat
import sys

from sqlalchemy import func, select

from tests.support.databases import throwaway_db
from workbay.common.config import load_config
from workbay.manager.app import build_state, close_state
from workbay.manager.models import (
    Domain,
    Keypair,
    KeypairResourcePolicy,
    Project,
    ProjectResourcePolicy,
    ResourceGroup,
    User,
    UserResourcePolicy,
)
from workbay.manager.services import passwords


async def test_first_start_generates_the_admin_password(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBAY_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("WORKBAY_DEMO_PASSWORD", raising=False)
    async with throwaway_db("sqlite", tmp_path) as url:
        cfg = load_config(data_dir=tmp_path, db={"url": url})
        st = await build_state(cfg, demo=True)
        try:
            secret = tmp_path / "initial-admin-password"
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600
            password = secret.read_text().strip()
            assert passwords.password_problems(password) == []
            demo_pw = (tmp_path / "demo-password").read_text().strip()
            async with st.ctx.db() as s:
                admin = (await s.execute(select(User).where(User.email == "admin@workbay.local"))).scalar_one()
                assert admin.role == "superadmin" and passwords.verify_password(password, admin.password)
                demo = (await s.execute(select(User).where(User.email == "user@workbay.local"))).scalar_one()
                assert passwords.verify_password(demo_pw, demo.password)
                assert await s.get(Domain, "default") and await s.get(ResourceGroup, "default")
                for model in (KeypairResourcePolicy, UserResourcePolicy, ProjectResourcePolicy):
                    assert await s.get(model, "default")
                names = set((await s.execute(select(Project.name))).scalars())
                assert names == {"default", "model-store"}
        finally:
            await close_state(st)
        # a second start changes nothing and generates nothing
        secret.unlink()
        st = await build_state(cfg, demo=True)
        try:
            assert not secret.exists()
            async with st.ctx.db() as s:
                assert (await s.execute(select(func.count()).select_from(User))).scalar_one() == 3
        finally:
            await close_state(st)


REPLICA = """
import asyncio, sys
from workbay.common.config import load_config
from workbay.manager.app import build_state, close_state

async def main():
    st = await build_state(load_config(data_dir=sys.argv[2], db={"url": sys.argv[1]}))
    await close_state(st)

asyncio.run(main())
"""


async def test_replicas_starting_together_on_postgresql(tmp_path, monkeypatch):
    """Three manager processes migrate and bootstrap one fresh database at the same moment
    (replicas share secrets.database: it encrypts the secrets they all read)."""
    monkeypatch.setenv("WORKBAY_SECRETS__DATABASE", "replicas-share-this-database-secret")
    env = {**os.environ, "WORKBAY_ADMIN_PASSWORD": "Adm1n!pass-word"}
    async with throwaway_db("postgresql", tmp_path) as url:
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-c", REPLICA, url, str(tmp_path / f"r{i}"), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for i in range(3)]
        results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 120)
        for proc, (_, err) in zip(procs, results, strict=False):
            assert proc.returncode == 0, err.decode()[-2000:]
        cfg = load_config(data_dir=tmp_path / "check", db={"url": url})
        st = await build_state(cfg, migrate=False)
        try:
            async with st.ctx.db() as s:
                assert (await s.execute(select(func.count()).select_from(User))).scalar_one() == 1
                assert (await s.execute(select(func.count()).select_from(Keypair))).scalar_one() == 1
                assert (await s.execute(select(func.count()).select_from(Project))).scalar_one() == 2
                assert (await s.execute(select(func.count()).select_from(Domain))).scalar_one() == 1
        finally:
            await close_state(st)
