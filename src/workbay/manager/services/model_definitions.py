"""A model folder's definition file, read through the storage-proxy (docs/serving.md "Model
definition"), and the replica launch spec that a service's variant makes of it.

Callers authorize the folder first (the service's owner may read it); this module reads what it is
given.  Problems are 400s naming the request field: ``config.model_definition_path`` for the file
and what it says, ``config.model`` for the model in it."""

from __future__ import annotations

import posixpath
import uuid
from typing import Any, Protocol, overload

from sqlalchemy import select

from workbay.common.domain import RuntimeVariant
from workbay.common.errors import BackendError, InvalidAPIParameters, ObjectNotFound
from workbay.manager.models import Folder, Image
from workbay.manager.models.serving import ModelService
from workbay.manager.serving.definition import (
    DEFINITION_FILENAMES,
    MAX_FILE_BYTES,
    DefinitionError,
    ModelDefinition,
    parse_definition,
)
from workbay.manager.serving.runtimes import FIELD_MODEL, FIELD_VARIANT, ReplicaSpec, ReplicaSpecError
from workbay.manager.serving.runtimes import replica_spec as make_replica_spec

from .context import ServiceContext
from .session_request import field_problem
from .storage_proxy import StorageProxy, StorageProxyError

FIELD_DEFINITION_PATH = "config.model_definition_path"
MAX_DEFINITION_PATH = 512


class FolderRef(Protocol):
    """What is read of a folder: a ``Folder`` row or a ``FolderView``."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def host(self) -> str: ...
    @property
    def name(self) -> str: ...


def _bad(field: str, message: str) -> BackendError:
    return field_problem(InvalidAPIParameters(message), field)


def definition_relpath(path: str | None) -> str | None:
    """A definition path relative to the folder's root (``/x.yaml`` = ``x.yaml``); None: default."""
    if path is None or not path.strip():
        return None
    if len(path) > MAX_DEFINITION_PATH or "\x00" in path or "\\" in path:
        raise _bad(FIELD_DEFINITION_PATH, f"the model definition path must be at most {MAX_DEFINITION_PATH} "
                                          f"characters, without NUL or backslash")
    rel = posixpath.normpath(path.strip().lstrip("/"))
    if rel in (".", "") or rel == ".." or rel.startswith("../"):
        raise _bad(FIELD_DEFINITION_PATH, "the model definition path must name a file inside the model folder")
    return rel


class ModelDefinitions:
    def __init__(self, ctx: ServiceContext, storage: StorageProxy) -> None:
        self.ctx = ctx
        self.storage = storage

    async def _read_bytes(self, folder: FolderRef, relpath: str) -> bytes | None:
        """The file's bytes; None when there is no such file."""
        try:
            return await self.storage.read_file(folder.host, folder.id.hex, relpath, MAX_FILE_BYTES)
        except StorageProxyError as e:
            if e.status == 404:
                return None
            if e.status == 413:
                raise _bad(FIELD_DEFINITION_PATH, f"{relpath}: the file is larger than "
                                                  f"{MAX_FILE_BYTES // (1 << 20)} MiB") from None
            if e.status == 400:  # a directory, a path the proxy refuses
                raise _bad(FIELD_DEFINITION_PATH, f"{relpath}: {e.msg or e.title}") from None
            raise

    async def find(self, folder: FolderRef, path: str | None = None) -> tuple[ModelDefinition, str] | None:
        """The folder's definition and its file name; None when there is none (``path`` None: the
        root's ``model-definition.yaml`` or ``.yml``).  A file that is there but wrong is a 400
        whose message is every problem, each with its line."""
        rel = definition_relpath(path)
        for candidate in ([rel] if rel else DEFINITION_FILENAMES):
            data = await self._read_bytes(folder, candidate)
            if data is None:
                continue
            try:
                return parse_definition(data, candidate), candidate
            except DefinitionError as e:
                raise field_problem(InvalidAPIParameters(str(e), data={"problems": [
                    {"line": p.line, "key": p.key, "message": p.message} for p in e.problems]}),
                    FIELD_DEFINITION_PATH) from None
        return None

    async def read(self, folder: FolderRef, path: str | None = None) -> tuple[ModelDefinition, str]:
        """The folder's definition and its file name; a missing file is a 400."""
        found = await self.find(folder, path)
        if found is None:
            wanted = definition_relpath(path) or DEFINITION_FILENAMES[0]
            raise _bad(FIELD_DEFINITION_PATH, f"{wanted} not found in folder {folder.name}")
        return found

    async def gguf_file(self, folder: FolderRef) -> str:
        """The one ``.gguf`` file at the folder's root (the llama.cpp variant's model)."""
        out = await self.storage.files_call("GET", "/files", folder.host, folder.id.hex, path="")
        names = sorted(str(i.get("name")) for i in out.get("items", [])
                       if isinstance(i, dict) and str(i.get("name", "")).lower().endswith(".gguf")
                       and i.get("type") != "DIRECTORY")
        if len(names) != 1:
            what = "no .gguf file" if not names else f"several .gguf files ({', '.join(names[:5])})"
            raise _bad(FIELD_MODEL, f"the llama.cpp runtime serves the one .gguf file at the root of folder "
                                    f"{folder.name}; it has {what}")
        return names[0]

    @overload
    async def replica_spec(self, folder: ModelService) -> ReplicaSpec: ...
    @overload
    async def replica_spec(self, folder: FolderRef, variant: RuntimeVariant | str, definition_path: str | None,
                           mount_destination: str, image_labels: dict[str, str], startup_command: str | None,
                           model_name: str | None = None, model_file: str | None = None) -> ReplicaSpec: ...

    async def replica_spec(self, folder: FolderRef | ModelService, variant: RuntimeVariant | str | None = None,
                           definition_path: str | None = None, mount_destination: str = "/models",
                           image_labels: dict[str, str] | None = None, startup_command: str | None = None,
                           model_name: str | None = None, model_file: str | None = None) -> ReplicaSpec:
        """What a replica of a service runs.  Given a ``ModelService`` row (stored or about to be),
        its folder and image are looked up; otherwise the caller gives each piece."""
        if isinstance(folder, ModelService):
            return await self._for_service(folder)
        try:
            v = RuntimeVariant(variant) if variant is not None else RuntimeVariant.CUSTOM
        except ValueError:
            raise _bad(FIELD_VARIANT, f"runtime_variant must be one of "
                                      f"{', '.join(x.value for x in RuntimeVariant)}") from None
        definition = None
        if v is RuntimeVariant.CUSTOM:
            definition, _ = await self.read(folder, definition_path)
        if v is RuntimeVariant.LLAMA_CPP and model_file is None and not (startup_command or "").strip():
            model_file = await self.gguf_file(folder)
        try:
            return make_replica_spec(v, definition=definition, model_name=model_name,
                                     mount_destination=mount_destination, image_labels=image_labels or {},
                                     startup_command=startup_command, model_file=model_file)
        except ReplicaSpecError as e:
            raise _bad(e.field, e.message) from None

    async def _for_service(self, svc: ModelService) -> ReplicaSpec:
        async with self.ctx.db() as s:
            folder = await s.get(Folder, svc.model_folder_id)
            labels: dict[str, Any] = (await s.execute(select(Image.labels).where(
                Image.name == svc.image, Image.architecture == svc.architecture))).scalar() or {}
        if folder is None:
            raise field_problem(ObjectNotFound("The service's model folder no longer exists.",
                                               object_name="virtual folder"), FIELD_MODEL)
        return await self.replica_spec(folder, svc.runtime_variant, svc.model_definition_path,
                                       svc.model_mount_destination or "/models",
                                       {str(k): str(v) for k, v in labels.items()}, svc.startup_command)
