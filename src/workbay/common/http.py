"""FastAPI glue shared by every service: problem+json handlers, body-or-query parameters, and
the request-body guard (a size cap answered 413 before anything is parsed, and a JSON nesting
limit answered 400 before ``json.loads`` can recurse)."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import (
    BackendError,
    GenericBadRequest,
    InternalServerError,
    InvalidAPIParameters,
    MethodNotAllowed,
    RequestTooLarge,
    URLNotFound,
)

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_BODY = 4 * 1024 * 1024  # bytes; the manager's is manager.max_request_body
MAX_JSON_DEPTH = 64  # nesting levels of arrays/objects in one JSON body; no API needs more


class ProblemResponse(JSONResponse):
    media_type = "application/problem+json"

    def render(self, content: Any) -> bytes:
        # ASCII escapes: an error that quotes the client's input can always be sent.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":"), default=str).encode()


def problem_response(err: BackendError) -> JSONResponse:
    return ProblemResponse(err.body(), status_code=err.status, headers=err.headers)


def _validation_data(errors: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = {}
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        # pydantic prefixes our own validators' messages with "Value error, "; users need only ours
        data[".".join(loc) or "_"] = str(e.get("msg", "invalid")).removeprefix("Value error, ")
    return data


def validation_error(errors: Sequence[Mapping[str, Any]]) -> InvalidAPIParameters:
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
        return problem_response(http_exception_error(exc.status_code, exc.detail, getattr(exc, "headers", None)))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(InternalServerError())


def http_exception_error(status: int, detail: Any, headers: dict[str, str] | None = None) -> BackendError:
    """The problem for an HTTPException raised by the framework (FastAPI's "There was an error
    parsing the body" is a 400): a 4xx gets a 4xx type, never ``internal-server-error``."""
    if status == 404:
        return URLNotFound()
    if status == 405:
        return MethodNotAllowed()
    text = str(detail) if detail else None
    if status == 413:
        err: BackendError = RequestTooLarge(text)
    elif status in (400, 422):
        err = InvalidAPIParameters(text)
    elif 400 <= status < 500:
        err = GenericBadRequest(text)
    else:
        err = BackendError(text)
    err.status = status
    if headers:
        err.headers = dict(headers)
    return err


# A string token, or an unterminated one up to the end: every quote matches once, so one linear pass.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))


def json_too_deep(body: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays/objects more than ``limit`` levels deep (brackets inside
    strings do not count).  Linear and cheap (C-speed passes): run before ``json.loads``, whose
    recursion a few thousand ``[`` exhaust."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth, chunk = 0, 65536
    for start in range(0, len(brackets), chunk):
        part = brackets[start:start + chunk]
        if max(accumulate(map(_DEPTH_STEP.__getitem__, part), initial=depth)) > limit:
            return True
        depth += part.count(b"[") + part.count(b"{") - part.count(b"]") - part.count(b"}")
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _OutOfRange(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 is valid JSON, and would read as infinity
        raise _OutOfRange(text[:40])
    return value


def loads_json(body: bytes | str) -> Any:
    """Strict JSON from a request: nesting at most MAX_JSON_DEPTH, no NaN/Infinity literals;
    InvalidAPIParameters saying what is wrong otherwise."""
    if json_too_deep(body):
        raise InvalidAPIParameters(f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels).")
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except _OutOfRange as e:
        raise InvalidAPIParameters(f"A number in the JSON body is out of range: {e}") from e
    except RecursionError as e:  # belt and braces: the depth check above comes first
        raise InvalidAPIParameters(f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels).") from e
    except ValueError as e:
        raise InvalidAPIParameters("Malformed JSON body.") from e


def loads_object(body: bytes) -> dict[str, Any]:
    """A JSON object from a request body, or InvalidAPIParameters saying what is wrong."""
    parsed = loads_json(body)
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


class BodyGuard:
    """Pure ASGI middleware: every HTTP request body is read here, up to ``max_body`` bytes,
    before the application sees it.

    - a ``Content-Length`` over the limit is answered 413 at once, the body left unread;
    - a body sent without one (chunked) is counted while it streams: 413 as soon as it passes
      the limit, the rest never read;
    - a JSON body (``{``/``[`` first, or a JSON content type) nested deeper than
      ``MAX_JSON_DEPTH`` is answered 400 before any parser runs.

    Paths starting with an ``exempt`` prefix (endpoints that stream large bodies on purpose) pass
    through untouched; ``small`` maps exact paths to a lower limit (public endpoints anyone may
    call).  ``max_body`` may be a callable (read per request)."""

    def __init__(self, app: ASGIApp, max_body: int | Callable[[], int] = DEFAULT_MAX_BODY,
                 exempt: tuple[str, ...] = (), small: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.exempt = exempt
        self.small = dict(small or {})

    def limit(self, path: str = "") -> int:
        limit = self.max_body() if callable(self.max_body) else self.max_body
        return min(limit, self.small.get(path, limit))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exempt and scope.get("path", "").startswith(self.exempt)):
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope.get("path", ""))
        headers = dict((k.lower(), v) for k, v in scope.get("headers") or ())
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
                if declared < 0:
                    raise ValueError(length)
            except ValueError:
                await self._refuse(scope, receive, send, GenericBadRequest("Malformed Content-Length header."),
                                   close=True)
                return
            if declared > limit:
                # Unread, unparsed.  The server discards the rest of a moderately large body so
                # the client, still writing, can read the answer; a huge one closes the connection.
                await self._refuse(scope, receive, send, _too_large(limit), close=declared > 16 * limit)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone; nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                # The server discards what still comes (the client reads the answer when done).
                await self._refuse(scope, receive, send, _too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _looks_json(body, headers.get(b"content-type", b"")) and json_too_deep(body):
            await self._refuse(scope, receive, send, InvalidAPIParameters(
                f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)."))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, err: BackendError, close: bool = False) -> None:
        response = problem_response(err)
        if close:
            response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than {limit} bytes.", data={"max_bytes": limit})


def _looks_json(body: bytes, content_type: bytes) -> bool:
    if b"json" in content_type.lower():
        return True
    first = body.lstrip()[:1]
    return first in (b"{", b"[")
