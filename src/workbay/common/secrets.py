"""Secrets that lite generates on first start and keeps under the data dir (mode 0600)."""

from __future__ import annotations

import fcntl
import os
import secrets
import tomllib
from pathlib import Path

from .config import WorkbayConfig

NAMES = ("cluster", "storage", "session", "appproxy")


def missing_secrets(config: WorkbayConfig) -> list[str]:
    """The secrets the configuration leaves empty (taken from, or made in, DATA_DIR/secrets.toml)."""
    return [n for n in NAMES if not getattr(config.secrets, n)]


def ensure_secrets(config: WorkbayConfig) -> WorkbayConfig:
    """Fill empty secrets from DATA_DIR/secrets.toml, creating it if needed.  Processes starting
    at the same moment on one data dir (``workbay manager`` and ``workbay agent`` side by side) get
    the same secrets: the file is read and written under an exclusive lock."""
    missing = missing_secrets(config)
    if not missing:
        return config
    path = Path(config.data_dir) / "secrets.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(path.with_name(".secrets.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        stored: dict[str, str] = {}
        if path.exists():
            stored = tomllib.loads(path.read_text()).get("secrets", {})
        changed = False
        for name in missing:
            if not stored.get(name):
                stored[name] = secrets.token_urlsafe(32)
                changed = True
        if changed:
            tmp = path.with_name(".secrets.toml.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("[secrets]\n" + "".join(f'{k} = "{v}"\n' for k, v in stored.items()))
            os.replace(tmp, path)  # readers never see a half-written file
    finally:
        os.close(lock_fd)  # releases the lock
    updated = config.secrets.model_copy(update={n: stored[n] for n in missing})
    return config.model_copy(update={"secrets": updated})
