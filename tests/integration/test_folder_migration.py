"""Migration 0005 renames the folder tables (vfolders, vfolder_invitations, vfolder_shares →
folders, folder_invitations, folder_shares) and their vfolder_id columns (→ folder_id).  With rows
in every table, on SQLite and on PostgreSQL: upgrade from 0004 keeps every row, ends with exactly
the schema the models declare (names of constraints and indexes included) and keeps the foreign
keys working; downgrade gives the old tables back with the same rows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.databases import throwaway_db
from tests.support.manager import DATABASE_SECRET, start_manager
from workbay.common.secrets import SecretBox
from workbay.manager.models import Base, db

NEW = ("folders", "folder_invitations", "folder_shares")
OLD = ("vfolders", "vfolder_invitations", "vfolder_shares")
WHEN = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def tables(names: tuple[str, ...], fk: str) -> dict[str, sa.Table]:
    """Core views of the three tables (the Uuid type writes each dialect's own format)."""
    md = sa.MetaData()
    folders = sa.Table(names[0], md, sa.Column("id", sa.Uuid), sa.Column("name", sa.String),
                       sa.Column("host", sa.String), sa.Column("quota_scope_id", sa.String),
                       sa.Column("ownership_type", sa.String), sa.Column("user_id", sa.Uuid),
                       sa.Column("project_id", sa.Uuid), sa.Column("domain_name", sa.String),
                       sa.Column("creator", sa.String), sa.Column("usage_mode", sa.String),
                       sa.Column("permission", sa.String), sa.Column("cloneable", sa.Boolean),
                       sa.Column("status", sa.String), sa.Column("created_at", sa.DateTime(timezone=True)),
                       sa.Column("status_changed", sa.DateTime(timezone=True)),
                       sa.Column("last_used", sa.DateTime(timezone=True)))
    invitations = sa.Table(names[1], md, sa.Column("id", sa.Uuid), sa.Column(fk, sa.Uuid),
                           sa.Column("inviter", sa.String), sa.Column("invitee", sa.String),
                           sa.Column("permission", sa.String), sa.Column("state", sa.String),
                           sa.Column("created_at", sa.DateTime(timezone=True)),
                           sa.Column("modified_at", sa.DateTime(timezone=True)))
    shares = sa.Table(names[2], md, sa.Column(fk, sa.Uuid), sa.Column("user_id", sa.Uuid),
                      sa.Column("permission", sa.String))
    return {"folders": folders, "invitations": invitations, "shares": shares}


def rows(owner: uuid.UUID, member: uuid.UUID, project: uuid.UUID, fk: str) -> dict[str, list[dict[str, Any]]]:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    common = {"host": "local:volume1", "domain_name": "default", "creator": "admin@workbay.local",
              "created_at": WHEN, "status_changed": WHEN}
    return {
        "folders": [
            {**common, "id": mine, "name": "mine", "quota_scope_id": f"user:{owner}", "ownership_type": "user",
             "user_id": owner, "project_id": None, "usage_mode": "general", "permission": "wd",
             "cloneable": True, "status": "ready", "last_used": WHEN},
            {**common, "id": theirs, "name": "team", "quota_scope_id": f"project:{project}",
             "ownership_type": "project", "user_id": None, "project_id": project, "usage_mode": "model",
             "permission": "ro", "cloneable": False, "status": "delete-pending", "last_used": None},
        ],
        "invitations": [{"id": uuid.uuid4(), fk: mine, "inviter": "admin@workbay.local",
                         "invitee": "member@example.test", "permission": "ro", "state": "pending",
                         "created_at": WHEN, "modified_at": WHEN}],
        "shares": [{fk: mine, "user_id": member, "permission": "rw"},
                   {fk: theirs, "user_id": member, "permission": "ro"}],
    }


async def read(engine: AsyncEngine, views: dict[str, sa.Table], fk: str) -> dict[str, list[dict[str, Any]]]:
    out = {}
    async with engine.connect() as conn:
        for key, t in views.items():
            order = t.c.id if "id" in t.c else t.c[fk]
            out[key] = [dict(r._mapping) for r in (await conn.execute(sa.select(t).order_by(order, *t.c)))]
    return out


def sort(data: dict[str, list[dict[str, Any]]], fk: str) -> dict[str, list[dict[str, Any]]]:
    def key(r: dict[str, Any]) -> tuple[str, ...]:
        return (str(r.get("id", r.get(fk))), str(r.get("user_id")))
    return {k: sorted(v, key=key) for k, v in data.items()}


def renamed(data: dict[str, list[dict[str, Any]]], old: str, new: str) -> dict[str, list[dict[str, Any]]]:
    return {k: [{(new if c == old else c): v for c, v in r.items()} for r in rs] for k, rs in data.items()}


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def schema_diff(engine: AsyncEngine) -> list[Any]:
    """What separates the folder tables in the database from the models (nothing, when right)."""
    def diff(conn: sa.Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        found = compare_metadata(ctx, Base.metadata)
        mentioned = set(NEW + OLD)
        return [d for d in found if any(name in repr(d) for name in mentioned)]
    async with engine.connect() as conn:
        return await conn.run_sync(diff)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_folder_tables_renamed_with_rows(kind, tmp_path):
    box = SecretBox(DATABASE_SECRET)
    async with throwaway_db(kind, tmp_path) as url:
        h = await start_manager(url, tmp_path)  # head, bootstrapped: admin, domain, projects
        await h.close()
        await asyncio.to_thread(db.downgrade_sync, url, "0004", box)
        engine = db.make_engine(url)
        try:
            assert set(OLD) <= await table_names(engine) and not set(NEW) & await table_names(engine)
            async with engine.begin() as conn:
                admin = (await conn.execute(sa.text("SELECT uuid FROM users WHERE email = 'admin@workbay.local'"))
                         ).scalar_one()
                project = (await conn.execute(sa.text("SELECT id FROM projects WHERE name = 'default'"))
                           ).scalar_one()
            async with engine.begin() as conn:  # a second user to share with (any row will do)
                await conn.execute(sa.text(
                    "INSERT INTO users (uuid, email, username, password, need_password_change, full_name, "
                    "description, status, domain_name, role, resource_policy, totp_activated, "
                    "sudo_session_enabled, preferences, created_at, modified_at) "
                    "SELECT :member, 'member@example.test', 'member', password, need_password_change, '', '', "
                    "status, domain_name, 'user', resource_policy, totp_activated, sudo_session_enabled, "
                    "preferences, created_at, modified_at FROM users WHERE email = 'admin@workbay.local'"),
                    {"member": uuid.uuid4().hex if kind == "sqlite" else uuid.uuid4()})
                member = (await conn.execute(sa.text("SELECT uuid FROM users WHERE email = 'member@example.test'"))
                          ).scalar_one()
            as_uuid = (lambda v: v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)))
            data = rows(as_uuid(admin), as_uuid(member), as_uuid(project), "vfolder_id")
            old_views = tables(OLD, "vfolder_id")
            async with engine.begin() as conn:
                for key, t in old_views.items():
                    await conn.execute(t.insert(), data[key])
            before = sort(await read(engine, old_views, "vfolder_id"), "vfolder_id")
            assert len(before["folders"]) == 2 and len(before["shares"]) == 2
        finally:
            await engine.dispose()

        await asyncio.to_thread(db.upgrade_sync, url, "head", box)
        engine = db.make_engine(url)
        try:
            names = await table_names(engine)
            assert set(NEW) <= names and not set(OLD) & names
            after = sort(await read(engine, tables(NEW, "folder_id"), "folder_id"), "folder_id")
            assert after == renamed(before, "vfolder_id", "folder_id")
            assert await schema_diff(engine) == []
            # The foreign keys point at the new table: deleting a folder takes its shares and
            # invitations with it (ON DELETE CASCADE), and a share of no folder is refused.
            views = tables(NEW, "folder_id")
            mine = before["invitations"][0]["vfolder_id"]
            theirs = next(r["id"] for r in before["folders"] if r["id"] != mine)
            async with engine.begin() as conn:
                await conn.execute(views["folders"].delete().where(views["folders"].c.id == mine))
            left = await read(engine, views, "folder_id")
            assert [r["folder_id"] for r in left["shares"]] == [theirs]
            assert left["invitations"] == []
            with pytest.raises(sa.exc.IntegrityError):
                async with engine.begin() as conn:
                    await conn.execute(views["shares"].insert(), {"folder_id": uuid.uuid4(),
                                                                  "user_id": as_uuid(member), "permission": "ro"})
            async with engine.begin() as conn:  # back as it was, for the downgrade
                await conn.execute(views["folders"].insert(),
                                   [r for r in before["folders"] if r["id"] == mine])
                await conn.execute(views["invitations"].insert(), renamed(before, "vfolder_id", "folder_id")
                                   ["invitations"])
                await conn.execute(views["shares"].insert(), [r for r in renamed(before, "vfolder_id", "folder_id")
                                                              ["shares"] if r["folder_id"] == mine])
        finally:
            await engine.dispose()

        await asyncio.to_thread(db.downgrade_sync, url, "0004", box)
        engine = db.make_engine(url)
        try:
            names = await table_names(engine)
            assert set(OLD) <= names and not set(NEW) & names
            assert sort(await read(engine, old_views, "vfolder_id"), "vfolder_id") == before
        finally:
            await engine.dispose()

        h = await start_manager(url, tmp_path)  # and up again, as a manager starting does
        try:
            listed = {f["name"]: f for f in await h.admin().get("/folders", params={"all": "true"})}
            assert listed["mine"]["status"] == "ready" and listed["team"]["status"] == "delete-pending"
        finally:
            await h.close()
