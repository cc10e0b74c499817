"""Per-keypair request counters (num_queries, last_used), kept in memory and written in batches.

Writing them on every signed request made each request a database write; now a request only bumps
a counter, and ``flush`` adds what accumulated with one atomic UPDATE per keypair (correct with
several manager replicas: each adds its own increments).  Readers of the counters flush first.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from workbay.manager.models import Keypair

log = logging.getLogger(__name__)


class KeypairUsage:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self.db = db
        self._pending: dict[str, tuple[int, datetime]] = {}
        self._lock = asyncio.Lock()

    def record(self, access_key: str) -> None:
        count, _ = self._pending.get(access_key, (0, None))
        self._pending[access_key] = (count + 1, datetime.now(UTC))

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            try:
                async with self.db.begin() as s:
                    for access_key, (count, last_used) in batch.items():
                        await s.execute(update(Keypair).where(Keypair.access_key == access_key).values(
                            num_queries=Keypair.num_queries + count, last_used=last_used))
            except Exception:
                # Put the counts back so nothing is lost; the next flush retries.
                for access_key, (count, last_used) in batch.items():
                    pending, _ = self._pending.get(access_key, (0, last_used))
                    self._pending[access_key] = (pending + count, last_used)
                raise

