"""Throwaway databases for tests: a SQLite file or a fresh PostgreSQL database on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

PG_HOST = os.environ.get("WORKBAY_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("WORKBAY_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("WORKBAY_TEST_PG_USER", "postgres")


def _redis_db() -> int:
    """Redis database 0, or under pytest-xdist one per worker (gw0: 0, gw1: 12, gw2: 11, ...):
    login lockouts count per account *and per client address*, and every test client is
    127.0.0.1, so workers running at once must not add to each other's counts.  (13 and 14 are
    test_events_redis's, 15 test_manager_ratelimit's.)"""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    n = worker.removeprefix("gw")
    if not n.isdigit() or int(n) > 12:
        raise RuntimeError(f"xdist worker {worker!r}: no Redis database for it (gw0 … gw12)")
    return 0 if n == "0" else 13 - int(n)


REDIS_URL = os.environ.get("WORKBAY_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{_redis_db()}")


@asynccontextmanager
async def throwaway_db(kind: str, tmp_dir: Path):
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_dir / f'test-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"workbay_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
