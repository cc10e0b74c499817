"""A folder's File Browser (AP-6) and SFTP server (AP-7): small system sessions that mount the
folder, are not counted in the owner's resource usage, and are reclaimed when idle."""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from sqlalchemy import func, select

from workbay.common.domain import LIVE_STATUSES
from workbay.common.errors import BackendError, GenericBadRequest
from workbay.manager.models import Keypair, KeypairResourcePolicy
from workbay.manager.models.compute import ComputeSession

from . import folder_rules as rules
from .access import Actor
from .context import ServiceContext
from .folder_lookup import require, resolve
from .session_apps import READY_TIMEOUT, SessionApps, StartService
from .session_info import CreatedSession
from .session_request import CreateSession
from .sessions import SessionService

log = logging.getLogger(__name__)
TAGS = {"filebrowser": "workbay:file-browser", "sftp": "workbay:sftp"}
SYSTEM_RESOURCES = {"cpu": 1, "mem": "256m"}
START_WAIT = 180


def session_name(kind: str, folder: str) -> str:
    """``fb-<folder>-<random>`` within the session-name rule (common.domain: ASCII letters, digits, '-', '_')."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", folder).strip("-_")[:40] or "folder"
    return f"{kind}-{slug}-{secrets.token_hex(3)}"


class FolderApps:
    def __init__(self, ctx: ServiceContext, sessions: SessionService, apps: SessionApps) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.apps = apps

    async def _start(self, actor: Actor, ref: str, kind: str) -> tuple[CreatedSession, str]:
        async with self.ctx.db() as s:
            v = await resolve(s, actor, ref)
            require(rules.can_read(v.permission), "open this folder")
            folder = v.folder
            if kind == "sftp":
                kp = await s.get(Keypair, actor.access_key)
                policy = await s.get(KeypairResourcePolicy, kp.resource_policy) if kp else None
                live = (await s.execute(select(func.count()).select_from(ComputeSession).where(
                    ComputeSession.access_key == actor.access_key, ComputeSession.status.in_(LIVE_STATUSES),
                    ComputeSession.tag == TAGS["sftp"]))).scalar_one()
                limit = policy.max_concurrent_sftp_sessions if policy else 1
                if live >= limit:
                    raise GenericBadRequest(f"You already run {live} of {limit} SFTP sessions; "
                                            "close one first.", data={"max_concurrent_sftp_sessions": limit})
        req = CreateSession.model_validate({
            "image": self.ctx.config.manager.system_image, "name": session_name("fb" if kind == "filebrowser" else "sftp",
                                                                                 folder.name),
            "type": "system", "tag": TAGS[kind], "maxWaitSeconds": START_WAIT,
            "config": {"resources": SYSTEM_RESOURCES, "mounts": [folder.id.hex]}})
        created = await self.sessions.create(actor, req, system=True)
        if created.status != "RUNNING":
            raise GenericBadRequest(f"The {kind} session did not start ({created.status}): "
                                    f"{created.status_info or ''}".strip())
        return created, f"/home/work/{folder.name}"

    async def file_browser(self, actor: Actor, ref: str) -> dict[str, Any]:
        created, root = await self._start(actor, ref, "filebrowser")
        opened = await self.apps.start(actor, str(created.id), StartService(
            app="filebrowser", arguments={"root": root}))
        return {"session_id": str(created.id), "session_name": created.name, "root": root, **opened}

    async def sftp_server(self, actor: Actor, ref: str, preferred_port: int | None = None) -> dict[str, Any]:
        created, root = await self._start(actor, ref, "sftp")
        opened = await self.apps.start(actor, str(created.id), StartService(
            app="sshd", preferred_port=preferred_port))
        sid = str(created.id)
        return {"session_id": sid, "session_name": created.name, "root": root, "user": "work",
                "host": opened["host"], "port": opened["port"], "tcp_url": opened["tcp_url"],
                "key_path": f"/session/{sid}/download_single?file=id_container",
                "sftp_command": f"sftp -i id_container -P {opened['port']} work@{opened['host']}",
                "idle_timeout": self.ctx.config.manager.system_idle_timeout}

    # -- reclaiming idle ones ----------------------------------------------------------------------
    async def reclaim_idle(self) -> list[str]:
        """Terminate File Browser / SFTP sessions whose circuits carried nothing for the timeout."""
        timeout = self.ctx.config.manager.system_idle_timeout
        async with self.ctx.db() as s:
            rows = (await s.execute(select(ComputeSession.id, ComputeSession.started_at).where(
                ComputeSession.session_type == "system", ComputeSession.status == "RUNNING",
                ComputeSession.tag.in_(list(TAGS.values()))))).all()
        reclaimed = []
        now = time.time()
        for sid, started in rows:
            try:
                circuits = (await self.apps.proxy.call("GET", "/v1/circuits", params={"session_id": str(sid)}))["circuits"]
            except BackendError:
                continue
            busy = any(c.get("active_connections", 0) > 0 for c in circuits)
            # Until its circuit exists the app is still being opened (the manager waits up to
            # READY_TIMEOUT for it to listen): a slow start is not idleness.
            opened_by = (started.timestamp() if started else now) + (0 if circuits else READY_TIMEOUT)
            last = max([c.get("last_activity", 0) for c in circuits] + [opened_by])
            if not busy and now - last > timeout:
                log.info("reclaiming idle system session %s (%.0f s without transfers)", sid, now - last)
                try:
                    await self.sessions.kernels.terminate_session(sid, "idle-timeout")
                except BackendError as e:
                    log.warning("could not reclaim %s: %s", sid, e)
                    continue
                reclaimed.append(str(sid))
        return reclaimed

    def reclaim_interval(self) -> float:
        """How often ``reclaim_idle`` runs (a BackgroundLoop in state.py)."""
        return min(60.0, max(0.5, self.ctx.config.manager.system_idle_timeout / 2))
