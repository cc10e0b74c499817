"""Admin Resource Policy page (AD-1): Keypair / User / Project tabs, create, edit (not the name),
delete (the API refuses while in use), and export of a tab as JSON or CSV."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError

from .. import policy_fields as pf
from ..context import Admin, AdminPage, PageContext
from ..forms import read_form
from ..i18n import N_
from ..responses import events, field_errors
from ..tables import Column

router = APIRouter(tags=["pages"])
EXPORT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


def _kind(value: str | None) -> str:
    return value if value in pf.KINDS else "keypair"


def _columns(kind: str) -> tuple[Column, ...]:
    cols = [Column("name", N_("Name"))]
    if kind == "keypair":
        cols.append(Column("resources", N_("Resources")))
    cols += [Column(f.key, f.column or f.label) for f in pf.FIELDS[kind]]
    if kind == "keypair":
        cols.append(Column("allowed_folder_hosts", N_("Storage hosts")))
    cols.append(Column("created_at", N_("Created at")))
    return tuple(cols)


@router.get("/resource-policy")
async def policies_page(request: Request, ctx: AdminPage) -> Response:
    kind = _kind(request.query_params.get("tab"))
    async with ctx.state.gateway.client(ctx.session) as api:
        listing = await api.get(f"/admin/resource-policies/{kind}")
    ctx.section = "resource-policy"
    return ctx.state.renderer.render(request, "pages/resource_policy.html", kind=kind, items=listing["items"],
                                     columns=_columns(kind), fields=pf.FIELDS[kind], slots=pf.SLOTS,
                                     kind_labels=pf.KIND_LABELS, kinds=pf.KINDS,
                                     can_edit=ctx.session.is_superadmin)


def _render_form(request: Request, ctx: PageContext, template: str, kind: str, *, policy: dict | None,
                 values: dict, errors: dict, general) -> Response:
    hosts = values.get("hosts_text")  # as typed, when the form comes back with errors
    if hosts is None:
        hosts = pf.hosts_text(values.get("allowed_folder_hosts") or {})
    return ctx.state.renderer.render(request, template, kind=kind, policy=policy, values=values,
                                     errors=errors, general=general, fields=pf.FIELDS[kind], slots=pf.SLOTS,
                                     kind_label=pf.KIND_LABELS[kind], hosts_text=hosts)


def _defaults(kind: str) -> dict:
    return {f.key: f.default for f in pf.FIELDS[kind]} | {"total_resource_slots": {},
                                                           "allowed_folder_hosts": {}}


def _values_from_form(kind: str, form, body: dict) -> dict:
    """What the form shows again after an error: the typed text, not the parsed numbers."""
    values = {f.key: body.get(f.key, form.text(f.key)) for f in pf.FIELDS[kind]}
    values["name"] = form.text("name")
    values["total_resource_slots"] = body.get("total_resource_slots", {})
    values["allowed_folder_hosts"] = body.get("allowed_folder_hosts", {})
    values["slot_text"] = {s.key: form.text(s.key) for s in pf.SLOTS}
    values["hosts_text"] = form.raw("allowed_folder_hosts")
    return values


@router.get("/resource-policy/{kind}/new")
async def new_policy_dialog(kind: str, request: Request, ctx: Admin) -> Response:
    kind = _kind(kind)
    return _render_form(request, ctx, "dialogs/policy_form.html", kind, policy=None, values=_defaults(kind),
                        errors={}, general=None)


async def _submit(request: Request, ctx: PageContext, kind: str, name: str | None) -> Response:
    form = await read_form(request)
    body, errors = pf.read_policy_form(kind, form, ctx._("Enter a whole number within the allowed range."),
                                       ctx._("Unknown permissions: %(names)s"))
    general = None
    if name is None:
        body["name"] = form.text("name")
        if not body["name"]:
            errors["name"] = ctx._("Name is required.")
    if not errors:
        try:
            async with ctx.state.gateway.client(ctx.session) as api:
                if name is None:
                    await api.post(f"/admin/resource-policies/{kind}", json=body)
                else:
                    await api.patch(f"/admin/resource-policies/{kind}/{name}", json=body)
        except APIError as err:
            if err.status == 401:
                raise
            errors, general = field_errors(err, {"name", *(f.key for f in pf.FIELDS[kind]),
                                                 "total_resource_slots", "allowed_folder_hosts"})
        else:
            shown = name or body["name"]
            toast = (ctx._("Resource policy %(name)s was created.", name=shown) if name is None
                     else ctx._("Resource policy %(name)s was updated.", name=shown))
            return events(ctx, toast=toast, close_modal=True, changed=True)
    values = _values_from_form(kind, form, body)
    if name is not None:
        values["name"] = name
    return _render_form(request, ctx, "forms/policy.html", kind, policy={"name": name} if name else None,
                        values=values, errors=errors, general=general)


@router.post("/resource-policy/{kind}")
async def create_policy(kind: str, request: Request, ctx: Admin) -> Response:
    return await _submit(request, ctx, _kind(kind), None)


@router.get("/resource-policy/{kind}/export")
async def export_policies(kind: str, request: Request, ctx: Admin) -> Response:
    kind = _kind(kind)
    fmt = request.query_params.get("format", "json")
    fmt = fmt if fmt in EXPORT_TYPES else "json"
    async with ctx.state.gateway.client(ctx.session) as api:
        items = (await api.get(f"/admin/resource-policies/{kind}"))["items"]
    text = pf.export_json(items) if fmt == "json" else pf.export_csv(kind, items)
    filename = f"{kind}-resource-policies.{fmt}"
    return Response(text, media_type=EXPORT_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/resource-policy/{kind}/{name}/edit")
async def edit_policy_dialog(kind: str, name: str, request: Request,
                             ctx: Admin) -> Response:
    kind = _kind(kind)
    async with ctx.state.gateway.client(ctx.session) as api:
        policy = await api.get(f"/admin/resource-policies/{kind}/{name}")
    return _render_form(request, ctx, "dialogs/policy_form.html", kind, policy=policy, values=policy,
                        errors={}, general=None)


@router.post("/resource-policy/{kind}/{name}")
async def update_policy(kind: str, name: str, request: Request, ctx: Admin) -> Response:
    return await _submit(request, ctx, _kind(kind), name)


def _delete_confirm(request: Request, ctx: PageContext, kind: str, name: str, template: str,
                    error: str | None = None) -> Response:
    return ctx.state.renderer.render(
        request, template, title=ctx._("Delete resource policy"),
        message=ctx._("Delete the %(kind)s resource policy %(name)s? This cannot be undone.",
                      kind=ctx._(pf.KIND_LABELS[kind]), name=name),
        action=f"/resource-policy/{kind}/{name}/delete", button=ctx._("Delete"), danger=True, fields={},
        type_to_confirm=name, error=error)


@router.get("/resource-policy/{kind}/{name}/delete")
async def confirm_delete_policy(kind: str, name: str, request: Request,
                                ctx: Admin) -> Response:
    return _delete_confirm(request, ctx, _kind(kind), name, "dialogs/confirm.html")


@router.post("/resource-policy/{kind}/{name}/delete")
async def delete_policy(kind: str, name: str, request: Request, ctx: Admin) -> Response:
    kind = _kind(kind)
    if (await read_form(request)).text("confirm") != name:
        return _delete_confirm(request, ctx, kind, name, "forms/confirm.html",
                               ctx._("Type the name exactly to confirm."))
    try:
        async with ctx.state.gateway.client(ctx.session) as api:
            await api.delete(f"/admin/resource-policies/{kind}/{name}")
    except APIError as err:
        if err.status == 401:
            raise
        return _delete_confirm(request, ctx, kind, name, "forms/confirm.html", str(err.msg or err.title))
    return events(ctx, toast=ctx._("Resource policy %(name)s was deleted.", name=name), close_modal=True,
                  changed=True)
