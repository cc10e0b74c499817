"""/resource/* (Backend.AI) and the compute administration endpoints (Workbay REST)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from workbay.common.http import request_params
from workbay.manager.services import access
from workbay.manager.services.access import Actor
from workbay.manager.services.compute_admin import (
    ImagePatch,
    NewPreset,
    NewResourceGroup,
    PresetFields,
    ResourceGroupFields,
)
from workbay.manager.services.resource_usage import AgentSummaryOut, Allocatable, ResourceSummaryOut
from workbay.manager.state import ManagerState

from .deps import actor, state
from .wire import Number, WireModel, WireRoute, body_schema, items_of

router = APIRouter(tags=["resources"], route_class=WireRoute)


# -- what goes on the wire ---------------------------------------------------------------------------
class PresetOut(WireModel):
    name: str
    resource_slots: dict[str, Any]
    shared_memory: str | None
    resource_group: str | None


class PresetList(WireModel):
    presets: list[PresetOut]


class PresetItems(WireModel):
    items: list[PresetOut]
    total_count: int


class AllocatablePreset(PresetOut):
    allocatable: bool


class ScalingGroupRoom(WireModel):
    using: dict[str, str]
    remaining: dict[str, str]


class CheckPresetsOut(WireModel):
    """Backend.AI's answer to check-presets (``group_*`` is the project, ``scaling_group*`` the
    resource group)."""

    keypair_limits: dict[str, str]
    keypair_using: dict[str, str]
    keypair_remaining: dict[str, str]
    group_limits: dict[str, str]
    group_using: dict[str, str]
    group_remaining: dict[str, str]
    scaling_group_remaining: dict[str, str]
    scaling_groups: dict[str, ScalingGroupRoom]
    presets: list[AllocatablePreset]


def check_presets_wire(found: Allocatable) -> dict[str, Any]:
    return {
        "keypair_limits": found.keypair_limits.to_json(), "keypair_using": found.keypair_using.to_json(),
        "keypair_remaining": found.keypair_remaining.to_json(),
        "group_limits": found.project_limits.to_json(), "group_using": found.project_using.to_json(),
        "group_remaining": found.project_remaining.to_json(),
        "scaling_group_remaining": found.resource_group_remaining.to_json(),
        "scaling_groups": {name: {"using": room.using.to_json(), "remaining": room.remaining.to_json()}
                           for name, room in found.resource_groups.items()},
        "presets": [{**fit.preset.as_json(), "allocatable": fit.allocatable} for fit in found.presets],
    }


class AgentOut(WireModel):
    id: str
    status: str
    status_info: str | None
    schedulable: bool
    addr: str
    region: str | None
    resource_group: str
    architecture: str | None
    available_slots: dict[str, Any] | None
    occupied_slots: dict[str, Any] | None
    accelerators: list[Any] | None
    version: str | None
    first_contact: str | None
    last_heartbeat: str | None
    lost_at: str | None
    live_stat: dict[str, Any] | None


class AgentItems(WireModel):
    items: list[AgentOut]
    total_count: int


class ResourceGroupOut(WireModel):
    name: str
    description: str | None
    is_active: bool
    is_public: bool
    scheduler: str
    scheduler_opts: dict[str, Any]
    wsproxy_addr: str | None
    allowed_session_types: list[str]
    pending_timeout: Number
    retries_to_skip: int
    agent_selection: str
    domains: list[str]
    projects: list[str]
    created_at: str | None


class ResourceGroupItems(WireModel):
    items: list[ResourceGroupOut]
    total_count: int


class ImageOut(WireModel):
    id: str
    name: str
    registry: str
    tag: str
    architecture: str
    digest: str | None
    size_bytes: int | None
    labels: dict[str, Any] | None
    min_slots: dict[str, Any] | None
    service_ports: list[Any] | None
    installed_on: list[str] | None
    installed: bool
    created_at: str | None
    modified_at: str | None


class ImageItems(WireModel):
    items: list[ImageOut]
    total_count: int


class RescanFailureOut(WireModel):
    agent: str
    error: str


class RescanOut(WireModel):
    scanned_agents: list[str]
    failed: list[RescanFailureOut]
    images: list[ImageOut]


class TaskStarted(WireModel):
    """``{}`` when the work is done; ``{"task_id"}`` when it runs in the background."""

    task_id: str | None = None


@router.get("/resource/presets", response_model=PresetList)
async def presets(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return {"presets": [p.as_json() for p in await st.compute_admin.list_presets()]}


class CheckPresetsParams(BaseModel):
    scaling_group: str | None = None
    group: str | None = None
    owner_access_key: str | None = None


@router.post("/resource/check-presets", response_model=CheckPresetsOut, openapi_extra=body_schema(CheckPresetsParams))
async def check_presets(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    params = await request_params(request, CheckPresetsParams)
    listed = await st.compute_admin.list_presets(params.scaling_group)
    found = await st.usage.check_presets(who, params.scaling_group, params.group, listed, params.owner_access_key)
    return check_presets_wire(found)


class SummaryQuery(BaseModel):
    """Workbay's own endpoints: Workbay's names (a project by id or name; a resource group)."""

    model_config = ConfigDict(extra="forbid")  # an old caller's ``group``/``scaling_group`` is an error
    project: str | None = Field(None, max_length=256)
    resource_group: str | None = Field(None, max_length=256)


@router.get("/resource/summary", response_model=ResourceSummaryOut)
async def resource_summary(q: Annotated[SummaryQuery, Query()], who: Actor = Depends(actor),
                           st: ManagerState = Depends(state)) -> ResourceSummaryOut:
    return await st.resource_summary.summary(who, q.project, q.resource_group)


@router.get("/resource/agent-summary", response_model=AgentSummaryOut)
async def agent_summary(q: Annotated[SummaryQuery, Query()], who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> AgentSummaryOut:
    return await st.resource_summary.agents(who, q.project, q.resource_group)


class RecalculateParams(BaseModel):
    background: bool = False


@router.post("/resource/recalculate-usage", response_model=TaskStarted, openapi_extra=body_schema(RecalculateParams))
async def recalculate_usage(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    """Backend.AI answers ``{}`` when done; with ``background`` Workbay answers a ``task_id`` at once
    and reports per-agent progress as background-task events."""
    access.require_superadmin(who)
    params = await request_params(request, RecalculateParams)
    if not params.background:
        await st.reconciler.recalculate_usage()
        return {}

    async def work(progress) -> str:
        done = await st.reconciler.recalculate_usage(
            lambda n, total: progress.update(n, total, f"agent {n} of {total}"))
        return f"Recalculated the usage of {len(done)} agents."
    return {"task_id": st.bgtasks.start(who, "recalculate-usage", work)}


# -- admin: agents, resource groups, presets, images -------------------------------------------------
@router.get("/admin/agents", response_model=AgentItems)
async def list_agents(status: str | None = None, resource_group: str | None = None, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict:
    return items_of(await st.compute_admin.list_agents(who, status, resource_group))


class SchedulableBody(BaseModel):
    schedulable: bool


@router.patch("/admin/agents/{agent_id}", response_model=AgentOut)
async def update_agent(agent_id: str, body: SchedulableBody, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> dict:
    return (await st.compute_admin.set_schedulable(who, agent_id, body.schedulable)).as_json()


@router.get("/admin/resource-groups", response_model=ResourceGroupItems)
async def list_resource_groups(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return items_of(await st.compute_admin.list_resource_groups(who))


@router.post("/admin/resource-groups", status_code=201, response_model=ResourceGroupOut)
async def create_resource_group(body: NewResourceGroup, who: Actor = Depends(actor),
                                st: ManagerState = Depends(state)) -> dict:
    return (await st.compute_admin.create_resource_group(who, body)).as_json()


@router.get("/admin/resource-groups/{name}", response_model=ResourceGroupOut)
async def get_resource_group(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.compute_admin.get_resource_group(who, name)).as_json()


@router.patch("/admin/resource-groups/{name}", response_model=ResourceGroupOut)
async def update_resource_group(name: str, body: ResourceGroupFields, who: Actor = Depends(actor),
                                st: ManagerState = Depends(state)) -> dict:
    return (await st.compute_admin.update_resource_group(who, name, body)).as_json()


@router.delete("/admin/resource-groups/{name}", status_code=204, response_class=Response)
async def delete_resource_group(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.compute_admin.delete_resource_group(who, name)
    return Response(status_code=204)


@router.get("/admin/resource-presets", response_model=PresetItems)
async def list_presets(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    access.require_reader(who)
    return items_of(await st.compute_admin.list_presets())


@router.post("/admin/resource-presets", status_code=201, response_model=PresetOut)
async def create_preset(body: NewPreset, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.compute_admin.create_preset(who, body)).as_json()


@router.patch("/admin/resource-presets/{name}", response_model=PresetOut)
async def update_preset(name: str, body: PresetFields, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return (await st.compute_admin.update_preset(who, name, body)).as_json()


@router.delete("/admin/resource-presets/{name}", status_code=204, response_class=Response)
async def delete_preset(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.compute_admin.delete_preset(who, name)
    return Response(status_code=204)


@router.get("/images", response_model=ImageItems)
async def list_images(installed: bool = False, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return items_of(await st.compute_admin.list_images(who, installed))


@router.patch("/admin/images/{ref:path}", response_model=ImageOut)  # names have slashes: localhost/workbay/python:3.11
async def update_image(ref: str, body: ImagePatch, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> dict:
    return (await st.compute_admin.update_image(who, ref, body)).as_json()


@router.post("/admin/images/rescan", response_model=RescanOut)
async def rescan_images(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    found = await st.compute_admin.rescan_images(who)
    return {"scanned_agents": found.scanned_agents,
            "failed": [{"agent": f.agent, "error": f.error} for f in found.failed],
            "images": [i.as_json() for i in found.images]}
