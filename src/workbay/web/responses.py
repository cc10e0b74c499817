"""Answers of the page routes: htmx-aware redirects, toasts and "something changed" events."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi.responses import RedirectResponse, Response

from workbay.client.sdk import APIError

from .context import PageContext

CHANGED_EVENT = "wb:changed"
TOAST_EVENT = "wb:toast"
CLOSE_MODAL_EVENT = "wb:close-modal"


def redirect(ctx: PageContext, url: str) -> Response:
    # Percent-encoded as RedirectResponse does for Location: a header never carries a control
    # character (a newline would make the server drop the connection).
    url = quote(url, safe=":/%#?=@[]!$&'()*+,;~")
    if ctx.is_htmx:
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _triggers(toast: str | None, level: str, close_modal: bool, changed: bool,
              extra: dict[str, Any] | None) -> str:
    triggers: dict[str, Any] = dict(extra or {})
    if toast:
        triggers[TOAST_EVENT] = {"message": toast, "level": level}
    if close_modal:
        triggers[CLOSE_MODAL_EVENT] = True
    if changed:
        triggers[CHANGED_EVENT] = True
    return json.dumps(triggers)  # ensure_ascii keeps the header latin-1 safe (Korean toasts)


def notify(response: Response, *, toast: str | None = None, level: str = "success",
           close_modal: bool = False, changed: bool = False,
           extra: dict[str, Any] | None = None) -> Response:
    """Fire client events (toast, close the dialog, refresh lists) along with a response."""
    response.headers["HX-Trigger"] = _triggers(toast, level, close_modal, changed, extra)
    return response


def events(ctx: PageContext, *, toast: str | None = None, level: str = "success",
           close_modal: bool = False, changed: bool = False, status_code: int = 200,
           extra: dict[str, Any] | None = None) -> Response:
    """An htmx answer that swaps nothing and only fires client events."""
    return notify(Response(status_code=status_code, headers={"HX-Reswap": "none"}), toast=toast,
                  level=level, close_modal=close_modal, changed=changed, extra=extra)


def error_headers(title: str, message: str) -> dict[str, str]:
    """Readable by the client-side request log (UI-6); percent-encoded to stay header-safe."""
    return {"X-Error-Title": quote(title), "X-Error-Message": quote(message)}


def api_error_text(err: APIError) -> tuple[str, str]:
    title = err.title or f"HTTP {err.status}"
    message = str(err.msg) if err.msg else ""
    return title, message


def field_errors(err: APIError, fields: set[str]) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Split an API error into per-field messages (``data`` keyed by field name) and the
    (title, message) to show above the form when some of it belongs to no field."""
    found: dict[str, str] = {}
    data = err.data if isinstance(err.data, dict) else {}
    for key, value in data.items():
        name = str(key).split(".")[0]
        if name in fields:
            found[name] = str(value)
    if found and len(found) == len(data):
        return found, None
    return found, api_error_text(err)
