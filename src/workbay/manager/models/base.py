from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

SECRET_BOX_ATTR = "workbay_secret_box"  # set on an engine's dialect by db.make_engine
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Encrypted(TypeDecorator):
    """A secret column: stored encrypted with the installation's ``secrets.database``
    (``common.secrets.SecretBox``), plaintext in Python.  The box belongs to the engine
    (``db.make_engine(..., secret_box=...)``): installations sharing a process keep their keys.
    The column name is the associated data, so a value moved to another column does not decrypt.
    Equality in SQL never matches (every encryption has a fresh nonce)."""

    impl = String
    cache_ok = True

    def __init__(self, purpose: str, length: int | None = None) -> None:
        super().__init__(length)
        self.purpose, self.length = purpose, length

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(String(self.length) if self.length else Text())

    @staticmethod
    def _box(dialect):
        box = getattr(dialect, SECRET_BOX_ATTR, None)
        if box is None:
            raise RuntimeError("this engine has no secret box: db.make_engine(url, secret_box=...)")
        return box

    def process_bind_param(self, value, dialect):
        return None if value is None else self._box(dialect).encrypt(value, self.purpose)

    def process_result_value(self, value, dialect):
        return None if value is None else self._box(dialect).decrypt(value, self.purpose)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
