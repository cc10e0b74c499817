"""Secrets generated on first start: kept, private, and the same for processes starting together."""

from __future__ import annotations

import multiprocessing
import stat

from workbay.common.config import load_config
from workbay.common.secrets import NAMES, ensure_secrets, missing_secrets


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
