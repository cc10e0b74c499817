"""Secrets that lite generates on first start and keeps under the data dir (mode 0600)."""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path

from .config import WorkbayConfig

NAMES = ("cluster", "storage", "session", "appproxy")


def ensure_secrets(config: WorkbayConfig) -> WorkbayConfig:
    """Fill empty secrets from DATA_DIR/secrets.toml, creating it if needed."""
    missing = [n for n in NAMES if not getattr(config.secrets, n)]
    if not missing:
        return config
    path = Path(config.data_dir) / "secrets.toml"
    stored: dict[str, str] = {}
    if path.exists():
        stored = tomllib.loads(path.read_text()).get("secrets", {})
    changed = False
    for name in missing:
        if not stored.get(name):
            stored[name] = secrets.token_urlsafe(32)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("[secrets]\n" + "".join(f'{k} = "{v}"\n' for k, v in stored.items()))
    updated = config.secrets.model_copy(update={n: stored[n] for n in missing})
    return config.model_copy(update={"secrets": updated})
