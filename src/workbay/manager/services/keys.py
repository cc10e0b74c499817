"""Keypair and SSH key generation."""

from __future__ import annotations

import secrets
import string

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

ACCESS_KEY_LEN = 20
SECRET_KEY_LEN = 40
_UPPER_ALNUM = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits


def generate_access_key() -> str:
    return "AKIA" + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(ACCESS_KEY_LEN - 4))


def generate_secret_key() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_KEY_LEN))


def valid_access_key(value: str) -> bool:
    """20 ASCII letters or digits."""
    return len(value) == ACCESS_KEY_LEN and value.isascii() and value.isalnum()


def valid_secret_key(value: str) -> bool:
    """40 ASCII letters, digits or ``-_+/=``."""
    return (len(value) == SECRET_KEY_LEN and value.isascii()
            and all(c.isalnum() or c in "-_+/=" for c in value))


def generate_ssh_keypair(comment: str = "workbay") -> tuple[str, str]:
    """(public key in authorized_keys format, private key in OpenSSH PEM)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return f"{public} {comment}", private


def _load_private_key(private: str) -> PrivateKeyTypes | serialization.SSHPrivateKeyTypes:
    """An unencrypted private key in OpenSSH format, or PEM (PKCS#1/PKCS#8, what older tools and
    Backend.AI generate)."""
    data = private.strip().encode() + b"\n"
    try:
        return serialization.load_ssh_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ValueError("the private key is not an unencrypted OpenSSH or PEM private key") from e


def validate_ssh_keypair(public: str, private: str) -> None:
    """Raise ValueError unless the two keys parse and belong together."""
    try:
        pub = serialization.load_ssh_public_key(" ".join(public.split()[:2]).encode())
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError) as e:
        raise ValueError("the public key is not in OpenSSH format (\"ssh-ed25519 AAAA… comment\")") from e
    try:
        priv = _load_private_key(private)
    except UnicodeEncodeError as e:
        raise ValueError("the private key is not an unencrypted OpenSSH or PEM private key") from e
    fmt = (serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    try:
        mine = priv.public_key().public_bytes(*fmt)
    except (ValueError, TypeError, AttributeError) as e:  # e.g. a DH key: no SSH form
        raise ValueError("the private key's type cannot be used for SSH") from e
    if mine != pub.public_bytes(*fmt):
        raise ValueError("the public key does not belong to the private key")
