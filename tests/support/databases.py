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
REDIS_URL = os.environ.get("WORKBAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
