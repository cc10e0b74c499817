"""Administration: users, keypairs, domains, projects, resource policies, settings."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Query, Request, Response

from workbay.common.http import json_body, request_params
from workbay.manager.services.access import Actor
from workbay.manager.services.auth import LOGIN_EPOCH_HEADER
from workbay.manager.services.domains import DomainPatch, NewDomain
from workbay.manager.services.keypairs import KeypairPatch, NewKeypair
from workbay.manager.services.policies import PolicyKind
from workbay.manager.services.projects import Members, NewProject, ProjectPatch
from workbay.manager.services.settings import SettingsPatch
from workbay.manager.services.users import NewUser, UserPatch
from workbay.manager.state import ManagerState

from .deps import actor, state

router = APIRouter(prefix="/admin", tags=["admin"])
Limit = Query(50, ge=1, le=1000)
Offset = Query(0, ge=0, le=2**31 - 1)


# -- users -------------------------------------------------------------------------------------
@router.get("/users")
async def list_users(status: str | None = None, q: str | None = None, domain: str | None = None,
                     limit: int = Limit, offset: int = Offset, who: Actor = Depends(actor),
                     st: ManagerState = Depends(state)) -> dict:
    return await st.users.list(who, status, q, domain, limit, offset)


@router.post("/users", status_code=201)
async def create_user(body: NewUser, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.users.create(who, body)


@router.get("/users/{email}")
async def get_user(email: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.users.get(who, email)


@router.patch("/users/{email}")
async def update_user(email: str, body: UserPatch, response: Response, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict:
    updated = await st.users.update(who, email, body)
    if body.password and updated.get("uuid") == str(who.user_id):
        # An administrator's own password: their current webserver login carries over (the
        # others end), as with /auth/update-password.
        response.headers[LOGIN_EPOCH_HEADER] = await st.auth.current_login_epoch(who.user_id)
    return updated


@router.delete("/users/{email}/totp")
async def disable_user_totp(email: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.users.disable_totp(who, email)


# -- keypairs ----------------------------------------------------------------------------------
@router.get("/keypairs")
async def list_keypairs(is_active: bool | None = None, user_email: str | None = None, q: str | None = None,
                        limit: int = Limit, offset: int = Offset, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return await st.keypairs.list(who, is_active, user_email, q, limit, offset)


@router.post("/keypairs", status_code=201)
async def create_keypair(body: NewKeypair, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.keypairs.create(who, body)


@router.get("/keypairs/{access_key}")
async def get_keypair(access_key: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.keypairs.get(who, access_key)


@router.patch("/keypairs/{access_key}")
async def update_keypair(access_key: str, body: KeypairPatch, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> dict:
    return await st.keypairs.update(who, access_key, body)


@router.delete("/keypairs/{access_key}", status_code=204)
async def delete_keypair(access_key: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.keypairs.delete(who, access_key)
    return Response(status_code=204)


# -- domains -----------------------------------------------------------------------------------
@router.get("/domains")
async def list_domains(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.domains.list(who)


@router.post("/domains", status_code=201)
async def create_domain(body: NewDomain, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.domains.create(who, body)


@router.get("/domains/{name}")
async def get_domain(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.domains.get(who, name)


@router.patch("/domains/{name}")
async def update_domain(name: str, body: DomainPatch, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return await st.domains.update(who, name, body)


@router.delete("/domains/{name}", status_code=204)
async def delete_domain(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.domains.delete(who, name)
    return Response(status_code=204)


# -- projects ----------------------------------------------------------------------------------
@router.get("/projects")
async def list_projects(domain: str | None = None, q: str | None = None, limit: int = Limit,
                        offset: int = Offset, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return await st.projects.list(who, domain, q, limit, offset)


@router.post("/projects", status_code=201)
async def create_project(body: NewProject, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.projects.create(who, body)


@router.get("/projects/{project_id}")
async def get_project(project_id: uuid.UUID, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.projects.get(who, project_id)


@router.patch("/projects/{project_id}")
async def update_project(project_id: uuid.UUID, body: ProjectPatch, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> dict:
    return await st.projects.update(who, project_id, body)


@router.delete("/projects/{project_id}", status_code=204)
async def delete_project(project_id: uuid.UUID, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> Response:
    await st.projects.delete(who, project_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/members")
async def list_members(project_id: uuid.UUID, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.projects.members(who, project_id)


@router.post("/projects/{project_id}/members")
async def add_members(project_id: uuid.UUID, body: Members, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict:
    return await st.projects.add_members(who, project_id, body.emails)


@router.delete("/projects/{project_id}/members")
async def remove_members(project_id: uuid.UUID, request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> dict:
    body = await request_params(request, Members)
    return await st.projects.remove_members(who, project_id, body.emails)


# -- resource policies -------------------------------------------------------------------------
@router.get("/resource-policies/{kind}")
async def list_policies(kind: PolicyKind, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.policies.list(who, kind)


@router.post("/resource-policies/{kind}", status_code=201)
async def create_policy(kind: PolicyKind, request: Request, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return await st.policies.create(who, kind, await json_body(request))


@router.get("/resource-policies/{kind}/{name}")
async def get_policy(kind: PolicyKind, name: str, who: Actor = Depends(actor),
                     st: ManagerState = Depends(state)) -> dict:
    return await st.policies.get(who, kind, name)


@router.patch("/resource-policies/{kind}/{name}")
async def update_policy(kind: PolicyKind, name: str, request: Request, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return await st.policies.update(who, kind, name, await json_body(request))


@router.delete("/resource-policies/{kind}/{name}", status_code=204)
async def delete_policy(kind: PolicyKind, name: str, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> Response:
    await st.policies.delete(who, kind, name)
    return Response(status_code=204)


# -- system settings ---------------------------------------------------------------------------
@router.get("/settings")
async def get_settings(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.settings.get(who)


@router.patch("/settings")
async def update_settings(body: SettingsPatch, who: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> dict:
    return await st.settings.update(who, body)
