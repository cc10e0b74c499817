"""Admin Users page (ID-9, ID-11, ID-12): the Users and Credentials tabs, and the user dialogs.
Keypair dialogs live in credentials.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError, Client
from workbay.common.domain import UserStatus

from ..context import Admin, AdminPage, PageContext
from ..forms import FormData, read_form
from ..i18n import N_
from ..responses import events, field_errors
from ..tables import Column, Pager, requested_page
from .proxy import follow_login_epoch

router = APIRouter(tags=["pages"])
USER_COLUMNS = (
    Column("email", N_("User ID")), Column("username", N_("Name")), Column("full_name", N_("Full name")),
    Column("role", N_("Role")), Column("totp", N_("2FA")), Column("description", N_("Description")),
    Column("created_at", N_("Created at")),
)
KEYPAIR_COLUMNS = (
    Column("user_email", N_("User ID")), Column("access_key", N_("Access key")),
    Column("permission", N_("Permission")), Column("key_age", N_("Key age")),
    Column("created_at", N_("Created at")), Column("resource_policy", N_("Resource policy")),
    Column("allocation", N_("Allocation")), Column("last_used", N_("Last used")),
)
USER_FIELDS = {"email", "username", "full_name", "password", "password2", "description", "status",
               "role", "need_password_change", "sudo_session_enabled", "resource_policy", "project_ids"}
# What an administrator may set; "deleted" is reached by deleting the user.
STATUSES: tuple[str, ...] = tuple(s.value for s in UserStatus if s is not UserStatus.DELETED)


@router.get("/users")
async def users_page(request: Request, ctx: AdminPage) -> Response:
    q = request.query_params
    tab = q.get("tab") if q.get("tab") in ("users", "credentials") else "users"
    status = q.get("status") if q.get("status") in ("active", "inactive") else "active"
    search = q.get("q", "").strip()
    page, size = requested_page(request)
    async with ctx.state.gateway.client(ctx.session) as api:
        if tab == "users":
            listing = await api.get("/admin/users", params={
                "status": status, "q": search or None, "limit": size, "offset": (page - 1) * size})
        else:
            listing = await api.get("/admin/keypairs", params={
                "is_active": "true" if status == "active" else "false", "q": search or None,
                "limit": size, "offset": (page - 1) * size})
    ctx.section = "users"
    return ctx.state.renderer.render(
        request, "pages/users.html", tab=tab, status=status, search=search, items=listing["items"],
        pager=Pager(listing["total_count"], page, size),
        columns=USER_COLUMNS if tab == "users" else KEYPAIR_COLUMNS)


# -- user dialogs -------------------------------------------------------------------------------
async def _choices(api: Client) -> dict[str, Any]:
    policies = await api.get("/admin/resource-policies/user")
    projects = await api.get("/admin/projects", params={"limit": 1000})
    return {"policies": [p["name"] for p in policies["items"]], "projects": projects["items"]}


def _render_user_form(request: Request, ctx: PageContext, template: str, *, user: dict | None,
                      values: dict, errors: dict, general, choices: dict) -> Response:
    return ctx.state.renderer.render(request, template, user=user, values=values, errors=errors,
                                     general=general, statuses=STATUSES, **choices,
                                     roles=_assignable_roles(ctx))


def _assignable_roles(ctx: PageContext) -> list[str]:
    roles = ["user", "admin", "monitor"]
    return roles + ["superadmin"] if ctx.session and ctx.session.is_superadmin else roles


@router.get("/users/new")
async def new_user_dialog(request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        choices = await _choices(api)
    values = {"status": "active", "role": "user", "resource_policy": "default", "project_ids": []}
    return _render_user_form(request, ctx, "dialogs/user_form.html", user=None, values=values,
                             errors={}, general=None, choices=choices)


def _user_body(form: FormData, creating: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": form.text("username"), "full_name": form.text("full_name"),
        "description": form.text("description"), "status": form.text("status") or "active",
        "role": form.text("role") or "user", "need_password_change": form.flag("need_password_change"),
        "sudo_session_enabled": form.flag("sudo_session_enabled"),
        "resource_policy": form.text("resource_policy") or "default",
        "project_ids": form.all("project_ids"),
    }
    if creating:
        body["email"] = form.text("email")
    if form.raw("password"):
        body["password"] = form.raw("password")
    return body


def _user_form_problems(ctx: PageContext, form: FormData, creating: bool) -> dict[str, str]:
    errors = {}
    if creating and not form.text("email"):
        errors["email"] = ctx._("Email address is required.")
    if len(form.text("email")) > 64:
        errors["email"] = ctx._("At most 64 characters.")
    if not form.text("username"):
        errors["username"] = ctx._("User name is required.")
    elif len(form.text("username")) > 64:
        errors["username"] = ctx._("At most 64 characters.")
    if len(form.text("full_name")) > 64:
        errors["full_name"] = ctx._("At most 64 characters.")
    if creating and not form.raw("password"):
        errors["password"] = ctx._("Password is required.")
    if form.raw("password") != form.raw("password2"):
        errors["password2"] = ctx._("The passwords do not match.")
    return errors


@router.post("/users")
async def create_user(request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    errors, general = _user_form_problems(ctx, form, creating=True), None
    async with ctx.state.gateway.client(ctx.session) as api:
        if not errors:
            try:
                created = await api.post("/admin/users", json=_user_body(form, creating=True))
            except APIError as err:
                errors, general = field_errors(err, USER_FIELDS)
            else:
                return events(ctx, toast=ctx._("User %(email)s was created.", email=created["email"]),
                              close_modal=True, changed=True)
        choices = await _choices(api)
    values = {**form.values(USER_FIELDS - {"password", "password2"}), "project_ids": form.all("project_ids")}
    return _render_user_form(request, ctx, "forms/user.html", user=None, values=values, errors=errors,
                             general=general, choices=choices)


@router.get("/users/{email}/detail")
async def user_detail(email: str, request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        user = await api.get(f"/admin/users/{email}")
    return ctx.state.renderer.render(request, "dialogs/user_detail.html", user=user)


@router.get("/users/{email}/edit")
async def edit_user_dialog(email: str, request: Request, ctx: Admin) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        user = await api.get(f"/admin/users/{email}")
        choices = await _choices(api)
    values = {**user, "project_ids": [p["id"] for p in user.get("projects", [])]}
    return _render_user_form(request, ctx, "dialogs/user_form.html", user=user, values=values,
                             errors={}, general=None, choices=choices)


@router.post("/users/{email}")
async def update_user(email: str, request: Request, ctx: Admin) -> Response:
    form = await read_form(request)
    errors, general = _user_form_problems(ctx, form, creating=False), None
    async with ctx.state.gateway.client(ctx.session) as api:
        user = await api.get(f"/admin/users/{email}")
        if not errors:
            try:
                answer = await api.patch(f"/admin/users/{email}", json=_user_body(form, creating=False),
                                         raw=True)
                # the administrator's own password: this login carries over, their others end
                await follow_login_epoch(ctx.state, ctx.session, answer.headers)
            except APIError as err:
                errors, general = field_errors(err, USER_FIELDS)
            else:
                return events(ctx, toast=ctx._("User %(email)s was updated.", email=email),
                              close_modal=True, changed=True)
        choices = await _choices(api)
    values = {**form.values(USER_FIELDS - {"password", "password2"}), "project_ids": form.all("project_ids")}
    return _render_user_form(request, ctx, "forms/user.html", user=user, values=values, errors=errors,
                             general=general, choices=choices)


@router.get("/users/{email}/status")
async def confirm_user_status(email: str, request: Request, ctx: Admin) -> Response:
    target = "active" if request.query_params.get("to") == "active" else "inactive"
    async with ctx.state.gateway.client(ctx.session) as api:
        user = await api.get(f"/admin/users/{email}")
    name = user.get("full_name") or user.get("username") or email
    if target == "inactive":
        title, button = ctx._("Deactivate user"), ctx._("Deactivate")
        message = ctx._("Deactivate %(name)s (%(email)s)? The user can no longer log in, and all of "
                        "the user's keypairs are deactivated too.", name=name, email=email)
    else:
        title, button = ctx._("Reactivate user"), ctx._("Reactivate")
        message = ctx._("Reactivate %(name)s (%(email)s)? The user's keypairs stay inactive until "
                        "you reactivate them on the Credentials tab.", name=name, email=email)
    return ctx.state.renderer.render(request, "dialogs/confirm.html", title=title, message=message,
                                     action=f"/users/{email}/status", button=button,
                                     danger=target == "inactive", fields={"status": target})


@router.post("/users/{email}/status")
async def change_user_status(email: str, request: Request, ctx: Admin) -> Response:
    target = "active" if (await read_form(request)).text("status") == "active" else "inactive"
    async with ctx.state.gateway.client(ctx.session) as api:
        await api.patch(f"/admin/users/{email}", json={"status": target})
    toast = (ctx._("User %(email)s was reactivated.", email=email) if target == "active"
             else ctx._("User %(email)s was deactivated.", email=email))
    return events(ctx, toast=toast, close_modal=True, changed=True)
