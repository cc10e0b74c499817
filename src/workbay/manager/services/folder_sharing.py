"""Sharing folders (VF-9): invitations by e-mail, accepted shares, admin shares of project folders."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from workbay.common.errors import AlreadyExists, GenericBadRequest, InvalidAPIParameters, ObjectNotFound
from workbay.manager.models import Folder, FolderInvitation, FolderShare, User
from workbay.manager.models.base import utcnow

from . import folder_rules as rules
from .access import Actor
from .context import ServiceContext
from .folder_lookup import require, resolve
from .serialize import iso


def invitation_out(inv: FolderInvitation, folder: Folder) -> dict[str, Any]:
    return {"id": str(inv.id), "inviter": inv.inviter, "invitee": inv.invitee, "perm": inv.permission,
            "state": inv.state, "created_at": iso(inv.created_at), "modified_at": iso(inv.modified_at),
            "vfolder_id": folder.id.hex, "vfolder_name": folder.name}


class FolderSharing:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _users_by_email(self, s, emails: list[str]) -> list[User]:
        if not emails:
            raise InvalidAPIParameters("Give at least one e-mail address.")
        found = {u.email: u for u in (await s.execute(select(User).where(User.email.in_(emails)))).scalars()}
        missing = [e for e in emails if e not in found]
        if missing:
            raise ObjectNotFound(f"No such user: {', '.join(missing)}", object_name="user")
        return [found[e] for e in emails]

    async def _has_folder_named(self, s, user: User, name: str) -> bool:
        own = await s.execute(select(Folder.id).where(Folder.user_id == user.uuid, Folder.name == name))
        if own.first():
            return True
        shared = await s.execute(select(Folder.id).join(FolderShare, FolderShare.folder_id == Folder.id)
                                 .where(FolderShare.user_id == user.uuid, Folder.name == name))
        return shared.first() is not None

    async def invite(self, actor: Actor, ref: str, perm: str, emails: list[str]) -> dict[str, Any]:
        if perm not in rules.INVITEE_PERMISSIONS:
            raise InvalidAPIParameters("Invitees get 'ro' or 'rw' (they can never delete the folder).",
                                       data={"perm": perm})
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, ref)
            f = v.folder
            require(f.ownership_type == "user" and f.user_id == actor.user_id, "share this folder")
            users = await self._users_by_email(s, list(dict.fromkeys(emails)))
            invited = []
            for u in users:
                if u.uuid == actor.user_id:
                    raise InvalidAPIParameters("You cannot invite yourself.")
                if await s.get(FolderShare, (f.id, u.uuid)) is not None:
                    raise AlreadyExists(f"{u.email} already has access to {f.name}.")
                pending = await s.execute(select(FolderInvitation.id).where(
                    FolderInvitation.folder_id == f.id, FolderInvitation.invitee == u.email,
                    FolderInvitation.state == "pending"))
                if pending.first():
                    raise AlreadyExists(f"{u.email} is already invited to {f.name}.")
                if await self._has_folder_named(s, u, f.name):
                    raise AlreadyExists(f"{u.email} already has a folder named {f.name}.",
                                        data={"invitee": u.email})
                s.add(FolderInvitation(folder_id=f.id, inviter=actor.email, invitee=u.email, permission=perm))
                invited.append(u.email)
        return {"invited_ids": invited}

    async def _invitations(self, where) -> list[dict[str, Any]]:
        async with self.ctx.db() as s:
            rows = await s.execute(select(FolderInvitation, Folder)
                                   .join(Folder, Folder.id == FolderInvitation.folder_id)
                                   .where(FolderInvitation.state == "pending", Folder.status == "ready", where)
                                   .order_by(FolderInvitation.created_at))
            return [invitation_out(inv, f) for inv, f in rows.all()]

    async def received(self, actor: Actor) -> dict[str, Any]:
        return {"invitations": await self._invitations(FolderInvitation.invitee == actor.email)}

    async def sent(self, actor: Actor) -> dict[str, Any]:
        return {"invitations": await self._invitations(FolderInvitation.inviter == actor.email)}

    async def _invitation(self, s, inv_id: str) -> FolderInvitation:
        try:
            inv = await s.get(FolderInvitation, uuid.UUID(str(inv_id)))
        except ValueError:
            inv = None
        if inv is None or inv.state != "pending":
            raise ObjectNotFound("No such pending invitation.", object_name="invitation")
        return inv

    async def accept(self, actor: Actor, inv_id: str) -> None:
        async with self.ctx.db.begin() as s:
            inv = await self._invitation(s, inv_id)
            if inv.invitee != actor.email:
                raise ObjectNotFound("No such pending invitation.", object_name="invitation")
            f = await s.get(Folder, inv.folder_id)
            me = await s.get(User, actor.user_id)
            if await self._has_folder_named(s, me, f.name):
                raise AlreadyExists(f"You already have a folder named {f.name}; rename it first.")
            s.add(FolderShare(folder_id=f.id, user_id=actor.user_id, permission=inv.permission))
            inv.state = "accepted"
            inv.modified_at = utcnow()

    async def delete_invitation(self, actor: Actor, inv_id: str) -> None:
        async with self.ctx.db.begin() as s:
            inv = await self._invitation(s, inv_id)
            if inv.invitee == actor.email:
                inv.state = "rejected"
            elif inv.inviter == actor.email:
                inv.state = "canceled"
            else:
                raise ObjectNotFound("No such pending invitation.", object_name="invitation")
            inv.modified_at = utcnow()

    async def shared(self, actor: Actor, vfolder_id: str | None) -> dict[str, Any]:
        """Shares of the folders the caller manages (one folder with ``vfolder_id``)."""
        async with self.ctx.db() as s:
            stmt = (select(FolderShare, Folder, User).join(Folder, Folder.id == FolderShare.folder_id)
                    .join(User, User.uuid == FolderShare.user_id))
            if vfolder_id:
                v = await resolve(s, actor, vfolder_id)
                require(rules.can_delete(v.permission) and v.share is None, "see this folder's shares")
                stmt = stmt.where(Folder.id == v.folder.id)
            elif actor.is_superadmin:
                pass
            elif actor.is_admin:
                stmt = stmt.where((Folder.user_id == actor.user_id) | (
                    (Folder.ownership_type == "project") & (Folder.domain_name == actor.domain_name)))
            else:
                stmt = stmt.where(Folder.user_id == actor.user_id)
            rows = (await s.execute(stmt)).all()
            owners = {f.user_id for _, f, _ in rows if f.user_id}
            emails = dict((await s.execute(select(User.uuid, User.email).where(User.uuid.in_(owners)))).all()) \
                if owners else {}
        return {"shared": [{
            "vfolder_id": f.id.hex, "vfolder_name": f.name, "status": f.status,
            "owner": emails.get(f.user_id, ""), "type": "user" if f.ownership_type == "user" else "project",
            "shared_to": {"uuid": str(u.uuid), "email": u.email}, "perm": sh.permission}
            for sh, f, u in rows]}

    async def update_share(self, actor: Actor, vfolder: str, user: str, perm: str | None) -> None:
        if perm is not None and perm not in rules.INVITEE_PERMISSIONS:
            raise InvalidAPIParameters("A share is 'ro' or 'rw' (null removes it).")
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, vfolder)
            require(rules.can_delete(v.permission) and v.share is None, "change this folder's shares")
            target = await self._user(s, user)
            share = await s.get(FolderShare, (v.folder.id, target.uuid))
            if share is None:
                raise ObjectNotFound(f"{target.email} has no share of {v.folder.name}.", object_name="share")
            if perm is None:
                await s.delete(share)
            else:
                share.permission = perm

    async def _user(self, s, ref: str) -> User:
        try:
            u = await s.get(User, uuid.UUID(str(ref)))
        except ValueError:
            u = (await s.execute(select(User).where(User.email == ref))).scalars().first()
        if u is None:
            raise ObjectNotFound(f"No such user: {ref}", object_name="user")
        return u

    async def share_project_folder(self, actor: Actor, ref: str, perm: str, emails: list[str]) -> dict[str, Any]:
        if perm not in rules.INVITEE_PERMISSIONS:
            raise InvalidAPIParameters("A share is 'ro' or 'rw'.")
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, ref)
            if v.folder.ownership_type != "project":
                raise GenericBadRequest("Share user folders with invitations (POST /folders/{name}/invite).")
            require(actor.is_admin and rules.can_delete(v.permission), "share this project folder")
            users = await self._users_by_email(s, list(dict.fromkeys(emails)))
            for u in users:
                share = await s.get(FolderShare, (v.folder.id, u.uuid))
                if share is None:
                    s.add(FolderShare(folder_id=v.folder.id, user_id=u.uuid, permission=perm))
                else:
                    share.permission = perm
        return {"shared_emails": [u.email for u in users]}

    async def unshare(self, actor: Actor, ref: str, emails: list[str]) -> dict[str, Any]:
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, ref)
            require(rules.can_delete(v.permission) and v.share is None, "change this folder's shares")
            users = await self._users_by_email(s, list(dict.fromkeys(emails)))
            done = []
            for u in users:
                share = await s.get(FolderShare, (v.folder.id, u.uuid))
                if share is not None:
                    await s.delete(share)
                    done.append(u.email)
        return {"unshared_emails": done}

    async def leave(self, actor: Actor, ref: str, shared_user: str | None) -> dict[str, Any]:
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, ref)
            if shared_user and shared_user != str(actor.user_id):
                require(rules.can_delete(v.permission) and v.share is None, "remove others from this folder")
                target = await self._user(s, shared_user)
            else:
                target = await s.get(User, actor.user_id)
            share = await s.get(FolderShare, (v.folder.id, target.uuid))
            if share is None:
                raise GenericBadRequest("The folder is not shared with that user.")
            await s.delete(share)
        return {"msg": "left the shared folder"}
