"""Helpers for declaring response bodies on the wire.

Routes declare ``response_model`` so ``/openapi.json`` documents every answer and the schema fuzzer
checks it.  ``WireRoute`` serializes a handler's dict through its model *without adding* fields the
handler left out (``response_model_exclude_unset``): declaring a body never changes what Backend.AI's
clients receive.  ``WireModel`` keeps fields a model does not name (Backend.AI's objects grow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict


class WireRoute(APIRoute):
    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        kwargs["response_model_exclude_unset"] = True
        super().__init__(path, endpoint, **kwargs)


class WireModel(BaseModel):
    """A JSON object on the wire: the named fields are checked, others pass through unchanged."""

    model_config = ConfigDict(extra="allow")


class Empty(WireModel):
    """``{}`` (Backend.AI's answer when there is nothing to say)."""


class Items(WireModel):
    items: list[dict[str, Any]]
    total_count: int


# JSON numbers as they are: ``int | float`` keeps an integer an integer (a bare float field would
# turn 0 into 0.0 on the wire).
Number = int | float


def body_schema(model: type[BaseModel], required: bool = False) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its parameters Backend.AI's way (``request_params``:
    the JSON body when there is one, else the query string), so clients and the fuzzer see the shape."""
    return {"requestBody": {"required": required, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


def query_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a GET route that reads a flat model with ``request_params``: its fields
    as optional query parameters."""
    schema = model.model_json_schema()
    return {"parameters": [{"name": name, "in": "query", "required": False, "schema": field}
                           for name, field in schema.get("properties", {}).items()]}


def event_stream(description: str) -> dict[int | str, dict[str, Any]]:
    """``responses`` for a Server-Sent Events route."""
    return {200: {"description": description, "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


class Problem(BaseModel):
    """An error: JSON problem details with Backend.AI's error type URIs (``msg`` and ``data`` say more)."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    msg: str | None = None
    data: Any = None


# Every operation may answer these; the app declares them once for all routes.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "The request was refused (problem details).",
            "content": {"application/problem+json": {"schema": Problem.model_json_schema()}}},
}


class JSONable(Protocol):
    """A service's typed result that writes its own wire JSON."""

    def as_json(self) -> dict[str, Any]: ...


def items_of(found: Sequence[JSONable]) -> dict[str, Any]:
    """A whole list on the wire: ``{"items": [...], "total_count": n}``."""
    return {"items": [x.as_json() for x in found], "total_count": len(found)}
