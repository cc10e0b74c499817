"""Helpers for declaring response bodies on the wire.

Routes declare ``response_model`` so ``/openapi.json`` documents every answer and the schema fuzzer
checks it.  ``WireRoute`` serializes a handler's dict through its model *without adding* fields the
handler left out (``response_model_exclude_unset``): declaring a body never changes what Backend.AI's
clients receive.  ``WireModel`` keeps fields a model does not name (Backend.AI's objects grow)."""

from __future__ import annotations

from typing import Any

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
