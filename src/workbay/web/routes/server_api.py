"""The webserver login API (docs/backendai-api.md §4) and the health check."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbay.client.sdk import APIError
from workbay.common.errors import GenericBadRequest, InvalidAPIParameters
from workbay.common.http import problem_response, validation_error

from ..context import current_session, web_state
from ..cookies import SESSION_COOKIE, clear_cookie, set_cookie
from ..errors import BadGateway, locked_out
from ..forwarding import client_address
from ..login import Outcome

router = APIRouter(tags=["webserver"])


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)
    otp: str | None = Field(None, max_length=16)

    @model_validator(mode="before")
    @classmethod
    def _email_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "username" not in data and "email" in data:
            data = {**data, "username": data["email"]}
        return data


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as e:
        raise InvalidAPIParameters("Malformed JSON body.") from e
    except RecursionError as e:  # e.g. 50,000 nested [
        raise InvalidAPIParameters("The JSON body is nested too deeply.") from e
    if not isinstance(body, dict):
        raise InvalidAPIParameters("The JSON body must be an object.")
    return body


@router.post("/server/login")
async def login(request: Request) -> Response:
    st = web_state(request)
    try:
        if await current_session(request) is not None:
            raise GenericBadRequest("You have already logged in.", title="Already logged in.")
        try:
            body = LoginBody.model_validate(await _json_object(request))
        except ValidationError as e:
            raise validation_error(list(e.errors())) from e
    except (GenericBadRequest, InvalidAPIParameters) as err:
        return problem_response(err)
    result = await st.logins.login(body.username, body.password, body.otp, client=client_address(request))
    if result.outcome is Outcome.LOCKED and result.lock:
        return problem_response(locked_out(result.lock))
    if result.outcome is Outcome.UNAVAILABLE:
        return problem_response(BadGateway())
    if result.outcome is not Outcome.OK or result.session is None:
        return JSONResponse({"authenticated": False, "data": result.error})
    session = result.session
    response = JSONResponse({"authenticated": True, "data": {
        "access_key": session.access_key, "role": session.role, "status": session.status,
        "email": session.email, "need_password_change": session.need_password_change}})
    set_cookie(response, request, SESSION_COOKIE, st.signer.sign(session.id))
    return response


@router.post("/server/login-check")
async def login_check(request: Request) -> dict:
    session = await current_session(request)
    if session is None:
        return {"authenticated": False, "data": None, "session_id": None}
    return {"authenticated": True, "session_id": session.id, "data": {
        "access_key": session.access_key, "role": session.role, "status": session.status,
        "email": session.email}}


@router.post("/server/logout", status_code=201)
async def logout(request: Request) -> Response:
    await web_state(request).logins.logout(await current_session(request))
    response = Response(status_code=201)
    clear_cookie(response, request, SESSION_COOKIE)
    return response


@router.post("/server/update-password-no-auth")
async def update_password_no_auth(request: Request) -> Response:
    """Passed through to the manager (it decides whether password aging allows it)."""
    try:
        body = await _json_object(request)
    except InvalidAPIParameters as err:
        return problem_response(err)
    body.setdefault("domain", None)
    try:
        async with web_state(request).gateway.client() as api:
            resp = await api.request("POST", "/auth/update-password-no-auth", json=body, raw=True)
    except APIError as err:
        return JSONResponse(err.body, status_code=err.status, media_type="application/problem+json")
    except httpx.TransportError:  # the manager did not answer
        return problem_response(BadGateway())
    return Response(resp.content, status_code=resp.status_code,
                    media_type=resp.headers.get("content-type", "application/json"))


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """200 once the webserver has started and the manager answers."""
    st = web_state(request)
    if not st.started:
        return JSONResponse({"status": "starting", "component": "webserver"}, status_code=503)
    try:
        async with st.gateway.client() as api:
            await api.get("/")
    except (APIError, httpx.TransportError):
        return JSONResponse({"status": "unavailable", "component": "webserver",
                             "manager": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "component": "webserver", "manager": "ok"})
