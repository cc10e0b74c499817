"""Which folders a new session mounts, where, and how (VF-7, VF-11)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.errors import InvalidAPIParameters, ObjectNotFound
from workbay.manager.models.base import utcnow

from . import folder_rules as rules
from .access import Actor
from .folder_lookup import Visible, resolve, viewer_for, visible_folders
from .folders import FolderService


def agent_mount(m: dict[str, Any]) -> dict[str, Any]:
    """The part of a stored mount the agent takes."""
    return {"source": m["source"], "target": m["target"], "read_only": bool(m["read_only"])}


class FolderMounts:
    def __init__(self, folders: FolderService) -> None:
        self.folders = folders

    async def resolve(self, s: AsyncSession, owner: Actor, names: list[str], aliases: dict[str, str],
                      read_only: frozenset[uuid.UUID] = frozenset()) -> list[dict[str, Any]]:
        """Mounts for a session owned by ``owner``: the requested folders (which the owner must be
        able to read), then the owner's automount folders; the folders in ``read_only`` are mounted
        read-only whatever the owner's permission (a model service's model folder).  Refuses with
        4xx before anything runs."""
        chosen: list[tuple[Visible, str]] = []
        seen: set[uuid.UUID] = set()
        for ref in names:
            try:
                v = await resolve(s, owner, ref)
            except ObjectNotFound as e:
                raise ObjectNotFound(f"No such virtual folder: {ref}", object_name="virtual folder") from e
            if v.folder.id in seen:
                continue
            seen.add(v.folder.id)
            await self.folders.check_host(s, owner, v.folder.host, "mount-in-session", v.folder.project_id)
            chosen.append((v, rules.mount_target(v.folder.name, aliases.get(ref) or aliases.get(v.folder.name))))
        viewer = await viewer_for(s, owner)
        for v in await visible_folders(s, owner, viewer):
            f = v.folder
            if (f.status == "ready" and f.user_id == owner.user_id and rules.is_automount(f.name)
                    and f.id not in seen):
                seen.add(f.id)
                chosen.append((v, rules.mount_target(f.name, None)))
        targets = [t for _, t in chosen]
        dupes = {t for t in targets if targets.count(t) > 1}
        if dupes:
            raise InvalidAPIParameters(f"Two folders would mount at {', '.join(sorted(dupes))}.")
        mounts = []
        for v, target in chosen:
            source = await self.folders.storage.mount_path(v.folder.host, v.folder.id.hex)
            v.folder.last_used = utcnow()
            mounts.append({"folder_id": str(v.folder.id), "name": v.folder.name, "host": v.folder.host,
                           "source": source, "target": target, "permission": v.permission,
                           "read_only": v.folder.id in read_only or not rules.can_write(v.permission)})
        return mounts
