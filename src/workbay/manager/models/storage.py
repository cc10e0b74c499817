"""Storage tables: folders, invitations, shares and explicit quota limits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, new_uuid, utcnow


class Folder(Base):
    __tablename__ = "folders"
    # quota_scope_id names the owner ("user:<uuid>" / "project:<uuid>"): one name per owner,
    # trash included, so restoring never collides.
    __table_args__ = (UniqueConstraint("quota_scope_id", "name"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(128))
    quota_scope_id: Mapped[str] = mapped_column(String(64), index=True)
    ownership_type: Mapped[str] = mapped_column(String(16))  # user | project
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.uuid", ondelete="CASCADE"),
                                                      nullable=True, index=True)
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                                         nullable=True, index=True)
    domain_name: Mapped[str] = mapped_column(ForeignKey("domains.name"))
    creator: Mapped[str] = mapped_column(String(64))  # e-mail
    usage_mode: Mapped[str] = mapped_column(String(16), default="general")  # general | model | data
    permission: Mapped[str] = mapped_column(String(4), default="rw")  # for project members
    cloneable: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(24), default="ready", index=True)  # ready | delete-pending
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class FolderInvitation(Base):
    __tablename__ = "folder_invitations"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    folder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"), index=True)
    inviter: Mapped[str] = mapped_column(String(64))  # e-mail
    invitee: Mapped[str] = mapped_column(String(64), index=True)  # e-mail
    permission: Mapped[str] = mapped_column(String(4))  # ro | rw
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|accepted|rejected|canceled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FolderShare(Base):
    """A user's access to someone else's folder: an accepted invitation or an admin's share."""

    __tablename__ = "folder_shares"
    folder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"),
                                                 primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.uuid", ondelete="CASCADE"),
                                               primary_key=True, index=True)
    permission: Mapped[str] = mapped_column(String(4))  # ro | rw


class QuotaLimit(Base):
    """An explicit quota set by an admin; without one the scope's policy default applies."""

    __tablename__ = "quota_limits"
    host: Mapped[str] = mapped_column(String(128), primary_key=True)
    quota_scope_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit_bytes: Mapped[int] = mapped_column(BigInteger)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
