"""Secrets that lite generates on first start and keeps under the data dir (mode 0600), and the
encryption of secrets the database stores (keypairs' secret keys, SSH private keys, TOTP seeds)."""

from __future__ import annotations

import base64
import binascii
import fcntl
import os
import secrets
import tomllib
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import WorkbayConfig
from .datadir import private_dir

NAMES = ("cluster", "storage", "session", "appproxy", "database")


def missing_secrets(config: WorkbayConfig, names: Iterable[str] = NAMES) -> list[str]:
    """The secrets the configuration leaves empty (taken from, or made in, DATA_DIR/secrets.toml)."""
    return [n for n in names if not getattr(config.secrets, n)]


def ensure_secrets(config: WorkbayConfig, names: Iterable[str] = NAMES) -> WorkbayConfig:
    """Fill empty secrets from DATA_DIR/secrets.toml, creating it if needed.  Processes starting
    at the same moment on one data dir (``workbay manager`` and ``workbay agent`` side by side) get
    the same secrets: the file is read and written under an exclusive lock."""
    missing = missing_secrets(config, names)
    if not missing:
        return config
    path = Path(config.data_dir) / "secrets.toml"
    private_dir(path.parent)
    lock_fd = os.open(path.with_name(".secrets.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        stored: dict[str, str] = {}
        if path.exists():
            os.chmod(path, 0o600)  # an older installation's file may be readable by others
            stored = tomllib.loads(path.read_text()).get("secrets", {})
        changed = False
        for name in missing:
            if not stored.get(name):
                stored[name] = secrets.token_urlsafe(32)
                changed = True
        if changed:
            tmp = path.with_name(".secrets.toml.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # a leftover tmp file keeps its mode through O_CREAT
            with os.fdopen(fd, "w") as f:
                f.write("[secrets]\n" + "".join(f'{k} = "{v}"\n' for k, v in stored.items()))
            os.replace(tmp, path)  # readers never see a half-written file
    finally:
        os.close(lock_fd)  # releases the lock
    updated = config.secrets.model_copy(update={n: stored[n] for n in missing})
    return config.model_copy(update={"secrets": updated})


# --- secrets at rest in the database ------------------------------------------------------------

PREFIX = "wb1:"  # no plaintext secret key (letters, digits, -_+/=) or base32 TOTP seed has a colon
_NONCE = 12


class SecretDecryptionError(Exception):
    """A stored value does not decrypt with this installation's ``secrets.database``."""


class SecretBox:
    """AES-256-GCM with a key derived (HKDF-SHA256) from the installation's ``secrets.database``.

    A stored value is ``wb1:`` + base64url(nonce ‖ ciphertext ‖ tag); the column it belongs to is
    the associated data, so a value copied into another column does not decrypt."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("secrets.database is empty")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"workbay secrets at rest",
                   info=b"database columns v1").derive(secret.encode())
        self._aead = AESGCM(key)

    @staticmethod
    def is_encrypted(value: str | None) -> bool:
        return value is not None and value.startswith(PREFIX)

    def encrypt(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def decrypt(self, stored: str, purpose: str) -> str:
        if not self.is_encrypted(stored):
            raise SecretDecryptionError(f"{purpose} is not encrypted (migration 0004 not applied?)")
        body = stored[len(PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error) as e:
            raise SecretDecryptionError(
                f"{purpose} does not decrypt with this installation's secrets.database "
                "(a different key encrypted it; see docs/operations.md, 'Secrets at rest')") from e


def secret_box(config: WorkbayConfig) -> SecretBox:
    """The box for this configuration's ``secrets.database`` (fill it with ensure_secrets first)."""
    if not config.secrets.database:
        raise ValueError("secrets.database is not set (ensure_secrets fills it from data_dir/secrets.toml)")
    return SecretBox(config.secrets.database)
