"""encrypt secrets at rest: keypairs' secret keys and SSH private keys, users' TOTP seeds

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 19:20:00

The key comes from the installation's ``secrets.database`` (``db.upgrade(url, secret_box)`` puts
the box in the Alembic config's attributes).  Upgrade encrypts every plaintext value and records a
check value that later starts verify; downgrade decrypts them again.
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

CHECK_KEY = "secrets_at_rest_check"  # same as db.SECRET_CHECK_KEY (migrations do not import app code)
CHECK_PLAINTEXT = "workbay"
COLUMNS = (("keypairs", "access_key", "secret_key"), ("keypairs", "access_key", "ssh_private_key"),
           ("users", "uuid", "totp_key"))
# The widened columns (SQLite does not enforce VARCHAR lengths: nothing to alter there).
LENGTHS = (("keypairs", "secret_key", 40, 255), ("users", "totp_key", 64, 255))


def _box():
    box = context.config.attributes.get("secret_box")
    if box is None:
        raise RuntimeError("migration 0004 encrypts secrets with secrets.database: run it through "
                           "`workbay db upgrade` or the manager (db.upgrade(url, secret_box))")
    return box


def _rewrite(change) -> None:
    bind = op.get_bind()
    for table, key, column in COLUMNS:
        t = sa.table(table, sa.column(key), sa.column(column, sa.Text))
        rows = bind.execute(sa.select(t.c[key], t.c[column]).where(t.c[column].is_not(None))).all()
        for row_key, value in rows:
            new = change(value, f"{table}.{column}")
            if new != value:
                bind.execute(t.update().where(t.c[key] == row_key).values({column: new}))


def upgrade() -> None:
    box = _box()
    if op.get_bind().dialect.name != "sqlite":
        for table, column, old, new in LENGTHS:
            op.alter_column(table, column, type_=sa.String(new), existing_type=sa.String(old))
    _rewrite(lambda v, purpose: v if box.is_encrypted(v) else box.encrypt(v, purpose))
    settings = sa.table("system_settings", sa.column("key", sa.String), sa.column("value", sa.JSON),
                        sa.column("modified_at", sa.DateTime(timezone=True)))
    op.get_bind().execute(settings.delete().where(settings.c.key == CHECK_KEY))
    op.get_bind().execute(settings.insert().values(
        key=CHECK_KEY, value=box.encrypt(CHECK_PLAINTEXT, f"system_settings.{CHECK_KEY}"),
        modified_at=datetime.now(UTC)))


def downgrade() -> None:
    box = _box()
    _rewrite(lambda v, purpose: box.decrypt(v, purpose) if box.is_encrypted(v) else v)
    settings = sa.table("system_settings", sa.column("key", sa.String))
    op.get_bind().execute(settings.delete().where(settings.c.key == CHECK_KEY))
    if op.get_bind().dialect.name != "sqlite":
        for table, column, old, new in LENGTHS:
            op.alter_column(table, column, type_=sa.String(old), existing_type=sa.String(new))
