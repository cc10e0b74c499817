"""Where the CLI finds its identity: keypair env vars, or the cookie saved by `workbay login`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .sdk import Client

DEFAULT_ENDPOINT = "http://127.0.0.1:8090"


def config_dir() -> Path:
    if os.environ.get("WORKBAY_CONFIG_DIR"):
        return Path(os.environ["WORKBAY_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "workbay"


def session_file() -> Path:
    return config_dir() / "session.json"


def save_session(endpoint: str, email: str, cookies: dict[str, str]) -> None:
    path = session_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"endpoint": endpoint, "email": email, "cookies": cookies}, f)


def load_session() -> dict[str, Any] | None:
    try:
        return json.loads(session_file().read_text())
    except (FileNotFoundError, ValueError):
        return None


def clear_session() -> None:
    session_file().unlink(missing_ok=True)


def make_client(endpoint: str | None = None) -> Client:
    """Keypair mode when WORKBAY_ACCESS_KEY/WORKBAY_SECRET_KEY are set, else the saved login."""
    ak, sk = os.environ.get("WORKBAY_ACCESS_KEY"), os.environ.get("WORKBAY_SECRET_KEY")
    if ak and sk:
        return Client(endpoint or os.environ.get("WORKBAY_ENDPOINT") or "http://127.0.0.1:8091", ak, sk)
    saved = load_session()
    if saved:
        return Client(endpoint or saved["endpoint"], mode="session", cookies=saved["cookies"])
    raise LookupError("Not logged in: run `workbay login`, or set WORKBAY_ACCESS_KEY, "
                      "WORKBAY_SECRET_KEY and WORKBAY_ENDPOINT.")
