"""Keypair and SSH key generation."""

from __future__ import annotations

import secrets
import string

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

ACCESS_KEY_LEN = 20
SECRET_KEY_LEN = 40
_UPPER_ALNUM = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits


def generate_access_key() -> str:
    return "AKIA" + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(ACCESS_KEY_LEN - 4))


def generate_secret_key() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_KEY_LEN))


def valid_access_key(value: str) -> bool:
    return len(value) == ACCESS_KEY_LEN and value.isalnum()


def valid_secret_key(value: str) -> bool:
    return len(value) == SECRET_KEY_LEN and all(c.isalnum() or c in "-_+/=" for c in value)


def generate_ssh_keypair(comment: str = "workbay") -> tuple[str, str]:
    """(public key in authorized_keys format, private key in OpenSSH PEM)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return f"{public} {comment}", private


def validate_ssh_keypair(public: str, private: str) -> None:
    """Raise ValueError unless the two keys parse and belong together."""
    try:
        priv = serialization.load_ssh_private_key(private.encode(), password=None)
        pub = serialization.load_ssh_public_key(" ".join(public.split()[:2]).encode())
    except Exception as e:  # cryptography raises several types for bad input
        raise ValueError(f"not a valid SSH key: {e}") from e
    fmt = (serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    if priv.public_key().public_bytes(*fmt) != pub.public_bytes(*fmt):
        raise ValueError("the public key does not belong to the private key")
