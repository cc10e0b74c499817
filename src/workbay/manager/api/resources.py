"""/resource/* (Backend.AI) and the compute administration endpoints (Workbay REST)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

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
from workbay.manager.state import ManagerState

from .deps import actor, state

router = APIRouter(tags=["resources"])


@router.get("/resource/presets")
async def presets(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return {"presets": await st.compute_admin.list_presets()}


class CheckPresetsParams(BaseModel):
    scaling_group: str | None = None
    group: str | None = None
    owner_access_key: str | None = None


@router.post("/resource/check-presets")
async def check_presets(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    params = await request_params(request, CheckPresetsParams)
    listed = await st.compute_admin.list_presets(params.scaling_group)
    return await st.usage.check_presets(who, params.scaling_group, params.group, listed,
                                        params.owner_access_key)


class SummaryParams(BaseModel):
    group: str | None = None
    scaling_group: str | None = None


@router.get("/resource/summary")
async def resource_summary(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, SummaryParams)
    return await st.resource_summary.summary(who, p.group, p.scaling_group)


@router.get("/resource/agent-summary")
async def agent_summary(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    p = await request_params(request, SummaryParams)
    return await st.resource_summary.agents(who, p.group, p.scaling_group)


class RecalculateParams(BaseModel):
    background: bool = False


@router.post("/resource/recalculate-usage")
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
@router.get("/admin/agents")
async def list_agents(status: str | None = None, resource_group: str | None = None, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.list_agents(who, status, resource_group)


class SchedulableBody(BaseModel):
    schedulable: bool


@router.patch("/admin/agents/{agent_id}")
async def update_agent(agent_id: str, body: SchedulableBody, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.set_schedulable(who, agent_id, body.schedulable)


@router.get("/admin/resource-groups")
async def list_resource_groups(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.list_resource_groups(who)


@router.post("/admin/resource-groups", status_code=201)
async def create_resource_group(body: NewResourceGroup, who: Actor = Depends(actor),
                                st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.create_resource_group(who, body)


@router.get("/admin/resource-groups/{name}")
async def get_resource_group(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.get_resource_group(who, name)


@router.patch("/admin/resource-groups/{name}")
async def update_resource_group(name: str, body: ResourceGroupFields, who: Actor = Depends(actor),
                                st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.update_resource_group(who, name, body)


@router.delete("/admin/resource-groups/{name}", status_code=204)
async def delete_resource_group(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.compute_admin.delete_resource_group(who, name)
    return Response(status_code=204)


@router.get("/admin/resource-presets")
async def list_presets(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    access.require_reader(who)
    items = await st.compute_admin.list_presets()
    return {"items": items, "total_count": len(items)}


@router.post("/admin/resource-presets", status_code=201)
async def create_preset(body: NewPreset, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.create_preset(who, body)


@router.patch("/admin/resource-presets/{name}")
async def update_preset(name: str, body: PresetFields, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.update_preset(who, name, body)


@router.delete("/admin/resource-presets/{name}", status_code=204)
async def delete_preset(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.compute_admin.delete_preset(who, name)
    return Response(status_code=204)


@router.get("/images")
async def list_images(installed: bool = False, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.list_images(who, installed)


@router.patch("/admin/images/{ref:path}")  # names have slashes: localhost/workbay/python:3.11
async def update_image(ref: str, body: ImagePatch, who: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.update_image(who, ref, body)


@router.post("/admin/images/rescan")
async def rescan_images(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.compute_admin.rescan_images(who)
