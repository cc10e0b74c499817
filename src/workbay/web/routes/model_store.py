"""Model Store page (MS-11, guide 21.5): cards of the cloneable model folders of project
``model-store`` from their model definitions' metadata (``GET /model-store``), a search and
task/category filters in the query string, a detail dialog, and the clone dialog
(``POST /model-store/{folder_id}/clone``) that ends with a link to the new folder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError

from ..context import LoggedIn, PageContext, UserPage
from ..forms import read_form
from ..responses import api_error_text, field_errors
from .folders import NAME_MAX, current_project

router = APIRouter(tags=["pages"])

CLONE_FIELDS = {"target_name", "target_host"}
FORM_FIELD = {"name": "target_name", "host": "target_host"}  # the API's field names → the form's
TEXT_KEYS = ("title", "author", "description", "task", "category", "architecture", "license", "version",
             "created", "last_modified")


@dataclass(frozen=True)
class ModelCard:
    """One card: the folder it comes from and its definition's metadata (or why there is none)."""

    folder_id: str
    folder_name: str
    host: str = ""
    title: str = ""
    author: str = ""
    description: str = ""
    task: str = ""
    category: str = ""
    architecture: str = ""
    framework: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    license: str = ""
    version: str = ""
    created: str = ""
    last_modified: str = ""
    model_name: str = ""
    min_resource: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def heading(self) -> str:
        return self.title or self.model_name or self.folder_name


def _texts(value: Any) -> tuple[str, ...]:
    """A metadata list (``label``, ``framework``) — also a single string or a comma list."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return tuple(str(v) for v in value if v not in (None, ""))
    return (str(value),)


def model_card(item: Mapping[str, Any]) -> ModelCard:
    """A ``GET /model-store`` item (docs/api.md: the folder's keys, then its definition's metadata
    beside them, ``definition_error`` when it has no valid definition) as a card."""
    texts = {k: str(item.get(k) or "") for k in TEXT_KEYS}
    min_resource = item.get("min_resource")
    return ModelCard(
        folder_id=str(item.get("folder_id") or ""), folder_name=str(item.get("name") or ""),
        host=str(item.get("host") or ""), framework=_texts(item.get("framework")),
        labels=_texts(item.get("label")), model_name=str(item.get("model_name") or ""),
        min_resource=dict(min_resource) if isinstance(min_resource, dict) else {},
        error=str(item.get("definition_error") or ""), **texts)


def cards_of(answer: Mapping[str, Any]) -> list[ModelCard]:
    items = answer.get("items") or []
    return sorted((model_card(i) for i in items if isinstance(i, dict)), key=lambda c: c.heading.lower())


def matches(card: ModelCard, search: str, task: str, category: str) -> bool:
    """Whether a card passes the filters: ``search`` in its title, folder, description, author or
    labels (case-insensitive); ``task``/``category`` exactly."""
    if task and card.task != task:
        return False
    if category and card.category != category:
        return False
    if search:
        haystack = " ".join((card.heading, card.folder_name, card.description, card.author, *card.labels)).lower()
        return search.lower() in haystack
    return True


def distinct(cards: Iterable[ModelCard], key: str) -> list[str]:
    return sorted({str(getattr(c, key)) for c in cards if getattr(c, key)}, key=str.lower)


def folder_link(name: str) -> str:
    """The Data page's Models tab filtered to one folder (a shareable URL)."""
    return "/data?" + urlencode({"tab": "models", "q": name})


def _render(ctx: PageContext, request: Request, template: str, **values: Any) -> Response:
    return ctx.state.renderer.render(request, template, **values)


# -- the page --------------------------------------------------------------------------------------
@router.get("/model-store")
async def model_store_page(request: Request, ctx: UserPage) -> Response:
    q = request.query_params
    search, task, category = q.get("q", "").strip(), q.get("task", "").strip(), q.get("category", "").strip()
    error = None
    cards: list[ModelCard] = []
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            cards = cards_of(await api.get("/model-store"))
        except APIError as err:
            error = api_error_text(err)
    shown = [c for c in cards if matches(c, search, task, category)]
    ctx.section = "model-store"
    return _render(ctx, request, "pages/model_store.html", cards=shown, total=len(cards), search=search,
                   task=task, category=category, tasks=distinct(cards, "task"),
                   categories=distinct(cards, "category"), error=error,
                   can_clone=bool(ctx.session and ctx.session.role != "monitor"))


async def _card(ctx: PageContext, fid: str) -> ModelCard:
    async with ctx.state.gateway.client(ctx.session) as api:
        cards = cards_of(await api.get("/model-store"))
    found = next((c for c in cards if _same(c.folder_id, fid)), None)
    if found is None:
        raise APIError(404, {"title": ctx._("No such model card."), "type": "not-found"})
    return found


def _same(a: str, b: str) -> bool:
    return bool(a) and a.replace("-", "").lower() == b.replace("-", "").lower()


@router.get("/model-store/{fid}")
async def card_dialog(fid: str, request: Request, ctx: LoggedIn) -> Response:
    card = await _card(ctx, fid)
    return _render(ctx, request, "dialogs/model_card.html", card=card,
                   can_clone=bool(ctx.session and ctx.session.role != "monitor"))


# -- clone -----------------------------------------------------------------------------------------
@router.get("/model-store/{fid}/clone")
async def clone_dialog(fid: str, request: Request, ctx: UserPage) -> Response:
    card = await _card(ctx, fid)
    async with ctx.state.gateway.client(ctx.session) as api:
        hosts = await api.get("/folders/_/hosts", params={"group_id": current_project(ctx)})
    values = {"target_name": f"{card.folder_name}-copy"[:NAME_MAX],
              "target_host": hosts.get("default") or card.host}
    return _render(ctx, request, "dialogs/model_clone.html", card=card, hosts=hosts, values=values,
                   errors={}, general=None, cloned=None)


@router.post("/model-store/{fid}/clone")
async def clone_card(fid: str, request: Request, ctx: UserPage) -> Response:
    form = await read_form(request)
    values = form.values(CLONE_FIELDS)
    card = await _card(ctx, fid)
    errors: dict[str, str] = {}
    general = None
    cloned: dict[str, Any] | None = None
    name = form.text("target_name")
    async with ctx.state.gateway.client(ctx.session) as api:
        if not name:
            errors["target_name"] = ctx._("Enter a name.")
        else:
            body = {"target_name": name, "target_host": form.text("target_host") or None}
            try:
                answer = await api.post(f"/model-store/{quote(card.folder_id)}/clone", json=body)
            except APIError as err:
                given = err.body.get("field_errors") if isinstance(err.body, dict) else None
                if isinstance(given, dict) and given:
                    errors = {FORM_FIELD.get(str(k), str(k)): str(v) for k, v in given.items()
                              if FORM_FIELD.get(str(k), str(k)) in CLONE_FIELDS}
                    general = None if len(errors) == len(given) else api_error_text(err)
                else:
                    errors, general = field_errors(err, CLONE_FIELDS)
                    if not errors and not general:
                        general = api_error_text(err)
            else:
                answer = answer if isinstance(answer, dict) else {}
                new_name = str(answer.get("name") or name)
                cloned = {"name": new_name, "id": str(answer.get("id") or answer.get("folder_id") or ""),
                          "url": folder_link(new_name)}
        hosts = await api.get("/folders/_/hosts", params={"group_id": current_project(ctx)}) if not cloned else {}
    template = "dialogs/model_clone_done.html" if cloned else "dialogs/model_clone_form.html"
    return _render(ctx, request, template, card=card, hosts=hosts, values=values, errors=errors,
                   general=general, cloned=cloned)
