"""Read-only session counts that other areas ask for (GraphQL's keypair list)."""

from __future__ import annotations

from sqlalchemy import func, select

from workbay.common.domain import DEAD_STATUSES
from workbay.manager.models import ComputeSession

from .context import ServiceContext


async def live_sessions_by_access_key(ctx: ServiceContext, access_keys: list[str]) -> dict[str, int]:
    """How many sessions of each keypair are not over yet (Backend.AI's ``concurrency_used``)."""
    if not access_keys:
        return {}
    async with ctx.db() as s:
        rows = await s.execute(
            select(ComputeSession.access_key, func.count()).where(
                ComputeSession.access_key.in_(access_keys), ComputeSession.status.not_in(DEAD_STATUSES))
            .group_by(ComputeSession.access_key))
    return {ak: n for ak, n in rows}
