"""folder names in policies and mounts: allowed_vfolder_hosts becomes allowed_folder_hosts (domains,
projects, keypair resource policies), max_vfolder_count becomes max_folder_count (user and project
resource policies), and each stored session mount names its folder ``folder_id`` (was ``vfolder_id``)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 23:30:00

Backend.AI's names stay on its wire (GraphQL fields, REST bodies), which ``manager/api/`` converts.
The columns carry no constraint or index, so ``ALTER TABLE … RENAME COLUMN`` (SQLite 3.25+ and
PostgreSQL) renames them in place with their data.  ``sessions.mounts`` is a JSON list of objects;
only the rows that mention the old key are read and rewritten.  Downgrade reverses both.
"""
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# (table, Backend.AI's column name, Workbay's column name)
COLUMNS = (
    ("domains", "allowed_vfolder_hosts", "allowed_folder_hosts"),
    ("projects", "allowed_vfolder_hosts", "allowed_folder_hosts"),
    ("keypair_resource_policies", "allowed_vfolder_hosts", "allowed_folder_hosts"),
    ("user_resource_policies", "max_vfolder_count", "max_folder_count"),
    ("project_resource_policies", "max_vfolder_count", "max_folder_count"),
)
OLD_KEY, NEW_KEY = "vfolder_id", "folder_id"

_sessions = sa.table("sessions", sa.column("id", sa.Uuid()), sa.column("mounts", sa.JSON()))


def _rename_columns(old_of: int, new_of: int) -> None:
    for entry in COLUMNS:
        op.execute(f'ALTER TABLE "{entry[0]}" RENAME COLUMN "{entry[old_of]}" TO "{entry[new_of]}"')


def _rekey(session_id: Any, mount: Any, old: str, new: str) -> Any:
    if not isinstance(mount, dict) or old not in mount:
        return mount
    if new in mount:  # both keys: which one names the folder is unknowable, so stop rather than guess
        raise RuntimeError(f"sessions.mounts of session {session_id} has both {old!r} and {new!r} "
                           f"in one mount: {mount!r}")
    return {(new if k == old else k): v for k, v in mount.items()}


def _rewrite_mounts(old: str, new: str) -> None:
    conn = op.get_bind()
    found = conn.execute(sa.select(_sessions.c.id, _sessions.c.mounts)
                         .where(sa.cast(_sessions.c.mounts, sa.Text).like(f'%"{old}"%'))).all()
    updates = []
    for session_id, mounts in found:
        if not isinstance(mounts, list):
            continue
        rewritten = [_rekey(session_id, m, old, new) for m in mounts]
        if rewritten != mounts:
            updates.append({"sid": session_id, "new_mounts": rewritten})
    if updates:
        conn.execute(_sessions.update().where(_sessions.c.id == sa.bindparam("sid"))
                     .values(mounts=sa.bindparam("new_mounts", type_=sa.JSON())), updates)


# The mounts first: a refused row stops the migration before any table has changed.
def upgrade() -> None:
    _rewrite_mounts(OLD_KEY, NEW_KEY)
    _rename_columns(1, 2)


def downgrade() -> None:
    _rewrite_mounts(NEW_KEY, OLD_KEY)
    _rename_columns(2, 1)
