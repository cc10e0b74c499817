"""POST /admin/gql: Backend.AI's GraphQL endpoint, read-only, for the official client's list commands."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from workbay.common.http import request_params
from workbay.manager.services.access import Actor
from workbay.manager.services.gql import GraphQLRequest
from workbay.manager.state import ManagerState

from .deps import actor, state

router = APIRouter(tags=["graphql"])


# The body is read by request_params (Backend.AI's way); documented here so clients and the schema
# fuzzer see its shape.
BODY_SCHEMA = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": GraphQLRequest.model_json_schema()}}}}


@router.post("/admin/gql", openapi_extra=BODY_SCHEMA)
async def graphql_query(request: Request, who: Actor = Depends(actor), st: ManagerState = Depends(state)) -> dict:
    """``{"query", "variables", "operationName"}`` -> ``{"data": …}``; errors answer 400 graphql-error."""
    return await st.gql.execute(who, await request_params(request, GraphQLRequest))
