"""Apps in sessions from the WebUI (AP-1, AP-5…AP-7): the app launcher dialog, starting an app
(``POST /session/{id}/start-service``) and answering its opening link or connection details, the
SSH/SFTP connection dialog with the session's key (``id_container``) as a download, and a
folder's File Browser and SFTP server (``POST /folders/{name}/file-browser`` / ``sftp-server``).

The dialog's tiles are clicked in ``static/js/apps.js``: an HTTP app's window is opened at once
(popup blockers allow only windows opened by the click) and sent to the opening link when it
arrives; SSH/SFTP shows the connection dialog.  Answers of the POST routes are JSON
(``{"title", "message"}`` with the API's status on errors), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from workbay.client.sdk import APIError, Client

from ..context import LoggedIn, PageContext
from ..forms import read_form
from ..i18n import N_
from ..responses import api_error_text, events
from .sessions import row

router = APIRouter(tags=["pages"])
# Starting an app waits until it listens (the manager gives it 60 s); a folder's File Browser or
# SFTP server starts a whole session first (up to 180 s).
APP_TIMEOUT = 120.0
FOLDER_APP_TIMEOUT = 240.0
PORT_MIN, PORT_MAX = 1024, 65535
SSH_PORT_PREFERENCE = "preferred_ssh_port"
SSH_USER = "work"


@dataclass(frozen=True)
class AppKind:
    label: str
    icon: str
    group: str
    order: int


GROUPS = (("utilities", N_("Utilities")), ("development", N_("Development")),
          ("ml", N_("Machine learning tools")), ("preopen", N_("Preopen ports")), ("other", N_("Other apps")))
KNOWN = {
    "ttyd": AppKind(N_("Terminal"), "terminal", "utilities", 0),
    "sshd": AppKind(N_("SSH / SFTP"), "key", "utilities", 1),
    "filebrowser": AppKind(N_("File Browser"), "folder2-open", "utilities", 2),
    "jupyter": AppKind(N_("Jupyter Notebook"), "journal-code", "development", 0),
    "jupyterlab": AppKind(N_("JupyterLab"), "journal-richtext", "development", 1),
    "vscode": AppKind(N_("Visual Studio Code"), "code-square", "development", 2),
    "tensorboard": AppKind(N_("TensorBoard"), "graph-up", "ml", 0),
    "mlflow-ui": AppKind(N_("MLflow UI"), "clipboard-data", "ml", 1),
}


def tiles(ctx: PageContext, apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dialog's groups, each with its tiles, in the guide's order (known apps first)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for a in apps:
        name = str(a.get("name") or "")
        if not name:
            continue
        protocol = str(a.get("protocol") or "http")
        kind = KNOWN.get(name)
        if protocol == "preopen":
            group, label, icon, order = "preopen", name, "door-open", 0
        elif kind:
            group, label, icon, order = kind.group, ctx._(kind.label), kind.icon, kind.order
        else:
            group, label, icon, order = "other", name, "app", 99
        ports = [int(p) for p in a.get("ports") or [] if str(p).isdigit()]
        grouped.setdefault(group, []).append({
            "name": name, "label": label, "icon": icon, "order": order, "protocol": protocol,
            "ports": ports, "opens_window": protocol in ("http", "preopen"),
        })
    out = []
    for key, title in GROUPS:
        items = sorted(grouped.get(key, []), key=lambda t: (t["order"], t["label"]))
        if items:
            out.append({"key": key, "title": ctx._(title), "tiles": items})
    return out


def app_label(ctx: PageContext, name: str) -> str:
    kind = KNOWN.get(name)
    return ctx._(kind.label) if kind else name


def _client(ctx: PageContext, timeout: float) -> Client:
    return ctx.state.gateway.client(ctx.session, timeout=timeout)


def _problem(err: APIError, status: int | None = None) -> JSONResponse:
    title, message = api_error_text(err)
    return JSONResponse({"title": title, "message": message}, status_code=status or err.status)


def _bad(ctx: PageContext, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"title": ctx._("Invalid request"), "message": message}, status_code=status)


def preferred_ssh_port(ctx: PageContext) -> int | None:
    """The user's preferred SSH port (their preferences)."""
    value = (ctx.preferences or {}).get(SSH_PORT_PREFERENCE)
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return port if PORT_MIN <= port <= PORT_MAX else None


def parse_port(text: str) -> int | None:
    """A port in 1024–65535, or None when the text is not one."""
    text = (text or "").strip()
    if not text.isdigit():
        return None
    port = int(text)
    return port if PORT_MIN <= port <= PORT_MAX else None


# -- the launcher dialog -----------------------------------------------------------------------------
@router.get("/sessions/{sid}/apps")
async def launcher_dialog(sid: str, request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            s = await api.get(f"/session/{quote(sid)}")
            apps = await api.get(f"/stream/session/{quote(sid)}/apps")
        except APIError as err:
            title, message = api_error_text(err)
            return events(ctx, toast=f"{title} {message}".strip(), level="danger", status_code=err.status)
    return ctx.state.renderer.render(
        request, "dialogs/app_launcher.html", s=row(s), groups=tiles(ctx, apps if isinstance(apps, list) else []),
        ssh_port=preferred_ssh_port(ctx), port_min=PORT_MIN, port_max=PORT_MAX)


@router.post("/sessions/{sid}/apps/{app}")
async def start_app(sid: str, app: str, request: Request, ctx: LoggedIn) -> Response:
    """Start ``app`` and answer where it is: ``url`` (the opening link, HTTP apps), ``host`` and
    ``port`` (TCP apps; ``dialog`` is the connection dialog to show for SSH)."""
    form = await read_form(request)
    body: dict[str, Any] = {"app": app, "open_to_public": form.flag("open_to_public")}
    if form.flag("try_preferred_port"):
        port = parse_port(form.text("preferred_port"))
        if port is None:
            return _bad(ctx, ctx._("Enter a port from %(min)s to %(max)s.", min=PORT_MIN, max=PORT_MAX))
        body["preferred_port"] = port
    elif app == "sshd" and preferred_ssh_port(ctx):
        body["preferred_port"] = preferred_ssh_port(ctx)
    async with _client(ctx, APP_TIMEOUT) as api:
        try:
            opened = await api.post(f"/session/{quote(sid)}/start-service", json=body)
        except APIError as err:
            return _problem(err)
    out = {k: opened.get(k) for k in ("app", "protocol", "host", "port", "url", "public_url",
                                      "preferred_port_used")}
    out["label"] = app_label(ctx, app)
    if out["protocol"] == "tcp":
        out["dialog"] = f"/sessions/{quote(sid)}/ssh?host={quote(str(out['host']))}&port={out['port']}"
    return JSONResponse(out)


# -- SSH / SFTP connection dialog -------------------------------------------------------------------
@router.get("/sessions/{sid}/ssh")
async def ssh_dialog(sid: str, request: Request, ctx: LoggedIn) -> Response:
    q = request.query_params
    try:
        port = int(q.get("port", ""))
    except ValueError:
        port = 0
    host = (q.get("host") or "").strip()
    if not host or not 0 < port < 65536 or any(c.isspace() or c in "'\"<>;&|`$\\" for c in host):
        return events(ctx, toast=ctx._("The connection details are incomplete."), level="danger", status_code=400)
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            s = await api.get(f"/session/{quote(sid)}")
        except APIError as err:
            title, message = api_error_text(err)
            return events(ctx, toast=f"{title} {message}".strip(), level="danger", status_code=err.status)
    idle = q.get("idle", "")
    return ctx.state.renderer.render(
        request, "dialogs/ssh_connection.html", s=row(s), host=host, port=port, user=SSH_USER,
        folder=q.get("folder") or None, idle_timeout=int(idle) if idle.isdigit() else None,
        key_url=f"/sessions/{quote(sid)}/ssh-key")


@router.get("/sessions/{sid}/ssh-key")
async def ssh_key(sid: str, ctx: LoggedIn) -> Response:
    """The session's SSH private key (``id_container``) as a download."""
    async with ctx.state.gateway.client(ctx.session) as api:
        try:
            got = await api.request("GET", f"/session/{quote(sid)}/download_single",
                                    params={"file": "id_container"}, raw=True)
        except APIError as err:
            title, message = api_error_text(err)
            return events(ctx, toast=f"{title} {message}".strip(), level="danger", status_code=err.status)
        data = got.content
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": 'attachment; filename="id_container"', "Cache-Control": "no-store"})


# -- a folder's File Browser and SFTP server ---------------------------------------------------------
@router.post("/data/{fid}/file-browser")
async def folder_file_browser(fid: str, ctx: LoggedIn) -> Response:
    async with _client(ctx, FOLDER_APP_TIMEOUT) as api:
        try:
            opened = await api.post(f"/folders/{quote(fid)}/file-browser")
        except APIError as err:
            return _problem(err)
    return JSONResponse({"url": opened.get("url"), "session_id": opened.get("session_id"),
                         "session_name": opened.get("session_name"), "root": opened.get("root"),
                         "label": ctx._("File Browser")})


@router.post("/data/{fid}/sftp-server")
async def folder_sftp_server(fid: str, ctx: LoggedIn) -> Response:
    async with _client(ctx, FOLDER_APP_TIMEOUT) as api:
        try:
            opened = await api.post(f"/folders/{quote(fid)}/sftp-server",
                                    json={"preferred_port": preferred_ssh_port(ctx)})
            folder = await api.get(f"/folders/{quote(fid)}")
        except APIError as err:
            return _problem(err)
    sid = str(opened.get("session_id"))
    dialog = (f"/sessions/{quote(sid)}/ssh?host={quote(str(opened.get('host')))}&port={opened.get('port')}"
              f"&folder={quote(str(folder.get('name') or fid))}&idle={int(opened.get('idle_timeout') or 0)}")
    return JSONResponse({"session_id": sid, "session_name": opened.get("session_name"),
                         "host": opened.get("host"), "port": opened.get("port"), "dialog": dialog})
