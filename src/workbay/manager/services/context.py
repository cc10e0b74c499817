"""What every service needs: the database, the configuration and the event bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from workbay.common.config import WorkbayConfig
from workbay.common.events import EventBus

if TYPE_CHECKING:
    from .keypair_usage import KeypairUsage


@dataclass
class ServiceContext:
    db: async_sessionmaker[AsyncSession]
    config: WorkbayConfig
    events: EventBus
    keypair_usage: KeypairUsage = field(init=False)

    def __post_init__(self) -> None:
        from .keypair_usage import KeypairUsage

        self.keypair_usage = KeypairUsage(self.db)
