"""User settings (UI-5 General tab, UI-6 Logs tab), my keypair and SSH keypair (ID-13)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError

from ..context import LoggedIn, UserPage
from ..forms import read_form
from ..responses import field_errors, notify

router = APIRouter(tags=["pages"])
TABS = ("general", "logs")


@router.get("/settings")
async def settings_page(request: Request, ctx: UserPage) -> Response:
    tab = request.query_params.get("tab", "general")
    ctx.section = "settings"
    return ctx.state.renderer.render(request, "pages/settings.html", tab=tab if tab in TABS else "general",
                                     prefs=ctx.preferences)


@router.get("/settings/keypair")
async def keypair_dialog(request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        me = await api.get("/user/me")
    return ctx.state.renderer.render(request, "dialogs/my_keypair.html", keypair=me["keypair"])


@router.get("/settings/ssh-keypair")
async def ssh_keypair_dialog(request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        current = await api.get("/auth/ssh-keypair")
    # part=body: only the dialog's content ("Back" from the manual form)
    part = request.query_params.get("part") == "body"
    template = "forms/ssh_keypair.html" if part else "dialogs/ssh_keypair.html"
    return ctx.state.renderer.render(request, template, public_key=current.get("ssh_public_key"), mode="view")


@router.post("/settings/ssh-keypair/generate")
async def generate_ssh_keypair(request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        pair = await api.patch("/auth/ssh-keypair")
    response = ctx.state.renderer.render(request, "forms/ssh_keypair.html", mode="generated",
                                         public_key=pair["ssh_public_key"],
                                         private_key=pair["ssh_private_key"])
    return notify(response, toast=ctx._("A new SSH keypair was generated."))


@router.get("/settings/ssh-keypair/manual")
async def manual_ssh_keypair_form(request: Request, ctx: LoggedIn) -> Response:
    return ctx.state.renderer.render(request, "forms/ssh_keypair.html", mode="manual", errors={},
                                     general=None, values={})


@router.post("/settings/ssh-keypair")
async def save_ssh_keypair(request: Request, ctx: LoggedIn) -> Response:
    form = await read_form(request)
    pubkey, privkey = form.text("pubkey"), form.raw("privkey").strip()
    errors: dict[str, str] = {}
    if not pubkey:
        errors["pubkey"] = ctx._("Paste the public key.")
    if not privkey:
        errors["privkey"] = ctx._("Paste the private key.")
    general = None
    if not errors:
        try:
            async with ctx.state.gateway.client(ctx.session) as api:
                saved = await api.post("/auth/ssh-keypair", json={"pubkey": pubkey, "privkey": privkey})
        except APIError as err:
            errors, general = field_errors(err, {"pubkey", "privkey"})
        else:
            response = ctx.state.renderer.render(request, "forms/ssh_keypair.html", mode="view",
                                                 public_key=saved["ssh_public_key"])
            return notify(response, toast=ctx._("The SSH keypair was saved."))
    return ctx.state.renderer.render(request, "forms/ssh_keypair.html", mode="manual", errors=errors,
                                     general=general, values={"pubkey": pubkey})
