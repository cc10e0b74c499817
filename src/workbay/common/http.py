"""FastAPI glue shared by every service: problem+json handlers and body-or-query parameters."""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import BackendError, InternalServerError, InvalidAPIParameters, MethodNotAllowed, URLNotFound

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class ProblemResponse(JSONResponse):
    media_type = "application/problem+json"

    def render(self, content: Any) -> bytes:
        # ASCII escapes: an error that quotes the client's input can always be sent.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":"), default=str).encode()


def problem_response(err: BackendError) -> JSONResponse:
    return ProblemResponse(err.body(), status_code=err.status, headers=err.headers)


def _validation_data(errors: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = {}
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        # pydantic prefixes our own validators' messages with "Value error, "; users need only ours
        data[".".join(loc) or "_"] = str(e.get("msg", "invalid")).removeprefix("Value error, ")
    return data


def validation_error(errors: list[dict[str, Any]]) -> InvalidAPIParameters:
    data = _validation_data(errors)
    msg = "; ".join(f"{k}: {v}" for k, v in data.items())
    return InvalidAPIParameters(msg, data=data)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BackendError)
    async def _backend(_: Request, exc: BackendError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(validation_error(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return problem_response(URLNotFound())
        if exc.status_code == 405:
            return problem_response(MethodNotAllowed())
        err = BackendError(str(exc.detail))
        err.status = exc.status_code
        return problem_response(err)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(InternalServerError())


def loads_object(body: bytes) -> dict[str, Any]:
    """A JSON object from a request body, or InvalidAPIParameters saying what is wrong."""
    try:
        parsed = json.loads(body)
    except ValueError as e:
        raise InvalidAPIParameters("Malformed JSON body.") from e
    if not isinstance(parsed, dict):
        raise InvalidAPIParameters("The JSON body must be an object.")
    try:  # JSON can escape lone surrogates ("\\ud800"), which no database or answer can hold
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidAPIParameters("The JSON body holds text that is not valid Unicode.") from e
    return parsed


async def request_params(request: Request, model: type[M]) -> M:
    """Backend.AI reads parameters from the JSON body when there is one (any method), else from
    the query string."""
    raw: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body:
        raw.update(loads_object(body))
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise validation_error(list(e.errors())) from e


async def json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    return loads_object(body)
