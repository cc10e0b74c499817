"""Admin Environments page: the Images tab (installed status, registry, architecture, name, tag,
digest, minimum resources, apps) and the Resource Presets tab (AD-4: list, create with a unique
name, edit, delete; CPU, memory, shared memory, accelerators, resource group).  Superadmins edit;
domain admins read."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError, Client
from workbay.common.domain import parse_bytes

from ..context import Admin, AdminPage, PageContext
from ..forms import FormData, read_form
from ..i18n import N_
from ..responses import api_error_text, events, field_errors
from ..tables import Column, Pager, requested_page
from .agent_summary import SLOT_LABELS, dec

router = APIRouter(tags=["pages"])
TABS = ("images", "presets")
IMAGE_COLUMNS = (
    Column("status", N_("Status")), Column("name", N_("Full image path")), Column("registry", N_("Registry")),
    Column("architecture", N_("Architecture")), Column("tag", N_("Tag")), Column("digest", N_("Digest")),
    Column("min_slots", N_("Minimum resources")), Column("apps", N_("Apps")),
)
PRESET_COLUMNS = (
    Column("name", N_("Name")), Column("resources", N_("Resources")), Column("shmem", N_("Shared memory")),
    Column("resource_group", N_("Resource group")),
)
PRESET_FIELDS = {"name", "cpu", "mem", "shared_memory", "resource_group", "resource_slots"}
GIB, MIB = 2**30, 2**20


def size_text(value: Any) -> str:
    """Bytes as what a user types (``4g``, ``512m``); empty for nothing."""
    amount = dec(value)
    if amount is None:
        return ""
    n = int(amount)
    if n and n % GIB == 0:
        return f"{n // GIB}g"
    if n and n % MIB == 0:
        return f"{n // MIB}m"
    if n >= GIB:
        return f"{format((Decimal(n) / GIB).quantize(Decimal('0.001')).normalize(), 'f')}g"
    return str(n)


def _superadmin(ctx: PageContext) -> bool:
    return bool(ctx.session and ctx.session.is_superadmin)


async def _accelerator_slots(api: Client) -> list[str]:
    """Accelerator slots some agent offers (cuda.device, cuda.shares, …)."""
    try:
        agents = (await api.get("/admin/agents")).get("items") or []
    except APIError:
        return []
    return sorted({k for a in agents for k in (a.get("available_slots") or {}) if k not in ("cpu", "mem")})


async def _resource_groups(api: Client) -> list[str]:
    try:
        return [g["name"] for g in (await api.get("/admin/resource-groups")).get("items") or []]
    except APIError:
        return []


def preset_row(p: dict[str, Any]) -> dict[str, Any]:
    slots = p.get("resource_slots") or {}
    extra = [(SLOT_LABELS.get(k, k), format(dec(v).normalize(), "f")) for k, v in sorted(slots.items())
             if k not in ("cpu", "mem") and dec(v)]
    return {**p, "cpu": dec(slots.get("cpu")), "mem": dec(slots.get("mem")), "accelerators": extra,
            "shmem": dec(p.get("shared_memory"))}


@router.get("/environments")
async def environments_page(request: Request, ctx: AdminPage) -> Response:
    q = request.query_params
    tab = q.get("tab") if q.get("tab") in TABS else "images"
    search = q.get("q", "").strip()
    page, size = requested_page(request)
    error, items = None, []
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            if tab == "images":
                items = list((await api.get("/images")).get("items") or [])
            else:
                items = [preset_row(p) for p in (await api.get("/admin/resource-presets")).get("items") or []]
        except APIError as err:
            error = api_error_text(err)
    if search:
        needle = search.lower()
        items = [i for i in items if needle in str(i.get("name", "")).lower()
                 or needle in str(i.get("resource_group") or i.get("registry") or "").lower()]
    pager = Pager(len(items), page, size)
    ctx.section = "environments"
    return ctx.state.renderer.render(
        request, "pages/environments.html", tab=tab, search=search, items=items[pager.offset:pager.offset + size],
        pager=pager, error=error, can_edit=_superadmin(ctx),
        columns=IMAGE_COLUMNS if tab == "images" else PRESET_COLUMNS)


# -- presets ------------------------------------------------------------------------------------------
def _preset_values(p: dict[str, Any] | None, accelerators: list[str]) -> dict[str, Any]:
    if p is None:
        return {"name": "", "cpu": "1", "mem": "1g", "shared_memory": "64m", "resource_group": "",
                **{f"slot:{k}": "" for k in accelerators}}
    slots = p.get("resource_slots") or {}
    return {"name": p["name"], "cpu": format(dec(slots.get("cpu")).normalize(), "f") if dec(slots.get("cpu")) is not None else "",
            "mem": size_text(slots.get("mem")), "shared_memory": size_text(p.get("shared_memory")),
            "resource_group": p.get("resource_group") or "",
            **{f"slot:{k}": format(dec(slots.get(k)).normalize(), "f") if dec(slots.get(k)) else "" for k in accelerators}}


def _preset_body(ctx: PageContext, form: FormData, accelerators: list[str], creating: bool
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    slots: dict[str, str] = {}
    cpu = dec(form.text("cpu"))
    if cpu is None or cpu <= 0:
        errors["cpu"] = ctx._("Enter a number of cores greater than 0.")
    else:
        slots["cpu"] = form.text("cpu")
    mem_text = form.text("mem")
    try:
        mem = parse_bytes(mem_text)
        if mem <= 0:
            raise ValueError
        slots["mem"] = mem_text
    except ValueError:
        mem = None
        errors["mem"] = ctx._("Enter a memory size such as 512m, 1g or 1.5g.")
    shm_text = form.text("shared_memory")
    shm = None
    if shm_text:
        try:
            shm = parse_bytes(shm_text)
        except ValueError:
            errors["shared_memory"] = ctx._("Enter a memory size such as 64m or 1g.")
        else:
            if mem is not None and shm > mem:
                errors["shared_memory"] = ctx._("Shared memory cannot exceed the memory size.")
    for key in accelerators:
        text = form.text(f"slot:{key}")
        if not text:
            continue
        amount = dec(text)
        if amount is None or amount < 0:
            errors[f"slot:{key}"] = ctx._("Enter a number (0 or more).")
        elif amount:
            slots[key] = text
    body: dict[str, Any] = {"resource_slots": slots, "shared_memory": shm_text or None,
                            "resource_group": form.text("resource_group") or None}
    if creating:
        body["name"] = form.text("name")
        if not body["name"]:
            errors["name"] = ctx._("Name is required.")
        elif len(body["name"]) > 64:
            errors["name"] = ctx._("At most 64 characters.")
    return body, errors


def _api_preset_errors(err: APIError) -> tuple[dict[str, str], tuple[str, str] | None]:
    errors, general = field_errors(err, PRESET_FIELDS)
    if "resource_slots" in errors:  # the manager names the map; show it at the CPU / memory fields
        errors["mem"] = errors.pop("resource_slots")
    return errors, general


async def _preset_choices(api: Client) -> dict[str, Any]:
    return {"accelerators": await _accelerator_slots(api), "groups": await _resource_groups(api)}


def _render_preset_form(request: Request, ctx: PageContext, template: str, *, preset, values, errors, general,
                        choices) -> Response:
    return ctx.state.renderer.render(request, template, preset=preset, values=values, errors=errors,
                                     general=general, slot_labels=SLOT_LABELS, **choices)


@router.get("/environments/presets/new")
async def new_preset_dialog(request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        choices = await _preset_choices(api)
    return _render_preset_form(request, ctx, "dialogs/preset_form.html", preset=None,
                               values=_preset_values(None, choices["accelerators"]), errors={}, general=None,
                               choices=choices)


def _typed(form: FormData, accelerators: list[str]) -> dict[str, Any]:
    return {**form.values(PRESET_FIELDS), **{f"slot:{k}": form.text(f"slot:{k}") for k in accelerators}}


@router.post("/environments/presets")
async def create_preset(request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    async with ctx.state.gateway.client(ctx.session) as api:
        choices = await _preset_choices(api)
        body, errors = _preset_body(ctx, form, choices["accelerators"], creating=True)
        general = None
        if not errors:
            try:
                created = await api.post("/admin/resource-presets", json=body)
            except APIError as err:
                errors, general = _api_preset_errors(err)
            else:
                return events(ctx, toast=ctx._("Preset %(name)s was created.", name=created["name"]),
                              close_modal=True, changed=True)
    return _render_preset_form(request, ctx, "forms/preset.html", preset=None,
                               values=_typed(form, choices["accelerators"]), errors=errors, general=general,
                               choices=choices)


async def _preset(api: Client, name: str) -> dict[str, Any] | None:
    items = (await api.get("/admin/resource-presets")).get("items") or []
    return next((p for p in items if p["name"] == name), None)


@router.get("/environments/presets/{name}/edit")
async def edit_preset_dialog(name: str, request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        preset = await _preset(api, name)
        choices = await _preset_choices(api)
    if preset is None:
        return events(ctx, toast=ctx._("The preset %(name)s no longer exists.", name=name), level="danger",
                      changed=True)
    return _render_preset_form(request, ctx, "dialogs/preset_form.html", preset=preset,
                               values=_preset_values(preset, choices["accelerators"]), errors={}, general=None,
                               choices=choices)


@router.post("/environments/presets/{name}")
async def update_preset(name: str, request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    async with ctx.state.gateway.client(ctx.session) as api:
        preset = await _preset(api, name)
        choices = await _preset_choices(api)
        body, errors = _preset_body(ctx, form, choices["accelerators"], creating=False)
        general = None
        if preset is None:
            general = (ctx._("The preset %(name)s no longer exists.", name=name), "")
        elif not errors:
            try:
                await api.patch(f"/admin/resource-presets/{quote(name, safe='')}", json=body)
            except APIError as err:
                errors, general = _api_preset_errors(err)
            else:
                return events(ctx, toast=ctx._("Preset %(name)s was updated.", name=name), close_modal=True,
                              changed=True)
    return _render_preset_form(request, ctx, "forms/preset.html", preset=preset or {"name": name},
                               values={**_typed(form, choices["accelerators"]), "name": name}, errors=errors,
                               general=general, choices=choices)


def _delete_message(ctx: PageContext, name: str) -> str:
    return ctx._("Delete the preset %(name)s? The launcher no longer offers it.", name=name)


@router.get("/environments/presets/{name}/delete")
async def delete_preset_dialog(name: str, request: Request, ctx: Admin) -> Response:
    return ctx.state.renderer.render(
        request, "dialogs/confirm.html", title=ctx._("Delete preset"), message=_delete_message(ctx, name),
        action=f"/environments/presets/{quote(name, safe='')}/delete", button=ctx._("Delete"), danger=True,
        fields={})


@router.post("/environments/presets/{name}/delete")
async def delete_preset(name: str, request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            await api.delete(f"/admin/resource-presets/{quote(name, safe='')}")
        except APIError as err:
            title, message = api_error_text(err)
            return ctx.state.renderer.render(
                request, "forms/confirm.html", error=f"{title} {message}".strip(), message=_delete_message(ctx, name),
                action=f"/environments/presets/{quote(name, safe='')}/delete", button=ctx._("Delete"), danger=True,
                fields={})
    return events(ctx, toast=ctx._("Preset %(name)s was deleted.", name=name), close_modal=True, changed=True)


# -- images: minimum resources (the launcher raises smaller requests to them) ---------------------------
async def _image(api: Client, ref: str) -> dict[str, Any] | None:
    items = (await api.get("/images")).get("items") or []
    return next((i for i in items if i["name"] == ref or i["id"] == ref), None)


def _render_image_form(request: Request, ctx: PageContext, template: str, *, image, values, errors, general
                       ) -> Response:
    return ctx.state.renderer.render(request, template, image=image, values=values, errors=errors, general=general)


@router.get("/environments/images/edit")
async def edit_image_dialog(request: Request, ctx: Admin) -> Response:
    ref = request.query_params.get("ref", "")
    async with ctx.state.gateway.client(ctx.session) as api:
        image = await _image(api, ref)
    if image is None:
        return events(ctx, toast=ctx._("The image %(name)s is not known.", name=ref), level="danger")
    slots = image.get("min_slots") or {}
    values = {"cpu": format(dec(slots.get("cpu")).normalize(), "f") if dec(slots.get("cpu")) is not None else "",
              "mem": size_text(slots.get("mem"))}
    return _render_image_form(request, ctx, "dialogs/image_form.html", image=image, values=values, errors={},
                              general=None)


@router.post("/environments/images/min-resources")
async def update_image(request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    ref = form.text("ref")
    errors: dict[str, str] = {}
    min_slots: dict[str, str] = {}
    if form.text("cpu"):
        cpu = dec(form.text("cpu"))
        if cpu is None or cpu <= 0:
            errors["cpu"] = ctx._("Enter a number of cores greater than 0.")
        else:
            min_slots["cpu"] = form.text("cpu")
    if form.text("mem"):
        try:
            if parse_bytes(form.text("mem")) <= 0:
                raise ValueError
            min_slots["mem"] = form.text("mem")
        except ValueError:
            errors["mem"] = ctx._("Enter a memory size such as 512m, 1g or 1.5g.")
    general = None
    async with ctx.state.gateway.client(ctx.session) as api:
        image = await _image(api, ref)
        if image is None:
            general = (ctx._("The image %(name)s is not known.", name=ref), "")
        elif not errors:
            try:
                await api.patch(f"/admin/images/{quote(image['id'], safe='')}", json={"min_slots": min_slots})
            except APIError as err:
                errors, general = field_errors(err, {"cpu", "mem", "min_slots"})
                if "min_slots" in errors:
                    errors["mem"] = errors.pop("min_slots")
            else:
                return events(ctx, toast=ctx._("The minimum resources of %(name)s were saved.", name=image["name"]),
                              close_modal=True, changed=True)
    return _render_image_form(request, ctx, "forms/image.html", image=image or {"name": ref, "id": ref},
                              values={"cpu": form.text("cpu"), "mem": form.text("mem")}, errors=errors,
                              general=general)
