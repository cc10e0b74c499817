"""Secrets generated on first start: kept, private, and the same for processes starting together;
the box that encrypts secrets at rest with secrets.database."""

from __future__ import annotations

import multiprocessing
import stat

import pytest

from workbay.common.config import load_config
from workbay.common.secrets import (
    NAMES,
    PREFIX,
    SecretBox,
    SecretDecryptionError,
    ensure_secrets,
    missing_secrets,
    secret_box,
)


def _secrets_of(data_dir: str) -> dict[str, str]:
    config = ensure_secrets(load_config(None, data_dir=data_dir))
    return {n: getattr(config.secrets, n) for n in NAMES}


def test_generated_once_kept_and_private(tmp_path):
    config = load_config(None, data_dir=tmp_path, secrets={"cluster": "given"})
    assert missing_secrets(config) == [n for n in NAMES if n != "cluster"]
    first = ensure_secrets(config)
    assert first.secrets.cluster == "given"                      # configured values win
    assert all(getattr(first.secrets, n) for n in NAMES)
    again = ensure_secrets(load_config(None, data_dir=tmp_path))
    assert again.secrets.storage == first.secrets.storage        # read back, not regenerated
    assert stat.S_IMODE((tmp_path / "secrets.toml").stat().st_mode) == 0o600


def test_processes_starting_together_agree(tmp_path):
    """`workbay manager` and `workbay agent` started side by side on one data dir."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_secrets_of, [str(tmp_path)] * 8)
    assert all(r == results[0] for r in results)
    assert all(results[0].values())


# -- secrets at rest -----------------------------------------------------------------------------


def test_database_secret_is_generated_alone_when_asked(tmp_path):
    config = ensure_secrets(load_config(None, data_dir=tmp_path), ("database",))
    assert config.secrets.database and not config.secrets.cluster
    assert ensure_secrets(load_config(None, data_dir=tmp_path)).secrets.database == config.secrets.database
    assert secret_box(config).decrypt(secret_box(config).encrypt("x", "t.c"), "t.c") == "x"
    with pytest.raises(ValueError):
        secret_box(load_config(None, data_dir=tmp_path / "empty"))


def test_secret_box_round_trip_and_binding():
    box = SecretBox("installation-secret")
    sealed = box.encrypt("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/=_", "keypairs.secret_key")
    assert sealed.startswith(PREFIX) and "AbCdEf" not in sealed and ":" not in sealed[len(PREFIX):]
    assert len(sealed) <= 255  # fits the widened column
    assert box.decrypt(sealed, "keypairs.secret_key") == "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/=_"
    assert sealed != box.encrypt("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/=_", "keypairs.secret_key")  # fresh nonce
    assert SecretBox("installation-secret").decrypt(sealed, "keypairs.secret_key")  # same key: same box
    i = len(PREFIX) + 20
    tampered = sealed[:i] + ("B" if sealed[i] != "B" else "C") + sealed[i + 1:]
    for bad in (lambda: box.decrypt(sealed, "users.totp_key"),          # moved to another column
                lambda: SecretBox("another").decrypt(sealed, "keypairs.secret_key"),
                lambda: box.decrypt(tampered, "keypairs.secret_key"),
                lambda: box.decrypt("JBSWY3DPEHPK3PXP", "users.totp_key"),       # plaintext
                lambda: box.decrypt(PREFIX + "!!", "users.totp_key")):
        with pytest.raises(SecretDecryptionError):
            bad()
    assert SecretBox.is_encrypted(sealed) and not SecretBox.is_encrypted("JBSWY3DPEHPK3PXP")
    with pytest.raises(ValueError):
        SecretBox("")
