"""POST /services/_/validate (MS-3): the create body of POST /services → a dry run of one replica,
streamed as Server-Sent Events (``step``, ``log``, then ``verdict``; docs/serving.md "API").

The body is checked like a create (a bad one is a 400 naming its field before the stream starts);
then one replica session starts, and it is terminated when the stream ends, however it ends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse

from workbay.common.errors import BackendError
from workbay.common.http import loads_object, validation_error
from workbay.manager.services.access import Actor
from workbay.manager.services.serving_request import CreateService
from workbay.manager.services.session_request import FIELD_ERRORS
from workbay.manager.state import ManagerState

from .deps import actor, state
from .session_wire import inline_body_schema, spell_error, wire_path
from .wire import event_stream

router = APIRouter(tags=["services"])


async def _request(request: Request) -> tuple[CreateService, dict[str, Any]]:
    raw: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body:
        raw.update(loads_object(body))
    try:
        return CreateService.model_validate(raw), raw
    except ValidationError as e:
        err = validation_error(list(e.errors()))
        data = err.data if isinstance(err.data, dict) else {}
        err.extra[FIELD_ERRORS] = {wire_path(CreateService, k, raw): v for k, v in data.items() if k != "_"}
        raise err from e


@router.post("/services/_/validate", response_class=EventSourceResponse,
             openapi_extra=inline_body_schema(CreateService, True),
             responses=event_stream("Workbay: a dry run of one replica (Server-Sent Events): `step` "
                                    "{step, status}, `log` {line}, then `verdict` {ok, step?, message, log?}."))
async def validate_service(request: Request, who: Actor = Depends(actor),
                           st: ManagerState = Depends(state)) -> EventSourceResponse:
    req, raw = await _request(request)
    try:
        svc = await st.serving.draft(who, req)
    except BackendError as err:
        raise spell_error(err, CreateService, raw) from None

    async def stream() -> AsyncIterator[dict[str, str]]:
        events = st.serving_validator.run(svc)
        try:
            async for name, data in events:
                yield {"event": name, "data": json.dumps(data)}
        finally:
            await events.aclose()  # type: ignore[attr-defined]  # ends the dry run's session

    return EventSourceResponse(stream(), ping=15)
