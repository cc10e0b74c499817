"""/model-store (Workbay's, MS-11): the Model Store's cards and cloning a model into one's folders."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import AliasChoices, Field

from workbay.manager.services.access import Actor
from workbay.manager.services.model_store import ModelCard
from workbay.manager.state import ManagerState

from .deps import actor, state
from .folders import ClonedOut, Params, _form_params, _with_field_errors, created_wire
from .wire import WireModel, WireRoute, body_schema

router = APIRouter(tags=["model-store"], route_class=WireRoute)


class CloneModelParams(Params):
    name: str = Field(validation_alias=AliasChoices("name", "target_name"))
    host: str | None = Field(None, validation_alias=AliasChoices("host", "target_host"))
    permission: str = "rw"


class ModelCardOut(WireModel):
    folder_id: str
    name: str
    host: str
    model_name: str | None
    title: str | None
    author: str | None
    description: str | None
    task: str | None
    category: str | None
    architecture: str | None
    framework: str | None
    label: list[str]
    license: str | None
    version: str | None
    created: str | None
    last_modified: str | None
    min_resource: dict[str, str]
    definition_file: str | None
    definition_error: str | None


class ModelStoreOut(WireModel):
    items: list[ModelCardOut]


def card_wire(c: ModelCard) -> dict[str, Any]:
    """The card flat: the folder, then the definition's metadata fields beside it."""
    return {"folder_id": c.folder_id.hex, "name": c.name, "host": c.host, "model_name": c.model_name,
            **asdict(c.metadata), "definition_file": c.definition_file, "definition_error": c.definition_error}


@router.get("/model-store", response_model=ModelStoreOut)
async def list_models(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict[str, Any]:
    """The cloneable model folders of the project ``model-store`` of the caller's domain, as cards."""
    return {"items": [card_wire(c) for c in await st.model_store.list(who)]}


@router.post("/model-store/{folder_id}/clone", status_code=201, response_model=ClonedOut,
             openapi_extra=body_schema(CloneModelParams, True))
async def clone_model(folder_id: str, request: Request, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict[str, Any]:
    """A copy of a store model as a new model folder of the caller (copied in the background)."""
    p = await _form_params(request, CloneModelParams)
    cloned = await _with_field_errors(st.model_store.clone(who, folder_id, p.name, p.host, p.permission),
                                      {"name": "name", "host": "host", "permission": "permission"})
    return {**created_wire(cloned), "bgtask_id": cloned.bgtask_id}
