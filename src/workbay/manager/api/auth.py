"""/auth/* (Backend.AI) and the TOTP additions."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from workbay.common.errors import GenericBadRequest
from workbay.common.http import json_body, request_params
from workbay.manager.services.access import Actor
from workbay.manager.services.auth import LOGIN_EPOCH_HEADER
from workbay.manager.state import ManagerState

from .deps import actor, state
from .wire import Empty, WireModel, WireRoute, body_schema, query_schema

router = APIRouter(tags=["auth"], route_class=WireRoute)


# -- what goes on the wire ---------------------------------------------------------------------
class LoginData(WireModel):
    access_key: str
    secret_key: str
    role: str
    status: str
    need_password_change: bool | None
    login_epoch: str


class AuthorizeOut(WireModel):
    data: LoginData


class NewKeys(WireModel):
    access_key: str
    secret_key: str


class SSHPublicKey(WireModel):
    ssh_public_key: str | None


class SSHKeypairOut(WireModel):
    ssh_public_key: str
    ssh_private_key: str


class RoleOut(WireModel):
    """Backend.AI's names: ``group_role`` is the role in the project asked about."""

    global_role: str
    domain_role: str
    group_role: str | None = None


class AuthTestOut(WireModel):
    authorized: str
    echo: Any = None


class TOTPState(WireModel):
    enabled: bool


class TOTPRegistration(WireModel):
    secret: str
    uri: str
    qr_svg: str


class AuthorizeBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "keypair"
    domain: str | None = "default"
    username: str
    password: str
    otp: str | None = None


@router.post("/auth/authorize", response_model=AuthorizeOut)
async def authorize(body: AuthorizeBody, request: Request, st: ManagerState = Depends(state)) -> dict:
    if body.type != "keypair":
        raise GenericBadRequest("Unsupported authorization type.")
    client = st.auth.client_address(request.client.host if request.client else None,
                                    request.headers.get("x-forwarded-for"))
    data = await st.auth.authorize(body.domain or "", body.username.lower(), body.password, body.otp,
                                   client=client)
    return {"data": data}


class SignupBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    domain: str | None = "default"
    email: str = Field(max_length=64)
    password: str
    username: str | None = Field(None, max_length=64)
    full_name: str | None = Field("", max_length=64)
    description: str | None = ""
    invitation_token: str | None = None


@router.post("/auth/signup", status_code=201, response_model=NewKeys)
async def signup(body: SignupBody, st: ManagerState = Depends(state)) -> dict:
    return await st.auth.signup(body.domain or "default", body.email.lower(), body.password,
                                body.username, body.full_name or "", body.description or "",
                                body.invitation_token)


class UpdatePasswordBody(BaseModel):
    old_password: str
    new_password: str
    new_password2: str


@router.post("/auth/update-password", response_model=Empty)
async def update_password(body: UpdatePasswordBody, response: Response, me: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> dict:
    epoch = await st.auth.update_password(me, body.old_password, body.new_password, body.new_password2)
    # The webserver carries the caller's own login over to the new password; others end.
    response.headers[LOGIN_EPOCH_HEADER] = epoch
    return {}


@router.post("/auth/update-password-no-auth", status_code=201, response_model=Empty)
async def update_password_no_auth() -> dict:
    raise GenericBadRequest("Password aging is not configured on this server.")


class FullNameBody(BaseModel):
    full_name: str = Field(max_length=64)


@router.post("/auth/update-full-name", response_model=Empty)
async def update_full_name(body: FullNameBody, me: Actor = Depends(actor),
                           st: ManagerState = Depends(state)) -> dict:
    await st.auth.update_full_name(me, body.full_name)
    return {}


@router.get("/auth/ssh-keypair", response_model=SSHPublicKey)
async def get_ssh_keypair(me: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return {"ssh_public_key": await st.auth.get_ssh_public_key(me)}


@router.patch("/auth/ssh-keypair", response_model=SSHKeypairOut)
async def regenerate_ssh_keypair(me: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.auth.set_ssh_keypair(me)


class SSHKeypairBody(BaseModel):
    pubkey: str = Field(min_length=1, max_length=16384)
    privkey: str = Field(min_length=1, max_length=16384)


@router.post("/auth/ssh-keypair", response_model=SSHKeypairOut)
async def set_ssh_keypair(body: SSHKeypairBody, me: Actor = Depends(actor),
                          st: ManagerState = Depends(state)) -> dict:
    return await st.auth.set_ssh_keypair(me, body.pubkey, body.privkey)


class RoleParams(BaseModel):
    group: uuid.UUID | None = None


@router.get("/auth/role", response_model=RoleOut, openapi_extra=query_schema(RoleParams))
async def role(request: Request, me: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    params = await request_params(request, RoleParams)
    roles = await st.auth.role(me, params.group)
    out: dict[str, Any] = {"global_role": roles.global_role, "domain_role": roles.domain_role}
    if roles.project_role is not None:
        out["group_role"] = roles.project_role
    return out


@router.get("/auth", response_model=AuthTestOut)
@router.post("/auth", response_model=AuthTestOut)
@router.get("/auth/test", response_model=AuthTestOut)
@router.post("/auth/test", response_model=AuthTestOut)
async def auth_test(request: Request, me: Actor = Depends(actor)) -> dict:
    params: dict[str, Any] = {**dict(request.query_params), **(await json_body(request))}
    return {"authorized": "yes", "echo": params.get("echo")}


class OTPBody(BaseModel):
    otp: str = Field(min_length=6, max_length=8)


@router.get("/auth/totp", response_model=TOTPState)
async def totp_status(me: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.auth.totp_status(me)


@router.post("/auth/totp", response_model=TOTPRegistration)
async def totp_register(me: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.auth.totp_register(me)


@router.post("/auth/totp/confirm", response_model=TOTPState)
async def totp_confirm(body: OTPBody, me: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    return await st.auth.totp_confirm(me, body.otp)


@router.delete("/auth/totp", response_model=TOTPState, openapi_extra=body_schema(OTPBody, required=True))
async def totp_disable(request: Request, me: Actor = Depends(actor),
                       st: ManagerState = Depends(state)) -> dict:
    params = await request_params(request, OTPBody)
    return await st.auth.totp_disable(me, params.otp)
