"""Administration: users, keypairs, domains, projects, resource policies, settings."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ConfigDict

from workbay.common.http import json_body, request_params
from workbay.manager.services.access import Actor
from workbay.manager.services.auth import LOGIN_EPOCH_HEADER
from workbay.manager.services.domains import DomainPatch, NewDomain
from workbay.manager.services.keypairs import KeypairPatch, NewKeypair
from workbay.manager.services.policies import (
    KeypairPolicyFields,
    PolicyKind,
    ProjectPolicyFields,
    UserPolicyFields,
)
from workbay.manager.services.projects import Members, NewProject, ProjectPatch
from workbay.manager.services.serialize import Page
from workbay.manager.services.settings import SettingsPatch
from workbay.manager.services.users import NewUser, UserPatch
from workbay.manager.state import ManagerState

from .deps import actor, state
from .wire import WireModel, WireRoute, body_schema, items_of


# -- what goes on the wire ---------------------------------------------------------------------
class ProjectRef(WireModel):
    id: str
    name: str


class KeypairOut(WireModel):
    access_key: str
    secret_key: str | None  # only where the caller may see it
    user_id: str
    user_email: str
    is_active: bool
    is_admin: bool
    is_default: bool
    rate_limit: int
    resource_policy: str
    num_queries: int | None
    has_ever_run_session: bool | None
    ssh_public_key: str | None
    created_at: str | None
    last_used: str | None


class KeypairItems(WireModel):
    items: list[KeypairOut]
    total_count: int


class UserOut(WireModel):
    uuid: str
    email: str
    username: str
    full_name: str | None
    description: str | None
    status: str
    status_info: str | None
    domain_name: str
    role: str
    need_password_change: bool | None
    sudo_session_enabled: bool | None
    totp_activated: bool | None
    resource_policy: str
    container_uid: int | None
    container_gid: int | None
    allowed_client_ip: list[str] | None
    projects: list[ProjectRef]
    created_at: str | None
    modified_at: str | None


class NewUserOut(UserOut):
    keypair: KeypairOut  # the new user's default keypair, with its secret key


class UserItems(WireModel):
    items: list[UserOut]
    total_count: int


class DomainOut(WireModel):
    name: str
    description: str | None
    is_active: bool
    total_resource_slots: dict[str, Any] | None
    allowed_folder_hosts: dict[str, Any] | None
    allowed_docker_registries: list[str] | None
    created_at: str | None
    modified_at: str | None


class DomainItems(WireModel):
    items: list[DomainOut]
    total_count: int


class ProjectOut(WireModel):
    id: str
    name: str
    description: str | None
    is_active: bool
    domain_name: str
    type: str
    total_resource_slots: dict[str, Any] | None
    allowed_folder_hosts: dict[str, Any] | None
    resource_policy: str | None
    created_at: str | None
    modified_at: str | None
    member_count: int | None = None


class ProjectItems(WireModel):
    items: list[ProjectOut]
    total_count: int


class Added(WireModel):
    added: list[str]


class Removed(WireModel):
    removed: list[str]


class PolicyOut(WireModel):
    """A resource policy: its name and the limits of its kind (keypair, user or project)."""

    name: str
    created_at: str | None


class PolicyItems(WireModel):
    items: list[PolicyOut]
    total_count: int


class SettingsOut(WireModel):
    signup_enabled: bool
    signup_invitation_token: str | None


class PolicyBody(KeypairPolicyFields, UserPolicyFields, ProjectPolicyFields):
    """For the schema only: the fields of the three kinds (keypair, user, project) and ``name``.
    The service checks a body against its kind's own fields and refuses the others."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None


def _page(found: Page[Any]) -> dict[str, Any]:
    return {"items": [x.as_json() for x in found.items], "total_count": found.total_count}


router = APIRouter(prefix="/admin", tags=["admin"], route_class=WireRoute)
Limit = Query(50, ge=1, le=1000)
Offset = Query(0, ge=0, le=2**31 - 1)


# -- users -------------------------------------------------------------------------------------
@router.get("/users", response_model=UserItems)
async def list_users(status: str | None = None, q: str | None = None, domain: str | None = None,
                     limit: int = Limit, offset: int = Offset, who: Actor = Depends(actor),
                     st: ManagerState = Depends(state)) -> dict:
    return _page(await st.users.list(who, status, q, domain, limit, offset))


@router.post("/users", status_code=201, response_model=NewUserOut)
async def create_user(body: NewUser, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.users.create(who, body)).as_json()


@router.get("/users/{email}", response_model=UserOut)
async def get_user(email: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.users.get(who, email)).as_json()


@router.patch("/users/{email}", response_model=UserOut)
async def update_user(email: str, body: UserPatch, response: Response, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict:
    updated = await st.users.update(who, email, body)
    if body.password and updated.uuid == who.user_id:
        # An administrator's own password: their current webserver login carries over (the
        # others end), as with /auth/update-password.
        response.headers[LOGIN_EPOCH_HEADER] = await st.auth.current_login_epoch(who.user_id)
    return updated.as_json()


@router.delete("/users/{email}/totp", response_model=UserOut)
async def disable_user_totp(email: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.users.disable_totp(who, email)).as_json()


# -- keypairs ----------------------------------------------------------------------------------
@router.get("/keypairs", response_model=KeypairItems)
async def list_keypairs(is_active: bool | None = None, user_email: str | None = None, q: str | None = None,
                        limit: int = Limit, offset: int = Offset, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return _page(await st.keypairs.list(who, is_active, user_email, q, limit, offset))


@router.post("/keypairs", status_code=201, response_model=KeypairOut)
async def create_keypair(body: NewKeypair, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.keypairs.create(who, body)).as_json()


@router.get("/keypairs/{access_key}", response_model=KeypairOut)
async def get_keypair(access_key: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.keypairs.get(who, access_key)).as_json()


@router.patch("/keypairs/{access_key}", response_model=KeypairOut)
async def update_keypair(access_key: str, body: KeypairPatch, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> dict:
    return (await st.keypairs.update(who, access_key, body)).as_json()


@router.delete("/keypairs/{access_key}", status_code=204, response_class=Response)
async def delete_keypair(access_key: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.keypairs.delete(who, access_key)
    return Response(status_code=204)


# -- domains -----------------------------------------------------------------------------------
@router.get("/domains", response_model=DomainItems)
async def list_domains(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return items_of(await st.domains.list(who))


@router.post("/domains", status_code=201, response_model=DomainOut)
async def create_domain(body: NewDomain, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.domains.create(who, body)).as_json()


@router.get("/domains/{name}", response_model=DomainOut)
async def get_domain(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.domains.get(who, name)).as_json()


@router.patch("/domains/{name}", response_model=DomainOut)
async def update_domain(name: str, body: DomainPatch, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return (await st.domains.update(who, name, body)).as_json()


@router.delete("/domains/{name}", status_code=204, response_class=Response)
async def delete_domain(name: str, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> Response:
    await st.domains.delete(who, name)
    return Response(status_code=204)


# -- projects ----------------------------------------------------------------------------------
@router.get("/projects", response_model=ProjectItems)
async def list_projects(domain: str | None = None, q: str | None = None, limit: int = Limit,
                        offset: int = Offset, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return _page(await st.projects.list(who, domain, q, limit, offset))


@router.post("/projects", status_code=201, response_model=ProjectOut)
async def create_project(body: NewProject, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.projects.create(who, body)).as_json()


@router.get("/projects/{project_id}", response_model=ProjectOut)
async def get_project(project_id: uuid.UUID, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.projects.get(who, project_id)).as_json()


@router.patch("/projects/{project_id}", response_model=ProjectOut)
async def update_project(project_id: uuid.UUID, body: ProjectPatch, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> dict:
    return (await st.projects.update(who, project_id, body)).as_json()


@router.delete("/projects/{project_id}", status_code=204, response_class=Response)
async def delete_project(project_id: uuid.UUID, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> Response:
    await st.projects.delete(who, project_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/members", response_model=UserItems)
async def list_members(project_id: uuid.UUID, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return items_of(await st.projects.members(who, project_id))


@router.post("/projects/{project_id}/members", response_model=Added)
async def add_members(project_id: uuid.UUID, body: Members, who: Actor = Depends(actor),
                      st: ManagerState = Depends(state)) -> dict:
    return {"added": await st.projects.add_members(who, project_id, body.emails)}


@router.delete("/projects/{project_id}/members", response_model=Removed, openapi_extra=body_schema(Members, required=True))
async def remove_members(project_id: uuid.UUID, request: Request, who: Actor = Depends(actor),
                         st: ManagerState = Depends(state)) -> dict:
    body = await request_params(request, Members)
    return {"removed": await st.projects.remove_members(who, project_id, body.emails)}


# -- resource policies -------------------------------------------------------------------------
@router.get("/resource-policies/{kind}", response_model=PolicyItems)
async def list_policies(kind: PolicyKind, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return items_of(await st.policies.list(who, kind))


@router.post("/resource-policies/{kind}", status_code=201, response_model=PolicyOut, openapi_extra=body_schema(PolicyBody, required=True))
async def create_policy(kind: PolicyKind, request: Request, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return (await st.policies.create(who, kind, await json_body(request))).as_json()


@router.get("/resource-policies/{kind}/{name}", response_model=PolicyOut)
async def get_policy(kind: PolicyKind, name: str, who: Actor = Depends(actor),
                     st: ManagerState = Depends(state)) -> dict:
    return (await st.policies.get(who, kind, name)).as_json()


@router.patch("/resource-policies/{kind}/{name}", response_model=PolicyOut, openapi_extra=body_schema(PolicyBody, required=True))
async def update_policy(kind: PolicyKind, name: str, request: Request, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> dict:
    return (await st.policies.update(who, kind, name, await json_body(request))).as_json()


@router.delete("/resource-policies/{kind}/{name}", status_code=204, response_class=Response)
async def delete_policy(kind: PolicyKind, name: str, who: Actor = Depends(actor),
                        st: ManagerState = Depends(state)) -> Response:
    await st.policies.delete(who, kind, name)
    return Response(status_code=204)


# -- system settings ---------------------------------------------------------------------------
@router.get("/settings", response_model=SettingsOut)
async def get_settings(who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return (await st.settings.get(who)).as_json()


@router.patch("/settings", response_model=SettingsOut)
async def update_settings(body: SettingsPatch, who: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> dict:
    return (await st.settings.update(who, body)).as_json()
