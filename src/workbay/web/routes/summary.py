"""Summary page (everyone's start page): cards; for now the folder invitations (VF-9) — accept or
decline what other users shared.  Later issues add the resource cards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workbay.client.sdk import APIError, Client

from ..context import LoggedIn, PageContext, UserPage
from ..responses import api_error_text, notify

router = APIRouter(tags=["pages"])


async def _invitations(api: Client) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    try:
        listing = await api.get("/folders/invitations/list")
    except APIError as err:
        return [], api_error_text(err)
    items = listing.get("invitations", []) if isinstance(listing, dict) else list(listing or [])
    return [i for i in items if i.get("state", "pending") == "pending"], None


@router.get("/summary")
async def summary_page(request: Request, ctx: UserPage) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        invitations, error = await _invitations(api)
    ctx.section = "summary"
    return ctx.state.renderer.render(request, "pages/summary.html", invitations=invitations,
                                     invitations_error=error)


def _card(ctx: PageContext, request: Request, invitations, error) -> Response:
    return ctx.state.renderer.render(request, "components/invitations_card.html", invitations=invitations,
                                     invitations_error=error)


@router.get("/summary/invitations")
async def invitations_card(request: Request, ctx: LoggedIn) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        invitations, error = await _invitations(api)
    return _card(ctx, request, invitations, error)


async def _answer(request: Request, ctx: PageContext, inv_id: str, accept: bool) -> Response:
    async with ctx.state.gateway.client(ctx.session) as api:
        before, _ = await _invitations(api)
        name = next((i.get("vfolder_name") for i in before if str(i.get("id")) == inv_id), "") or ""
        try:
            if accept:
                await api.post("/folders/invitations/accept", json={"inv_id": inv_id})
            else:
                await api.delete("/folders/invitations/delete", json={"inv_id": inv_id})
        except APIError as err:
            title, message = api_error_text(err)
            toast, level = f"{title} {message}".strip(), "danger"
        else:
            level = "success"
            toast = (ctx._("You accepted the invitation to %(name)s. It is on the Data page now.", name=name)
                     if accept else ctx._("You declined the invitation to %(name)s.", name=name))
        invitations, error = await _invitations(api)
    return notify(_card(ctx, request, invitations, error), toast=toast, level=level, changed=level == "success")


@router.post("/summary/invitations/{inv_id}/accept")
async def accept_invitation(inv_id: str, request: Request, ctx: LoggedIn) -> Response:
    return await _answer(request, ctx, inv_id, accept=True)


@router.post("/summary/invitations/{inv_id}/decline")
async def decline_invitation(inv_id: str, request: Request, ctx: LoggedIn) -> Response:
    return await _answer(request, ctx, inv_id, accept=False)
