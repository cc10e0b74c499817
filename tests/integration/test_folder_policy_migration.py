"""Migration 0006 renames the policy columns that carried Backend.AI's names (allowed_vfolder_hosts of
domains, projects and keypair resource policies → allowed_folder_hosts; max_vfolder_count of user and
project resource policies → max_folder_count) and the key ``vfolder_id`` → ``folder_id`` in each
stored session mount.  With rows in every table, on SQLite and on PostgreSQL: downgrade gives the
old names with the same values, upgrade brings back exactly what was there and the schema the models
declare, and a manager started on it reads the limits and sees which live session mounts a folder.
A mount naming its folder under both keys stops the upgrade, naming the session."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.databases import throwaway_db
from tests.support.manager import DATABASE_SECRET, start_manager
from workbay.client.sdk import APIError
from workbay.common.secrets import SecretBox
from workbay.manager.models import Base, ComputeSession, db

# table → (its key column, Backend.AI's column name, Workbay's, the column's type)
COLUMNS: dict[str, tuple[str, str, str, sa.types.TypeEngine[Any]]] = {
    "domains": ("name", "allowed_vfolder_hosts", "allowed_folder_hosts", sa.JSON()),
    "projects": ("name", "allowed_vfolder_hosts", "allowed_folder_hosts", sa.JSON()),
    "keypair_resource_policies": ("name", "allowed_vfolder_hosts", "allowed_folder_hosts", sa.JSON()),
    "user_resource_policies": ("name", "max_vfolder_count", "max_folder_count", sa.Integer()),
    "project_resource_policies": ("name", "max_vfolder_count", "max_folder_count", sa.Integer()),
}
OLD, NEW = 1, 2
SESSIONS = sa.table("sessions", sa.column("id", sa.Uuid()), sa.column("name", sa.String()),
                    sa.column("mounts", sa.JSON()))
DOMAIN_HOSTS = {"local:volume1": ["download-file", "mount-in-session"]}
PROJECT_HOSTS = {"nfs:shared": ["upload-file"]}
KEYPAIR_HOSTS = {"local:volume1": ["create-vfolder", "mount-in-session"]}


async def policy_values(engine: AsyncEngine, which: int) -> dict[str, dict[str, Any]]:
    """{table: {key: value of the renamed column}}, read under the old (OLD) or new (NEW) name."""
    out: dict[str, dict[str, Any]] = {}
    async with engine.connect() as conn:
        for table, spec in COLUMNS.items():
            t = sa.table(table, sa.column(spec[0], sa.String()), sa.column(spec[which], spec[3]))
            found = await conn.execute(sa.select(t.c[spec[0]], t.c[spec[which]]))
            out[table] = {key: value for key, value in found.all()}
    return out


async def mounts(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {name: m for name, m in (await conn.execute(sa.select(SESSIONS.c.name, SESSIONS.c.mounts))).all()}


async def columns(engine: AsyncEngine) -> dict[str, set[str]]:
    def read(conn: sa.Connection) -> dict[str, set[str]]:
        inspector = sa.inspect(conn)
        return {table: {c["name"] for c in inspector.get_columns(table)} for table in COLUMNS}
    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def schema_diff(engine: AsyncEngine) -> list[Any]:
    """What separates the renamed columns in the database from the models (nothing, when right)."""
    names = {n for spec in COLUMNS.values() for n in spec[1:3]}

    def diff(conn: sa.Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(ctx, Base.metadata) if any(n in repr(d) for n in names)]
    async with engine.connect() as conn:
        return await conn.run_sync(diff)


def rekeyed(found: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {name: [{(new if k == old else k): v for k, v in m.items()} for m in ms] for name, ms in found.items()}


async def at(url: str, box: SecretBox, revision: str, up: bool) -> AsyncEngine:
    await asyncio.to_thread(db.upgrade_sync if up else db.downgrade_sync, url, revision, box)
    return db.make_engine(url)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_policy_columns_and_mount_keys_renamed_with_rows(kind, tmp_path):
    box = SecretBox(DATABASE_SECRET)
    async with throwaway_db(kind, tmp_path) as url:
        h = await start_manager(url, tmp_path)  # head, bootstrapped: admin, domain, projects, policies
        try:
            admin = h.admin()
            await admin.post("/admin/resource-policies/keypair", json={"name": "gold",
                                                                       "allowed_folder_hosts": KEYPAIR_HOSTS})
            await admin.post("/admin/resource-policies/user", json={"name": "silver", "max_folder_count": 5})
            await admin.post("/admin/resource-policies/project", json={"name": "team", "max_folder_count": 7})
            await admin.patch("/admin/domains/default", json={"allowed_folder_hosts": DOMAIN_HOSTS})
            project = next(p for p in (await admin.get("/admin/projects", params={"domain": "default"}))["items"]
                           if p["name"] == "default")
            await admin.patch(f"/admin/projects/{project['id']}", json={"allowed_folder_hosts": PROJECT_HOSTS})
            folder = await admin.post("/folders", json={"name": "data"})
            me = await admin.get("/admin/users/admin@workbay.local")
            mount = {"folder_id": str(uuid.UUID(folder["id"])), "name": "data", "host": "local:volume1",
                     "source": "/x", "target": "/home/work/data", "permission": "rw", "read_only": False}
            async with h.state.ctx.db.begin() as s:
                for name, status, ms in (("live", "RUNNING", [mount]), ("bare", "TERMINATED", [])):
                    s.add(ComputeSession(name=name, access_key=h.admin_access_key, user_id=uuid.UUID(me["uuid"]),
                                         project_id=uuid.UUID(project["id"]), domain_name="default",
                                         resource_group="default", image="x", status=status, mounts=ms))
        finally:
            await h.close()

        engine = db.make_engine(url)
        try:
            new = await policy_values(engine, NEW)
            assert new["domains"]["default"] == DOMAIN_HOSTS and new["projects"]["default"] == PROJECT_HOSTS
            assert new["keypair_resource_policies"]["gold"] == KEYPAIR_HOSTS
            assert new["user_resource_policies"]["silver"] == 5 and new["project_resource_policies"]["team"] == 7
            new_mounts = await mounts(engine)
            assert new_mounts == {"live": [mount], "bare": []}
        finally:
            await engine.dispose()

        engine = await at(url, box, "0005", up=False)
        try:
            for table, names in (await columns(engine)).items():
                assert COLUMNS[table][OLD] in names and COLUMNS[table][NEW] not in names, table
            assert await policy_values(engine, OLD) == new
            assert await mounts(engine) == rekeyed(new_mounts, "folder_id", "vfolder_id")
        finally:
            await engine.dispose()

        engine = await at(url, box, "head", up=True)
        try:
            for table, names in (await columns(engine)).items():
                assert COLUMNS[table][NEW] in names and COLUMNS[table][OLD] not in names, table
            assert await policy_values(engine, NEW) == new
            assert await mounts(engine) == new_mounts
            assert await schema_diff(engine) == []
        finally:
            await engine.dispose()

        h = await start_manager(url, tmp_path)
        try:
            admin = h.admin()
            assert (await admin.get("/admin/resource-policies/user/silver"))["max_folder_count"] == 5
            assert (await admin.get("/admin/domains/default"))["allowed_folder_hosts"] == DOMAIN_HOSTS
            # the rewritten mount still tells that a live session uses the folder
            with pytest.raises(APIError) as e:
                await admin.delete("/folders/data")
            assert e.value.status == 409 and "live" in e.value.message
        finally:
            await h.close()

        # A mount with both keys: which one names the folder is unknown, so the upgrade stops.
        engine = await at(url, box, "0005", up=False)
        try:
            async with engine.begin() as conn:
                await conn.execute(SESSIONS.update().where(SESSIONS.c.name == "bare").values(
                    mounts=[{"vfolder_id": "a", "folder_id": "b", "name": "x"}]))
        finally:
            await engine.dispose()
        with pytest.raises(RuntimeError, match="both 'vfolder_id' and 'folder_id'"):
            await asyncio.to_thread(db.upgrade_sync, url, "head", box)
        engine = db.make_engine(url)
        try:  # nothing changed: still at 0005's names
            for table, names in (await columns(engine)).items():
                assert COLUMNS[table][OLD] in names, table
        finally:
            await engine.dispose()
