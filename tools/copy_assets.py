#!/usr/bin/env python3
"""Copy the WebUI's front-end assets from node_modules/ (installed by `npm ci`) into the package.

The destination, src/workbay/web/static/vendor/, is git-ignored: assets are pinned in
package.json / package-lock.json and never committed.  Run from anywhere; idempotent.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "src" / "workbay" / "web" / "static" / "vendor"

# (source under node_modules, destination under vendor/)
ASSETS: list[tuple[str, str]] = [
    ("bootstrap/dist/css/bootstrap.min.css", "bootstrap/bootstrap.min.css"),
    ("bootstrap/dist/css/bootstrap.min.css.map", "bootstrap/bootstrap.min.css.map"),
    ("bootstrap/dist/js/bootstrap.bundle.min.js", "bootstrap/bootstrap.bundle.min.js"),
    ("bootstrap/dist/js/bootstrap.bundle.min.js.map", "bootstrap/bootstrap.bundle.min.js.map"),
    ("bootstrap-icons/font/bootstrap-icons.min.css", "bootstrap-icons/bootstrap-icons.min.css"),
    ("bootstrap-icons/font/fonts", "bootstrap-icons/fonts"),
    ("htmx.org/dist/htmx.min.js", "htmx/htmx.min.js"),
    ("@xterm/xterm/lib/xterm.js", "xterm/xterm.js"),
    ("@xterm/xterm/css/xterm.css", "xterm/xterm.css"),
    ("tus-js-client/dist/tus.min.js", "tus/tus.min.js"),
    ("tus-js-client/dist/tus.min.js.map", "tus/tus.min.js.map"),
]


def copy_assets(node_modules: Path = NODE_MODULES, vendor: Path = VENDOR) -> list[Path]:
    missing = [src for src, _ in ASSETS if not (node_modules / src).exists()]
    if missing:
        raise SystemExit("missing front-end assets (run `npm ci` first): " + ", ".join(missing))
    copied = []
    for src, dst in ASSETS:
        source, target = node_modules / src, vendor / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
        copied.append(target)
    return copied


def main() -> int:
    copied = copy_assets()
    print(f"copied {len(copied)} front-end assets into {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
