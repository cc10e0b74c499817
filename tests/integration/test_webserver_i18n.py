"""The Korean catalog covers every user-visible string of the WebUI (templates and Python)."""

from __future__ import annotations

import re

from workbay.web.i18n import CATALOG_DIR, extract_messages, load_catalog, load_translators

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_every_string_has_a_korean_translation():
    korean = load_catalog(CATALOG_DIR / "ko" / "LC_MESSAGES" / "messages.po")
    used = extract_messages()
    assert len(used) > 200  # the extraction really sees the templates and the Python code
    missing = {m: places for m, places in used.items() if not korean.get(m)}
    assert not missing, "untranslated (run tools/update_web_catalog.py, then translate):\n" + "\n".join(
        f"  {m!r} at {', '.join(p)}" for m, p in missing.items())


def test_translations_keep_their_placeholders():
    korean = load_catalog(CATALOG_DIR / "ko" / "LC_MESSAGES" / "messages.po")
    broken = {m: t for m, t in korean.items()
              if sorted(PLACEHOLDER.findall(m)) != sorted(PLACEHOLDER.findall(t))}
    assert not broken


def test_the_catalog_holds_no_stale_strings():
    korean = load_catalog(CATALOG_DIR / "ko" / "LC_MESSAGES" / "messages.po")
    stale = set(korean) - set(extract_messages())
    assert not stale, f"no longer used (run tools/update_web_catalog.py): {sorted(stale)}"


def test_translators_format_values():
    ko = load_translators()["ko"]
    assert ko.gettext("Total %(count)s items", count=3) == "총 3개"
    assert load_translators()["en"].gettext("Total %(count)s items", count=3) == "Total 3 items"
