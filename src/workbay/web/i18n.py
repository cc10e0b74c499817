"""English and Korean for the WebUI: .po catalogs read at startup (no compiled .mo files).

Every user-visible string goes through ``_()`` (templates get a ``_`` bound to the request's
language).  Strings defined at import time are marked with ``N_()`` and translated when shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

CATALOG_DIR = Path(__file__).parent / "i18n"
DEFAULT_LANGUAGE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "ko": "한국어"}


def N_(message: str) -> str:
    """Mark a string for extraction without translating it now."""
    return message


@dataclass(frozen=True)
class Translator:
    language: str
    messages: dict[str, str]

    def gettext(self, message: str, **values: Any) -> str:
        text = self.messages.get(message) or message
        return text % values if values else text

    __call__ = gettext


def load_catalog(path: Path) -> dict[str, str]:
    with path.open("rb") as f:
        catalog = read_po(f)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


def load_translators(catalog_dir: Path = CATALOG_DIR) -> dict[str, Translator]:
    translators = {DEFAULT_LANGUAGE: Translator(DEFAULT_LANGUAGE, {})}
    for language in LANGUAGES:
        po = catalog_dir / language / "LC_MESSAGES" / "messages.po"
        if language != DEFAULT_LANGUAGE:
            translators[language] = Translator(language, load_catalog(po))
    return translators


def negotiate(accept_language: str | None) -> str:
    """The best supported language of an Accept-Language header (q-values honoured)."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES:
            choices.append((quality, -index, base))
    return max(choices)[2] if choices and max(choices)[0] > 0 else DEFAULT_LANGUAGE


# -- catalog maintenance (tests and tools/update_web_catalog.py) -------------------------------
WEB_DIR = Path(__file__).parent
EXTRACT_METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]


def extract_messages(root: Path = WEB_DIR) -> dict[str, list[str]]:
    """Every ``_()`` / ``N_()`` string under the web package → where it is used."""
    from babel.messages.extract import extract_from_dir

    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(root), method_map=EXTRACT_METHODS, keywords={"_": None, "N_": None, "gettext": None},
            options_map={"**/templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}}):
        if isinstance(message, str) and message:
            found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found
