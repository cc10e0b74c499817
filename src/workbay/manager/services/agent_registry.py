"""What agents tell the manager: heartbeats (capacity, images) fill the agent list and the image
catalog.  Only the manager writes the database; agents report over the internal API."""

from __future__ import annotations

import hmac
import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.domain import OCCUPYING_STATUSES
from workbay.common.errors import AuthFailed, InvalidAPIParameters
from workbay.common.slots import ResourceSlot
from workbay.manager.models import ResourceGroup
from workbay.manager.models.compute import Agent, Image, Kernel

from . import image_labels
from .context import ServiceContext

log = logging.getLogger(__name__)


class ReportedImage(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=512)
    digest: str = ""
    labels: dict[str, str] = {}
    architecture: str = Field(min_length=1, max_length=32)  # required: the catalog is per architecture
    size: int = 0


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=64)
    addr: str = Field(min_length=1, max_length=256)
    region: str = "local"
    # Required: an agent that does not say where it belongs and what it runs is refused (400 naming
    # the missing fields), never filed under a guessed group or architecture.
    resource_group: str = Field(min_length=1, max_length=64)
    architecture: str = Field(min_length=1, max_length=32)
    slots: dict[str, Any] = {}
    occupied: dict[str, Any] = {}
    images: list[ReportedImage] = []
    version: str = ""
    accelerators: list[Any] = []
    kernels: list[str] = []
    stats: dict[str, Any] = {}


def check_cluster_secret(config_secret: str, presented: str | None) -> None:
    if not config_secret or not presented or not hmac.compare_digest(config_secret, presented):
        raise AuthFailed("Invalid cluster secret.")


async def occupancy_by_agent(s: AsyncSession) -> dict[str, ResourceSlot]:
    """What live kernels hold on each agent (the source of truth; "recalculate usage")."""
    acc: dict[str, ResourceSlot] = defaultdict(ResourceSlot)
    rows = await s.execute(select(Kernel.agent_id, Kernel.occupied_slots)
                           .where(Kernel.status.in_(OCCUPYING_STATUSES), Kernel.agent_id.is_not(None)))
    for agent_id, slots in rows.all():
        try:
            acc[agent_id] = acc[agent_id] + ResourceSlot.from_json(slots or {})
        except (TypeError, ValueError, ArithmeticError) as e:
            log.warning("a kernel on agent %s holds unreadable slots %r: %s (not counted)", agent_id, slots, e)
    return acc


class AgentRegistry:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def heartbeat(self, hb: Heartbeat) -> dict[str, Any]:
        now = datetime.now(UTC)
        async with self.ctx.db.begin() as s:
            if await s.get(ResourceGroup, hb.resource_group) is None:
                raise InvalidAPIParameters(f"No such resource group: {hb.resource_group}",
                                           data={"resource_group": "unknown"})
            agent = await s.get(Agent, hb.id)
            rejoined = agent is None or agent.status != "ALIVE"
            if agent is None:
                agent = Agent(id=hb.id, first_contact=now, schedulable=True)
                s.add(agent)
            agent.addr, agent.region, agent.resource_group = hb.addr, hb.region, hb.resource_group
            agent.architecture, agent.available_slots = hb.architecture, {k: str(v) for k, v in hb.slots.items()}
            agent.accelerators, agent.version = hb.accelerators, hb.version
            agent.status, agent.status_info, agent.lost_at = "ALIVE", None, None
            agent.last_heartbeat = now
            if hb.stats:
                agent.live_stat = hb.stats
            await self._sync_images(s, hb)
        if rejoined:
            log.info("agent %s joined resource group %s at %s", hb.id, hb.resource_group, hb.addr)
            await self.ctx.events.publish({"name": "agent_joined", "agent_id": hb.id})
        return {"ok": True}

    async def _sync_images(self, s: AsyncSession, hb: Heartbeat) -> None:
        reported = {(img.name, img.architecture): img for img in hb.images}
        rows = (await s.execute(select(Image))).scalars().all()
        known = {(row.name, row.architecture): row for row in rows}
        for key, img in reported.items():
            row = known.get(key)
            if row is None:
                registry, _, tag = image_labels.split_reference(img.name)
                row = Image(name=img.name, image_registry=registry or "docker.io", tag=tag,
                            architecture=img.architecture, installed_on=[],
                            min_slots=image_labels.min_slots(img.labels))
                s.add(row)
            row.digest, row.labels, row.size_bytes = img.digest, img.labels, img.size
            row.service_ports = image_labels.service_ports(img.labels)
            if not row.min_slots:
                row.min_slots = image_labels.min_slots(img.labels)
            if hb.id not in (row.installed_on or []):
                row.installed_on = [*(row.installed_on or []), hb.id]
        for key, row in known.items():
            if key not in reported and hb.id in (row.installed_on or []):
                row.installed_on = [a for a in row.installed_on if a != hb.id]
