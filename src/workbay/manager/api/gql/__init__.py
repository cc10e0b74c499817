"""POST /admin/gql: Backend.AI's GraphQL endpoint, read-only, for the official client's list commands.

A protocol adapter like the REST routes: ``schema`` holds the SDL (Backend.AI's names), ``resolvers``
turns fields into service calls and service results into GraphQL nodes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from workbay.common.http import request_params
from workbay.manager.services.access import Actor
from workbay.manager.state import ManagerState

from ..deps import actor, state
from ..wire import WireModel, WireRoute, body_schema
from .resolvers import GraphQLExecutor, GraphQLRequest

router = APIRouter(tags=["graphql"], route_class=WireRoute)


class GraphQLAnswer(WireModel):
    data: dict[str, Any] | None


# The body is read by request_params (Backend.AI's way); documented here so clients and the schema
# fuzzer see its shape.
@router.post("/admin/gql", response_model=GraphQLAnswer, openapi_extra=body_schema(GraphQLRequest, required=True))
async def graphql_query(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    """``{"query", "variables", "operationName"}`` -> ``{"data": …}``; errors answer 400 graphql-error."""
    return await GraphQLExecutor(st).execute(who, await request_params(request, GraphQLRequest))
