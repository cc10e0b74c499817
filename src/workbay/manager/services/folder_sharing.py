"""Sharing folders (VF-9): invitations by e-mail, accepted shares, admin shares of project folders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from workbay.common.errors import AlreadyExists, GenericBadRequest, InvalidAPIParameters, ObjectNotFound
from workbay.manager.models import Folder, FolderInvitation, FolderShare, User
from workbay.manager.models.base import utcnow

from . import folder_rules as rules
from .access import Actor
from .context import ServiceContext
from .folder_lookup import require, resolve


@dataclass(frozen=True)
class Invitation:
    id: uuid.UUID
    inviter: str  # e-mail
    invitee: str  # e-mail
    permission: str
    state: str
    created_at: datetime
    modified_at: datetime
    folder_id: uuid.UUID
    folder_name: str


@dataclass(frozen=True)
class Share:
    """One user's access to a folder the caller manages."""

    folder_id: uuid.UUID
    folder_name: str
    status: str
    owner_email: str  # "" for a project folder
    ownership_type: str  # user | project
    user_id: uuid.UUID
    user_email: str
    permission: str


def invitation_of(inv: FolderInvitation, folder: Folder) -> Invitation:
    return Invitation(id=inv.id, inviter=inv.inviter, invitee=inv.invitee, permission=inv.permission,
                      state=inv.state, created_at=inv.created_at, modified_at=inv.modified_at,
                      folder_id=folder.id, folder_name=folder.name)


class FolderSharing:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _users_by_email(self, s: AsyncSession, emails: list[str]) -> list[User]:
        if not emails:
            raise InvalidAPIParameters("Give at least one e-mail address.")
        found = {u.email: u for u in (await s.execute(select(User).where(User.email.in_(emails)))).scalars()}
        missing = [e for e in emails if e not in found]
        if missing:
            raise ObjectNotFound(f"No such user: {', '.join(missing)}", object_name="user")
        return [found[e] for e in emails]

    async def _has_folder_named(self, s: AsyncSession, user: User, name: str) -> bool:
        own = await s.execute(select(Folder.id).where(Folder.user_id == user.uuid, Folder.name == name))
        if own.first():
            return True
        shared = await s.execute(select(Folder.id).join(FolderShare, FolderShare.folder_id == Folder.id)
                                 .where(FolderShare.user_id == user.uuid, Folder.name == name))
        return shared.first() is not None

    async def invite(self, actor: Actor, ref: str, perm: str, emails: list[str]) -> list[str]:
        """Invites each user by e-mail; answers the e-mails invited."""
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
        return invited

    async def _invitations(self, where: ColumnElement[bool]) -> list[Invitation]:
        async with self.ctx.db() as s:
            rows = await s.execute(select(FolderInvitation, Folder)
                                   .join(Folder, Folder.id == FolderInvitation.folder_id)
                                   .where(FolderInvitation.state == "pending", Folder.status == "ready", where)
                                   .order_by(FolderInvitation.created_at))
            return [invitation_of(inv, f) for inv, f in rows.all()]

    async def received(self, actor: Actor) -> list[Invitation]:
        return await self._invitations(FolderInvitation.invitee == actor.email)

    async def sent(self, actor: Actor) -> list[Invitation]:
        return await self._invitations(FolderInvitation.inviter == actor.email)

    async def _invitation(self, s: AsyncSession, inv_id: str) -> FolderInvitation:
        inv: FolderInvitation | None
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
            if f is None or me is None:  # the folder's row cascades to its invitations: not reached
                raise ObjectNotFound("No such pending invitation.", object_name="invitation")
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

    async def shared(self, actor: Actor, folder_ref: str | None) -> list[Share]:
        """Shares of the folders the caller manages (of one folder with ``folder_ref``)."""
        async with self.ctx.db() as s:
            stmt = (select(FolderShare, Folder, User).join(Folder, Folder.id == FolderShare.folder_id)
                    .join(User, User.uuid == FolderShare.user_id))
            if folder_ref:
                v = await resolve(s, actor, folder_ref)
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
            emails: dict[uuid.UUID, str] = dict((await s.execute(
                select(User.uuid, User.email).where(User.uuid.in_(owners)))).all()) if owners else {}
        return [Share(folder_id=f.id, folder_name=f.name, status=f.status,
                      owner_email=emails.get(f.user_id, "") if f.user_id else "",
                      ownership_type="user" if f.ownership_type == "user" else "project",
                      user_id=u.uuid, user_email=u.email, permission=sh.permission)
                for sh, f, u in rows]

    async def update_share(self, actor: Actor, folder_ref: str, user: str, perm: str | None) -> None:
        if perm is not None and perm not in rules.INVITEE_PERMISSIONS:
            raise InvalidAPIParameters("A share is 'ro' or 'rw' (null removes it).")
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, folder_ref)
            require(rules.can_delete(v.permission) and v.share is None, "change this folder's shares")
            target = await self._user(s, user)
            share = await s.get(FolderShare, (v.folder.id, target.uuid))
            if share is None:
                raise ObjectNotFound(f"{target.email} has no share of {v.folder.name}.", object_name="share")
            if perm is None:
                await s.delete(share)
            else:
                share.permission = perm

    async def _user(self, s: AsyncSession, ref: str) -> User:
        u: User | None
        try:
            u = await s.get(User, uuid.UUID(str(ref)))
        except ValueError:
            u = (await s.execute(select(User).where(User.email == ref))).scalars().first()
        if u is None:
            raise ObjectNotFound(f"No such user: {ref}", object_name="user")
        return u

    async def share_project_folder(self, actor: Actor, ref: str, perm: str, emails: list[str]) -> list[str]:
        """Shares a project folder with each user at once; answers their e-mails."""
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
        return [u.email for u in users]

    async def unshare(self, actor: Actor, ref: str, emails: list[str]) -> list[str]:
        """Removes the shares of these users; answers the e-mails that had one."""
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
        return done

    async def leave(self, actor: Actor, ref: str, shared_user: str | None) -> None:
        async with self.ctx.db.begin() as s:
            v = await resolve(s, actor, ref)
            if shared_user and shared_user != str(actor.user_id):
                require(rules.can_delete(v.permission) and v.share is None, "remove others from this folder")
                target = await self._user(s, shared_user)
            else:
                target = await self._user(s, str(actor.user_id))
            share = await s.get(FolderShare, (v.folder.id, target.uuid))
            if share is None:
                raise GenericBadRequest("The folder is not shared with that user.")
            await s.delete(share)
