"""Data page (VF-1…VF-15): storage folders, the storage status panel, the create / rename / clone /
trash dialogs, the folder explorer (files, uploads and downloads through the storage-proxy, which
the browser calls directly with short-lived tokens) and the share dialog."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError, Client
from workbay.common.domain import FOLDER_TRASH_STATUSES, FolderUsageMode

from ..context import LoggedIn, PageContext, UserPage
from ..folder_moves import MoveRefused, destination_path, plan_moves
from ..forms import read_form
from ..i18n import N_
from ..responses import api_error_text, events, field_errors
from ..tables import Column, Pager, requested_page

router = APIRouter(tags=["pages"])

TABS = ("general", "automount", "models", "trash")
TAB_LABELS = {"general": N_("General"), "automount": N_("Automount"), "models": N_("Models"), "trash": N_("Trash")}
TAB_ICONS = {"general": "folder2", "automount": "magic", "models": "boxes", "trash": "trash3"}
FOLDER_COLUMNS = (
    Column("name", N_("Name")), Column("status", N_("Status")), Column("host", N_("Location")),
    Column("type", N_("Type")), Column("permission", N_("Mount permission")),
    Column("owner", N_("Owner")), Column("size", N_("Size"), "text-end"),
    Column("created_at", N_("Created at")),
)
FILE_COLUMNS = (Column("name", N_("Name")), Column("created", N_("Created")),
                Column("size", N_("Size"), "text-end"))
CREATE_FIELDS = {"name", "host", "usage_mode", "type", "group", "permission", "cloneable"}
USAGE_MODES: tuple[str, ...] = tuple(m.value for m in FolderUsageMode)
NAME_MAX = 64
FILE_NAME_MAX = 255
BAD_NAME = re.compile(r"[/\\\x00]")


# -- helpers --------------------------------------------------------------------------------------
def _items(listing: Any, key: str = "items") -> list[dict[str, Any]]:
    if isinstance(listing, dict):
        return list(listing.get(key) or [])
    return list(listing or [])


def current_project(ctx: PageContext) -> str | None:
    """The project chosen in the top bar (else the user's first project)."""
    prefs = ctx.preferences
    chosen = prefs.get("project")
    projects = (ctx.me or {}).get("projects") or []
    if chosen and (not projects or any(p["id"] == chosen for p in projects)):
        return chosen
    return projects[0]["id"] if projects else chosen


def tab_of(folder: dict[str, Any]) -> str:
    if folder.get("status") in FOLDER_TRASH_STATUSES:
        return "trash"
    if str(folder.get("name", "")).startswith("."):
        return "automount"
    if folder.get("usage_mode") == "model":
        return "models"
    return "general"


def is_project_folder(folder: dict[str, Any]) -> bool:
    return (folder.get("ownership_type") or folder.get("type")) in ("group", "project")


# What the page offers for a folder, read from the manager's ``allowed_actions`` only (docs/api.md
# "For the WebUI"): each switch of the templates and the actions that turn it on.
CAPS = {"rename": ("rename",), "trash": ("delete",), "restore": ("restore",), "purge": ("purge",),
        "share": ("invite", "share"), "clone": ("clone",), "leave": ("leave",), "download": ("download",),
        "upload": ("upload",), "mkdir": ("mkdir",), "rename_file": ("rename_file",),
        "move_file": ("move_file",), "delete_files": ("delete_files",)}


def folder_caps(folder: dict[str, Any]) -> dict[str, bool]:
    """What the caller may do with a folder, as the manager says (a folder shared with the caller is
    one they may leave)."""
    allowed = set(folder.get("allowed_actions") or ())
    return {cap: any(a in allowed for a in actions) for cap, actions in CAPS.items()}


def _same_id(a: Any, b: Any) -> bool:
    return bool(a) and bool(b) and str(a).replace("-", "").lower() == str(b).replace("-", "").lower()


def _fid(folder: dict[str, Any]) -> str:
    return str(folder.get("id", "")).replace("-", "")


def _name_problem(ctx: PageContext, name: str, limit: int = NAME_MAX) -> str | None:
    if not name:
        return ctx._("Enter a name.")
    if len(name) > limit:
        return ctx._("At most %(count)s characters.", count=limit)
    if BAD_NAME.search(name) or name in (".", ".."):
        return ctx._("A name cannot contain / or \\ and cannot be . or ..")
    return None


def _form_errors(err: APIError, fields: set[str]) -> tuple[dict[str, str], tuple[str, str] | None]:
    """The manager's ``field_errors`` next to their fields; what belongs to no field above the form."""
    given = err.body.get("field_errors") if isinstance(err.body, dict) else None
    if isinstance(given, dict) and given:
        errors = {str(k): str(v) for k, v in given.items() if str(k) in fields}
        rest = [f"{k}: {v}" for k, v in given.items() if str(k) not in fields]
        return errors, ((api_error_text(err)[0], "; ".join(rest)) if rest else None)
    # the routes without ``field_errors`` (invite, share) name the field in ``data``
    errors, general = field_errors(err, fields)
    if len(errors) == 1 and err.msg:
        errors = {name: str(err.msg) for name in errors}
        general = None
    return errors, general


def _error_toast(ctx: PageContext, err: APIError) -> Response:
    title, message = api_error_text(err)
    return events(ctx, toast=f"{title} {message}".strip(), level="danger", status_code=err.status)


async def _folder(api: Client, fid: str) -> dict[str, Any]:
    return await api.get(f"/folders/{quote(fid)}")


def _render(ctx: PageContext, request: Request, template: str, **values: Any) -> Response:
    return ctx.state.renderer.render(request, template, **values)


# -- the Data page --------------------------------------------------------------------------------
@router.get("/data")
async def data_page(request: Request, ctx: UserPage) -> Response:
    q = request.query_params
    tab = q.get("tab") if q.get("tab") in TABS else "general"
    search = q.get("q", "").strip()
    page, size = requested_page(request)
    project = current_project(ctx)
    async with ctx.state.gateway.client(ctx.session) as api:
        # project folders of the current project only (unless shared with the user by name);
        # the user's own and shared ones always
        folders = [f for f in _items(await api.get("/folders"))
                   if not is_project_folder(f) or not project or f.get("shared")
                   or _same_id(f.get("group"), project)]
        try:
            status = await api.get("/folders/_/status", params={"group_id": project})
        except APIError as err:
            status = {"error": api_error_text(err)}
    counts = {t: 0 for t in TABS}
    for f in folders:
        counts[tab_of(f)] += 1
    shown = [f for f in folders if tab_of(f) == tab
             and (not search or search.lower() in str(f.get("name", "")).lower())]
    shown.sort(key=lambda f: str(f.get("name", "")).lower())
    pager = Pager(len(shown), page, size)
    rows = [{**f, "fid": _fid(f), "caps": folder_caps(f)}
            for f in shown[pager.offset:pager.offset + size]]
    ctx.section = "data"
    return _render(ctx, request, "pages/data.html", tab=tab, tabs=TABS, tab_labels=TAB_LABELS,
                   tab_icons=TAB_ICONS, counts=counts, search=search, rows=rows, pager=pager,
                   columns=FOLDER_COLUMNS, status=status)


# -- create ----------------------------------------------------------------------------------------
async def _create_choices(ctx: PageContext, api: Client) -> dict[str, Any]:
    project = current_project(ctx)
    hosts = await api.get("/folders/_/hosts", params={"group_id": project})
    try:
        allowed_types = await api.get("/folders/_/allowed_types")
    except APIError:
        allowed_types = ["user", "group"]
    is_admin = bool(ctx.session and ctx.session.is_admin)
    projects: list[dict[str, Any]] = []
    if is_admin:
        me = ctx.me or await api.get("/user/me")
        projects = me.get("projects") or []
        if ctx.session.is_superadmin or not projects:
            try:
                listing = await api.get("/admin/projects", params={"limit": 1000})
                projects = [{"id": p["id"], "name": p["name"]} for p in listing["items"]] or projects
            except APIError:
                pass
    types = ["user"]
    if is_admin and any(t in ("group", "project") for t in allowed_types):
        types.append("project")
    if "user" not in allowed_types and "project" in types:
        types = ["project"]
    return {"hosts": hosts, "types": types, "projects": projects, "project": project}


@router.get("/data/new")
async def new_folder_dialog(request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        choices = await _create_choices(ctx, api)
    values = {"host": choices["hosts"].get("default") or next(iter(choices["hosts"].get("allowed") or []), ""),
              "usage_mode": "general", "type": choices["types"][0], "permission": "rw",
              "group": choices["project"]}
    if request.query_params.get("automount"):
        values["name"] = request.query_params["automount"]
    return _render(ctx, request, "dialogs/folder_create.html", values=values, errors={}, general=None,
                   **choices)


@router.post("/data")
async def create_folder(request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    values = form.values(CREATE_FIELDS)
    values["cloneable"] = form.flag("cloneable")
    errors: dict[str, str] = {}
    general = None
    if form.text("usage_mode") not in USAGE_MODES:
        errors["usage_mode"] = ctx._("Choose a usage mode.")
    project_folder = form.text("type") == "project"
    if project_folder and not form.text("group"):
        errors["group"] = ctx._("Choose a project.")
    async with ctx.state.gateway.client(ctx.session) as api:
        if not errors:
            body: dict[str, Any] = {
                "name": form.text("name"), "host": form.text("host") or None,
                "usage_mode": form.text("usage_mode"),
                "permission": (form.text("permission") if project_folder else "rw") or "rw",
                "cloneable": form.flag("cloneable") and form.text("usage_mode") == "model",
            }
            if project_folder:
                body["group"] = form.text("group")
            try:
                created = await api.post("/folders", json=body)
            except APIError as err:
                errors, general = _form_errors(err, CREATE_FIELDS)
            else:
                return events(ctx, toast=ctx._("Folder %(name)s was created.", name=created.get("name", body["name"])),
                              close_modal=True, changed=True)
        choices = await _create_choices(ctx, api)
    return _render(ctx, request, "dialogs/folder_create_form.html", values=values, errors=errors,
                   general=general, **choices)


# -- rename / trash / restore / purge / clone ----------------------------------------------------
@router.get("/data/{fid}/rename")
async def rename_dialog(fid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
    return _render(ctx, request, "dialogs/folder_rename.html", folder=folder, fid=fid,
                   values={"new_name": folder["name"]}, errors={}, general=None)


@router.post("/data/{fid}/rename")
async def rename_folder(fid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    new_name = form.text("new_name")
    errors: dict[str, str] = {}
    general = None
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        if new_name != folder["name"]:  # the manager holds the name rule (field_errors)
            try:
                await api.post(f"/folders/{quote(fid)}/rename", json={"new_name": new_name})
            except APIError as err:
                errors, general = _form_errors(err, {"new_name"})
                if not errors and general:
                    errors, general = {"new_name": " ".join(x for x in general if x)}, None
        if not errors and not general:
            return events(ctx, toast=ctx._("Folder %(old)s was renamed to %(new)s.", old=folder["name"], new=new_name),
                          close_modal=True, changed=True)
    return _render(ctx, request, "dialogs/folder_rename_form.html", folder=folder, fid=fid,
                   values={"new_name": new_name}, errors=errors, general=general)


@router.get("/data/{fid}/trash")
async def trash_dialog(fid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
    return _render(ctx, request, "dialogs/confirm.html", title=ctx._("Move to trash"),
                   message=ctx._("Move folder %(name)s to the trash? You can restore it from the Trash tab.",
                                 name=folder["name"]),
                   action=f"/data/{fid}/trash", button=ctx._("Move to trash"), danger=True, fields={})


@router.post("/data/{fid}/trash")
async def trash_folder(fid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        try:
            await api.delete(f"/folders/{quote(fid)}")
        except APIError as err:
            title, message = api_error_text(err)
            return _render(ctx, request, "forms/confirm.html",
                           message=ctx._("Move folder %(name)s to the trash? You can restore it from the Trash tab.",
                                         name=folder["name"]),
                           error=f"{title} {message}".strip(), action=f"/data/{fid}/trash",
                           button=ctx._("Move to trash"), danger=True, fields={})
    return events(ctx, toast=ctx._("Folder %(name)s was moved to the trash.", name=folder["name"]),
                  close_modal=True, changed=True)


@router.post("/data/{fid}/restore")
async def restore_folder(fid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        try:
            await api.post(f"/folders/{quote(fid)}/restore", json={})
        except APIError as err:
            return _error_toast(ctx, err)
    return events(ctx, toast=ctx._("Folder %(name)s was restored.", name=folder["name"]), changed=True)


@router.get("/data/{fid}/leave")
async def leave_dialog(fid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
    return _render(ctx, request, "dialogs/confirm.html", title=ctx._("Leave shared folder"),
                   message=ctx._("Stop using %(name)s? Its owner can invite you again.", name=folder["name"]),
                   action=f"/data/{fid}/leave", button=ctx._("Leave"), danger=True, fields={})


@router.post("/data/{fid}/leave")
async def leave_folder(fid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        try:
            await api.post(f"/folders/{quote(fid)}/leave", json={"shared_user_uuid": None})
        except APIError as err:
            title, message = api_error_text(err)
            return _render(ctx, request, "forms/confirm.html",
                           message=ctx._("Stop using %(name)s? Its owner can invite you again.", name=folder["name"]),
                           error=f"{title} {message}".strip(), action=f"/data/{fid}/leave",
                           button=ctx._("Leave"), danger=True, fields={})
    return events(ctx, toast=ctx._("You left the shared folder %(name)s.", name=folder["name"]),
                  close_modal=True, changed=True)


@router.get("/data/{fid}/purge")
async def purge_dialog(fid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
    return _render(ctx, request, "dialogs/confirm.html", title=ctx._("Delete forever"),
                   message=ctx._("Delete folder %(name)s and all of its files forever? This cannot be undone.",
                                 name=folder["name"]),
                   action=f"/data/{fid}/purge", button=ctx._("Delete forever"), danger=True, fields={},
                   type_to_confirm=folder["name"])


@router.post("/data/{fid}/purge")
async def purge_folder(fid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        message = ctx._("Delete folder %(name)s and all of its files forever? This cannot be undone.",
                        name=folder["name"])
        error = None
        if form.text("confirm") != folder["name"]:
            error = ctx._("Type the folder's name exactly to delete it.")
        else:
            try:
                await api.delete(f"/folders/{quote(fid)}/purge")
            except APIError as err:
                title, text = api_error_text(err)
                error = f"{title} {text}".strip()
        if error:
            return _render(ctx, request, "forms/confirm.html", message=message, error=error,
                           action=f"/data/{fid}/purge", button=ctx._("Delete forever"), danger=True,
                           fields={}, type_to_confirm=folder["name"])
    return events(ctx, toast=ctx._("Folder %(name)s was deleted forever.", name=folder["name"]),
                  close_modal=True, changed=True)


@router.get("/data/{fid}/clone")
async def clone_dialog(fid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        hosts = await api.get("/folders/_/hosts", params={"group_id": current_project(ctx)})
    values = {"target_name": f"{folder['name']}-copy"[:NAME_MAX], "target_host": folder.get("host"),
              "usage_mode": folder.get("usage_mode") or "general", "permission": "rw", "cloneable": False}
    return _render(ctx, request, "dialogs/folder_clone.html", folder=folder, fid=fid, hosts=hosts,
                   values=values, errors={}, general=None)


@router.post("/data/{fid}/clone")
async def clone_folder(fid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    values = form.values({"target_name", "target_host", "usage_mode", "permission"})
    values["cloneable"] = form.flag("cloneable")
    errors: dict[str, str] = {}
    general = None
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        # the manager holds the name rule: its field_errors show at the fields
        body = {"target_name": form.text("target_name"), "target_host": form.text("target_host") or None,
                "usage_mode": form.text("usage_mode") or "general",
                "permission": form.text("permission") or "rw", "cloneable": form.flag("cloneable")}
        try:
            await api.post(f"/folders/{quote(fid)}/clone", json=body)
        except APIError as err:
            errors, general = _form_errors(err, {"target_name", "target_host", "usage_mode", "permission", "cloneable"})
        else:
            return events(ctx, toast=ctx._("Cloning %(name)s into %(target)s started.", name=folder["name"],
                                           target=body["target_name"]), close_modal=True, changed=True)
        hosts = await api.get("/folders/_/hosts", params={"group_id": current_project(ctx)})
    return _render(ctx, request, "dialogs/folder_clone_form.html", folder=folder, fid=fid, hosts=hosts,
                   values=values, errors=errors, general=general)


# -- explorer --------------------------------------------------------------------------------------
def _clean_path(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p and p != "."]
    if ".." in parts:
        return ""
    return "/".join(parts)


def _crumbs(path: str) -> list[tuple[str, str]]:
    out, acc = [], []
    for part in path.split("/") if path else []:
        acc.append(part)
        out.append((part, "/".join(acc)))
    return out


async def _render_files(ctx: PageContext, request: Request, api: Client, fid: str, folder: dict[str, Any],
                        path: str, template: str, notice: tuple[str, str] | None = None,
                        move_again: dict[str, Any] | None = None) -> Response:
    """``move_again``: a refused move's ``targets`` and typed ``destination``, shown again as they were."""
    error = None
    entries: list[dict[str, Any]] = []
    try:
        listing = await api.get(f"/folders/{quote(fid)}/files", params={"path": path})
        entries = _items(listing)
    except APIError as err:
        error = api_error_text(err)
    entries.sort(key=lambda e: (e.get("type") != "DIRECTORY", str(e.get("name", "")).lower()))
    for e in entries:
        e["path"] = f"{path}/{e['name']}" if path else e["name"]
    # the move form's suggestions: the root, the directories above, the ones shown
    move_choices = ["/", *(f"/{p}" for _, p in _crumbs(path)),
                    *(f"/{e['path']}" for e in entries if e.get("type") == "DIRECTORY")]
    return _render(ctx, request, template, folder=folder, fid=fid, path=path, crumbs=_crumbs(path),
                   entries=entries, error=error, notice=notice, caps=folder_caps(folder),
                   columns=FILE_COLUMNS, name_max=FILE_NAME_MAX,
                   move_choices=list(dict.fromkeys(move_choices)), move_again=move_again)


@router.get("/data/{fid}/explorer")
async def explorer_dialog(fid: str, request: Request, ctx: LoggedIn) -> Response:
    path = _clean_path(request.query_params.get("path", ""))
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        return await _render_files(ctx, request, api, fid, folder, path, "dialogs/folder_explorer.html")


@router.get("/data/{fid}/files")
async def explorer_files(fid: str, request: Request, ctx: LoggedIn) -> Response:
    path = _clean_path(request.query_params.get("path", ""))
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        return await _render_files(ctx, request, api, fid, folder, path, "dialogs/folder_files.html")


async def _file_action(ctx: PageContext, request: Request, fid: str, path: str, call, success: str
                       ) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        try:
            await call(api)
        except APIError as err:
            title, message = api_error_text(err)
            return await _render_files(ctx, request, api, fid, folder, path, "dialogs/folder_files.html",
                                       notice=("danger", f"{title} {message}".strip()))
        return await _render_files(ctx, request, api, fid, folder, path, "dialogs/folder_files.html",
                                   notice=("success", success))


@router.post("/data/{fid}/mkdir")
async def make_directory(fid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    path = _clean_path(form.text("path"))
    name = form.text("name")
    problem = _name_problem(ctx, name, FILE_NAME_MAX)
    if problem:
        async with ctx.state.gateway.client(ctx.session) as api:
            folder = await _folder(api, fid)
            return await _render_files(ctx, request, api, fid, folder, path, "dialogs/folder_files.html",
                                       notice=("danger", problem))
    target = f"{path}/{name}" if path else name
    return await _file_action(
        ctx, request, fid, path,
        lambda api: api.post(f"/folders/{quote(fid)}/mkdir", json={"path": target, "parents": True, "exist_ok": False}),
        ctx._("Folder %(name)s was created.", name=name))


@router.post("/data/{fid}/rename-file")
async def rename_file(fid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    path = _clean_path(form.text("path"))
    target = _clean_path(form.text("target"))
    new_name = form.text("new_name")
    problem = _name_problem(ctx, new_name, FILE_NAME_MAX) or (None if target else ctx._("Choose a file."))
    if problem:
        async with ctx.state.gateway.client(ctx.session) as api:
            folder = await _folder(api, fid)
            return await _render_files(ctx, request, api, fid, folder, path, "dialogs/folder_files.html",
                                       notice=("danger", problem))
    old = target.rsplit("/", 1)[-1]
    return await _file_action(
        ctx, request, fid, path,
        lambda api: api.post(f"/folders/{quote(fid)}/rename-file", json={"target_path": target, "new_name": new_name}),
        ctx._("%(old)s was renamed to %(new)s.", old=old, new=new_name))


@router.post("/data/{fid}/delete-files")
async def delete_files(fid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    path = _clean_path(form.text("path"))
    targets = [t for t in (_clean_path(x) for x in form.all("target")) if t]
    if not targets:
        async with ctx.state.gateway.client(ctx.session) as api:
            folder = await _folder(api, fid)
            return await _render_files(ctx, request, api, fid, folder, path, "dialogs/folder_files.html",
                                       notice=("danger", ctx._("Choose a file.")))
    names = ", ".join(t.rsplit("/", 1)[-1] for t in targets)
    return await _file_action(
        ctx, request, fid, path,
        lambda api: api.delete(f"/folders/{quote(fid)}/delete-files", json={"files": targets, "recursive": True}),
        ctx._("%(names)s deleted.", names=names))


def _move_refusal(ctx: PageContext, refused: MoveRefused, shown: str) -> str:
    names = ", ".join(refused.names)
    if refused.kind == "into-itself":
        return ctx._("A folder cannot be moved into itself: %(names)s.", names=names)
    if refused.kind == "already-there":
        return ctx._("%(names)s is already in %(target)s.", names=names, target=shown)
    if refused.kind == "exists":
        return ctx._("%(target)s already holds %(names)s. Rename or delete it first; nothing was moved.",
                     names=names, target=shown)
    return ctx._("Enter a directory of this folder, such as /data/raw (no ..).")


@router.post("/data/{fid}/move-files")
async def move_files(fid: str, request: Request, ctx: LoggedIn) -> Response:
    """Move the chosen entries into another directory of the folder: checked first (the
    destination exists and holds none of their names), then one ``move-file`` per entry."""
    form = await read_form(request)
    path = _clean_path(form.text("path"))
    targets = [t for t in (_clean_path(x) for x in form.all("target")) if t]
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)

        def shown_again(level: str, text: str):
            again = {"targets": set(targets), "destination": form.text("destination")} if level == "danger" else None
            return _render_files(ctx, request, api, fid, folder, path, "dialogs/folder_files.html",
                                 notice=(level, text), move_again=again)

        if not targets:
            return await shown_again("danger", ctx._("Choose a file."))
        destination = ""
        try:
            destination = destination_path(form.text("destination"))
            plan_moves(targets, destination, ())  # what needs no listing: into itself, there already
        except MoveRefused as refused:
            return await shown_again("danger", _move_refusal(ctx, refused, "/" + destination))
        shown = "/" + destination
        try:
            listing = await api.get(f"/folders/{quote(fid)}/files", params={"path": destination})
        except APIError as err:
            title, message = api_error_text(err)
            text = (ctx._("There is no directory %(target)s in this folder.", target=shown)
                    if err.status == 404 else f"{title} {message}".strip())
            return await shown_again("danger", text)
        try:
            moves = plan_moves(targets, destination, (str(e.get("name")) for e in _items(listing)))
        except MoveRefused as refused:
            return await shown_again("danger", _move_refusal(ctx, refused, shown))
        moved: list[str] = []
        for move in moves:
            try:
                await api.post(f"/folders/{quote(fid)}/move-file", json={"src": move.src, "dst": move.dst})
            except APIError as err:
                title, message = api_error_text(err)
                reason = f"{title} {message}".strip()
                text = ctx._("%(name)s could not be moved: %(reason)s", name=move.name, reason=reason)
                if moved:
                    text += " " + ctx._("Moved already: %(names)s.", names=", ".join(moved))
                return await shown_again("danger", text)
            moved.append(move.name)
        return await shown_again("success", ctx._("%(names)s moved to %(target)s.", names=", ".join(moved),
                                                  target=shown))


# -- sharing ---------------------------------------------------------------------------------------
async def _share_state(api: Client, fid: str, folder: dict[str, Any]) -> dict[str, Any]:
    vid = str(folder.get("id") or fid)
    shared = _items(await api.get("/folders/_/shared", params={"vfolder_id": vid}), "shared")
    if is_project_folder(folder):  # shared by admins directly, never through invitations
        return {"shares": shared, "pending": [], "project_folder": True}
    try:
        sent = _items(await api.get("/folders/invitations/list-sent"), "invitations")
    except APIError:
        sent = []
    hexid = vid.replace("-", "")
    pending = [i for i in sent if str(i.get("vfolder_id", "")).replace("-", "") == hexid
               and i.get("state", "pending") == "pending"]
    return {"shares": shared, "pending": pending, "project_folder": False}


async def _render_share(ctx: PageContext, request: Request, api: Client, fid: str, template: str, *,
                        values: dict | None = None, errors: dict | None = None, general=None,
                        notice: tuple[str, str] | None = None) -> Response:
    folder = await _folder(api, fid)
    state = await _share_state(api, fid, folder)
    return _render(ctx, request, template, folder=folder, fid=fid, values=values or {"perm": "ro"},
                   errors=errors or {}, general=general, notice=notice, **state)


@router.get("/data/{fid}/share")
async def share_dialog(fid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        return await _render_share(ctx, request, api, fid, "dialogs/folder_share.html")


@router.post("/data/{fid}/invite")
async def invite(fid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    emails = [e.strip() for e in re.split(r"[,\s;]+", form.text("emails")) if e.strip()]
    perm = form.text("perm") if form.text("perm") in ("ro", "rw") else "ro"
    errors: dict[str, str] = {}
    general = None
    notice = None
    async with ctx.state.gateway.client(ctx.session) as api:
        if not emails:
            errors["emails"] = ctx._("Enter the email of the user to invite.")
        elif any("@" not in e for e in emails):
            errors["emails"] = ctx._("Enter valid email addresses.")
        else:
            try:
                result = await api.post(f"/folders/{quote(fid)}/invite", json={"perm": perm, "emails": emails})
            except APIError as err:
                errors, general = _form_errors(err, {"emails", "perm"})
                if not errors and general:
                    errors, general = {"emails": " ".join(x for x in general if x)}, None
            else:
                invited = result.get("invited_ids") if isinstance(result, dict) else None
                notice = ("success", ctx._("Invitation sent to %(emails)s.", emails=", ".join(invited or emails)))
        return await _render_share(ctx, request, api, fid, "dialogs/folder_share_body.html",
                                   values={"perm": perm, "emails": "" if notice else form.text("emails")},
                                   errors=errors, general=general, notice=notice)


@router.post("/data/{fid}/project-shares")
async def share_project_folder(fid: str, request: Request, ctx: LoggedIn) -> Response:
    """VF-10: an admin gives named users their own permission on a project folder (no invitation;
    they see it at once, members or not)."""
    form = await read_form(request)
    emails = list(dict.fromkeys(e.strip() for e in re.split(r"[,\s;]+", form.text("emails")) if e.strip()))
    perm = form.text("perm")
    errors: dict[str, str] = {}
    general = None
    notice = None
    async with ctx.state.gateway.client(ctx.session) as api:
        if not emails:
            errors["emails"] = ctx._("Enter the email of a user.")
        elif any("@" not in e for e in emails):
            errors["emails"] = ctx._("Enter valid email addresses.")
        if perm not in ("ro", "rw"):
            errors["perm"] = ctx._("Choose read only or read & write.")
        if not errors:
            try:
                result = await api.post(f"/folders/{quote(fid)}/share", json={"permission": perm, "emails": emails})
            except APIError as err:
                errors, general = _form_errors(err, {"emails", "perm"})
                if not errors and general:
                    errors, general = {"emails": " ".join(x for x in general if x)}, None
            else:
                shared = result.get("shared_emails") if isinstance(result, dict) else None
                notice = ("success", ctx._("%(emails)s can now use this folder.", emails=", ".join(shared or emails)))
        return await _render_share(ctx, request, api, fid, "dialogs/folder_share_body.html",
                                   values={"perm": perm if perm in ("ro", "rw") else "ro",
                                           "emails": "" if notice else form.text("emails")},
                                   errors=errors, general=general, notice=notice)


@router.post("/data/{fid}/shares")
async def change_share(fid: str, request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    user = form.text("user")
    perm = form.text("perm")
    body = {"vfolder": None, "user": user, "perm": perm if perm in ("ro", "rw") else None}
    async with ctx.state.gateway.client(ctx.session) as api:
        folder = await _folder(api, fid)
        body["vfolder"] = str(folder.get("id") or fid)
        try:
            await api.post("/folders/_/shared", json=body)
        except APIError as err:
            title, message = api_error_text(err)
            notice = ("danger", f"{title} {message}".strip())
        else:
            email = form.text("email") or user
            if body["perm"] is not None:
                notice = ("success", ctx._("Permission of %(email)s was changed.", email=email))
            elif is_project_folder(folder):  # members keep the folder's own permission
                notice = ("success", ctx._("The share of %(email)s was removed.", email=email))
            else:
                notice = ("success", ctx._("%(email)s can no longer use this folder.", email=email))
        return await _render_share(ctx, request, api, fid, "dialogs/folder_share_body.html", notice=notice)


@router.post("/data/{fid}/invitations/{inv_id}/cancel")
async def cancel_invitation(fid: str, inv_id: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            await api.delete("/folders/invitations/delete", json={"inv_id": inv_id})
        except APIError as err:
            title, message = api_error_text(err)
            notice = ("danger", f"{title} {message}".strip())
        else:
            notice = ("success", ctx._("The invitation was canceled."))
        return await _render_share(ctx, request, api, fid, "dialogs/folder_share_body.html", notice=notice)
