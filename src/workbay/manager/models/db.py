"""Engine/session factory and Alembic upgrade (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import JSON, String, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.sql import column, table

from workbay.common.datadir import prepare_sqlite_file
from workbay.common.secrets import SecretBox, SecretDecryptionError

from .base import SECRET_BOX_ATTR, utcnow

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SECRET_CHECK_KEY = "secrets_at_rest_check"  # system_settings row written by migration 0004
SECRET_CHECK_PLAINTEXT = "workbay"


def make_engine(url: str, echo: bool = False, secret_box: SecretBox | None = None) -> AsyncEngine:
    """An engine; ``secret_box`` encrypts and decrypts the ``Encrypted`` columns (without one,
    reading or writing them fails)."""
    prepare_sqlite_file(url)  # 0600 before SQLite creates it (its -wal and -shm copy the mode)
    kwargs: dict = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    if secret_box is not None:
        setattr(engine.sync_engine.dialect, SECRET_BOX_ATTR, secret_box)
    return engine


async def verify_secret_box(engine: AsyncEngine, box: SecretBox) -> None:
    """Fail at start, not at the first login, when ``secrets.database`` is not the key this
    database's secrets were encrypted with (another replica's, or a lost and regenerated one)."""
    settings = table("system_settings", column("key", String), column("value", JSON),
                     column("modified_at"))
    purpose = f"system_settings.{SECRET_CHECK_KEY}"
    async with engine.connect() as conn:
        stored = (await conn.execute(select(settings.c.value).where(settings.c.key == SECRET_CHECK_KEY))
                  ).scalar_one_or_none()
        if stored is None:  # a database made without migration 0004 (metadata.create_all)
            try:
                await conn.execute(settings.insert().values(
                    key=SECRET_CHECK_KEY, value=box.encrypt(SECRET_CHECK_PLAINTEXT, purpose),
                    modified_at=utcnow()))
                await conn.commit()
                return
            except IntegrityError:  # another replica wrote it first: check theirs
                await conn.rollback()
                stored = (await conn.execute(select(settings.c.value).where(
                    settings.c.key == SECRET_CHECK_KEY))).scalar_one()
    try:
        ok = box.decrypt(str(stored), purpose) == SECRET_CHECK_PLAINTEXT
    except SecretDecryptionError:
        ok = False
    if not ok:
        raise SecretDecryptionError(
            "secrets.database is not the key this database's secrets were encrypted with: every "
            "manager needs the same [secrets] database (data_dir/secrets.toml in lite). If the "
            "original secrets.toml is lost, see docs/operations.md, 'Secrets at rest'.")


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str, secret_box: SecretBox | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["secret_box"] = secret_box  # migration 0004 encrypts with it
    return cfg


_UPGRADE_LOCK = threading.Lock()  # Alembic's context is process-global: one upgrade at a time


def upgrade_sync(url: str, revision: str = "head", secret_box: SecretBox | None = None) -> None:
    prepare_sqlite_file(url)
    with _UPGRADE_LOCK:
        command.upgrade(alembic_config(url, secret_box), revision)


def downgrade_sync(url: str, revision: str, secret_box: SecretBox | None = None) -> None:
    with _UPGRADE_LOCK:
        command.downgrade(alembic_config(url, secret_box), revision)


async def upgrade(url: str, revision: str = "head", secret_box: SecretBox | None = None) -> None:
    # Alembic's env.py runs its own event loop; keep it off ours.
    await asyncio.to_thread(upgrade_sync, url, revision, secret_box)
