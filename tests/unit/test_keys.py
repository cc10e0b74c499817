"""Keypair and SSH key generation and validation."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from workbay.manager.services import keys


def test_access_keys_are_20_uppercase_alphanumerics():
    generated = {keys.generate_access_key() for _ in range(300)}
    assert len(generated) == 300
    for ak in generated:
        assert re.fullmatch(r"AKIA[A-Z0-9]{16}", ak) and len(ak) == keys.ACCESS_KEY_LEN == 20
        assert keys.valid_access_key(ak)


def test_secret_keys_are_40_alphanumerics():
    generated = {keys.generate_secret_key() for _ in range(300)}
    assert len(generated) == 300
    for sk in generated:
        assert re.fullmatch(r"[A-Za-z0-9]{40}", sk) and len(sk) == keys.SECRET_KEY_LEN == 40
        assert keys.valid_secret_key(sk)


@pytest.mark.parametrize("value, ok", [
    ("AKIA" + "A" * 16, True), ("a" * 20, True), ("1" * 20, True),
    ("A" * 19, False), ("A" * 21, False), ("A" * 19 + "-", False), ("A" * 19 + "é", False),
    ("A" * 19 + " ", False), ("", False),
])
def test_valid_access_key(value, ok):
    assert keys.valid_access_key(value) is ok


@pytest.mark.parametrize("value, ok", [
    ("a" * 40, True), ("aB3-_+/=" * 5, True),
    ("a" * 39, False), ("a" * 41, False), ("a" * 39 + "!", False), ("a" * 39 + "ü", False),
])
def test_valid_secret_key(value, ok):
    assert keys.valid_secret_key(value) is ok


def test_generated_ssh_keypair_is_ed25519_and_validates():
    public, private = keys.generate_ssh_keypair(comment="me@x.test")
    assert re.fullmatch(r"ssh-ed25519 AAAA[A-Za-z0-9+/=]+ me@x\.test", public)
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    keys.validate_ssh_keypair(public, private)


def _rsa_pem() -> tuple[str, str]:
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption()).decode()
    pub = k.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                      serialization.PublicFormat.OpenSSH).decode()
    return pub + " legacy", pem


def test_pem_rsa_keys_are_accepted():
    keys.validate_ssh_keypair(*_rsa_pem())


def test_mismatched_and_malformed_pairs_are_refused():
    public, private = keys.generate_ssh_keypair()
    other_public, _ = keys.generate_ssh_keypair()
    with pytest.raises(ValueError, match="does not belong"):
        keys.validate_ssh_keypair(other_public, private)
    with pytest.raises(ValueError, match="public key"):
        keys.validate_ssh_keypair("ssh-ed25519 not-base64", private)
    with pytest.raises(ValueError, match="private key"):
        keys.validate_ssh_keypair(public, "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n")
    encrypted = ed25519.Ed25519PrivateKey.generate()
    enc_pem = encrypted.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                      serialization.BestAvailableEncryption(b"pass")).decode()
    enc_pub = encrypted.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                  serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(ValueError, match="unencrypted"):
        keys.validate_ssh_keypair(enc_pub, enc_pem)
    with pytest.raises(ValueError):
        keys.validate_ssh_keypair(public, "\ud800")
