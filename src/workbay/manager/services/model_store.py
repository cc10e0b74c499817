"""The Model Store (MS-11, docs/serving.md "Model Store"): the cloneable model folders of the
project ``model-store`` of the caller's domain, shown as cards from their definitions' metadata,
and cloned into the caller's own folders.

Every user of the domain sees the cards and may clone them, members of ``model-store`` or not:
the store is a catalog (the guide shows its folders to everyone).  Nothing else of the project
opens to non-members: they cannot list, mount or download its folders, only clone these."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.domain import FolderUsageMode
from workbay.common.errors import BackendError, ObjectNotFound
from workbay.manager.models import Folder, Project
from workbay.manager.serving.definition import ModelMetadata

from .access import Actor
from .context import ServiceContext
from .folder_rules import READY
from .folders import CloneFolder, CreatedFolder, FolderService
from .model_definitions import ModelDefinitions

MODEL_STORE_PROJECT = "model-store"
READ_CONCURRENCY = 8  # definition files read at once for one listing


@dataclass(frozen=True)
class ModelCard:
    """A model folder of the store and its definition's metadata (empty when the folder has no
    valid definition: the card still shows, with ``definition_error``)."""

    folder_id: uuid.UUID
    name: str            # the folder's
    host: str
    model_name: str | None = None
    metadata: ModelMetadata = field(default_factory=ModelMetadata)
    definition_file: str | None = None
    definition_error: str | None = None


class ModelStore:
    def __init__(self, ctx: ServiceContext, folders: FolderService, definitions: ModelDefinitions) -> None:
        self.ctx = ctx
        self.folders = folders
        self.definitions = definitions

    async def _store_folders(self, s: AsyncSession, actor: Actor) -> list[Folder]:
        project_id = (await s.execute(select(Project.id).where(
            Project.domain_name == actor.domain_name, Project.name == MODEL_STORE_PROJECT))).scalar()
        if project_id is None:
            return []
        rows = await s.execute(select(Folder).where(
            Folder.project_id == project_id, Folder.usage_mode == FolderUsageMode.MODEL.value,
            Folder.cloneable.is_(True), Folder.status == READY).order_by(Folder.name))
        return list(rows.scalars().all())

    async def _card(self, f: Folder) -> ModelCard:
        try:
            found = await self.definitions.find(f)
        except BackendError as e:
            return ModelCard(folder_id=f.id, name=f.name, host=f.host, definition_error=e.msg or e.title)
        if found is None:
            return ModelCard(folder_id=f.id, name=f.name, host=f.host,
                             definition_error="model-definition.yaml not found in the folder")
        definition, filename = found
        model = definition.models[0]
        return ModelCard(folder_id=f.id, name=f.name, host=f.host, model_name=model.name,
                         metadata=model.metadata, definition_file=filename)

    async def list(self, actor: Actor) -> list[ModelCard]:
        async with self.ctx.db() as s:
            folders = await self._store_folders(s, actor)
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def one(f: Folder) -> ModelCard:
            async with gate:
                return await self._card(f)
        return list(await asyncio.gather(*(one(f) for f in folders)))

    async def clone(self, actor: Actor, folder_id: str, name: str, host: str | None = None,
                    permission: str = "rw") -> CreatedFolder:
        """A copy of a store folder as a new model folder of the caller (a background copy:
        ``bgtask_id``).  Folders that are not in the caller's store answer 404."""
        try:
            fid = uuid.UUID(folder_id)
        except ValueError:
            fid = None
        async with self.ctx.db() as s:
            source = next((f for f in await self._store_folders(s, actor) if f.id == fid), None)
        if source is None:
            raise ObjectNotFound(f"No such model in the model store: {folder_id}", object_name="model")
        return await self.folders.clone_source(actor, source.host, source.id, CloneFolder(
            target_name=name, target_host=host, usage_mode=FolderUsageMode.MODEL.value, permission=permission))
