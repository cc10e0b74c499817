#!/usr/bin/env python3
"""Bring the WebUI's Korean catalog up to date with the strings in the code.

Extracts every ``_()`` / ``N_()`` string from src/workbay/web (templates and Python), adds the new
ones to src/workbay/web/i18n/ko/LC_MESSAGES/messages.po with an empty translation, drops the ones
no longer used, keeps every existing translation, and lists what still needs translating.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from babel.messages.catalog import Catalog  # noqa: E402
from babel.messages.pofile import read_po, write_po  # noqa: E402

from workbay import __version__  # noqa: E402
from workbay.web.i18n import CATALOG_DIR, extract_messages  # noqa: E402


def update(language: str = "ko") -> list[str]:
    path = CATALOG_DIR / language / "LC_MESSAGES" / "messages.po"
    old = Catalog(locale=language)
    if path.exists():
        with path.open("rb") as f:
            old = read_po(f, locale=language)
    new = Catalog(locale=language, project="Workbay WebUI", version=__version__, charset="utf-8",
                  header_comment=f"# {language} translations of the Workbay WebUI.\n"
                                 "# Maintained with tools/update_web_catalog.py.",
                  copyright_holder="The Workbay authors",
                  last_translator="The Workbay authors", language_team=f"{language} (Workbay)",
                  creation_date=old.creation_date, revision_date=old.revision_date, fuzzy=False)
    for message, places in sorted(extract_messages().items()):
        previous = old.get(message)
        new.add(message, previous.string if previous else "",
                locations=[(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in places])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, new, width=100, omit_header=False, sort_output=True, include_lineno=False)
    return [m.id for m in new if m.id and not m.string]


def main() -> int:
    missing = update()
    for message in missing:
        print(f"untranslated: {message}")
    print(f"{len(missing)} untranslated string(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
