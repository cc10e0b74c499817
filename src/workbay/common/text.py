"""Text that users give: what characters each kind of field may hold (pure).

- **plain text** (full names, descriptions, tags, environment values): no control characters
  (Unicode category Cc: NUL, C0, DEL, C1) except tab; no lone surrogates.
- **names** (folders, …) — also shown to other people, in lists, paths and terminals: on top of
  that no format characters (Cf: bidi embeddings/overrides/isolates U+202A–U+202E,
  U+2066–U+2069, zero-width U+200B–U+200F, BOM U+FEFF, …), no line/paragraph separators
  (Zl, Zp), no private-use (Co) or unassigned (Cn) code points: what a name shows is what it is.

Validators raise ``ValueError`` with a message naming the first offending character
(``U+202E``), for pydantic's ``AfterValidator`` or direct calls.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

TEXT_REFUSED = frozenset({"Cc", "Cs"})
NAME_REFUSED = frozenset({"Cc", "Cs", "Cf", "Co", "Cn", "Zl", "Zp"})
_CATEGORY_WORDS = {"Cc": "a control character", "Cs": "a lone surrogate", "Cf": "an invisible format character",
                   "Co": "a private-use character", "Cn": "an unassigned code point",
                   "Zl": "a line separator", "Zp": "a paragraph separator"}


def first_refused(value: str, refused: frozenset[str], allow: str = "") -> str | None:
    """A description of the first character of ``value`` in one of the ``refused`` categories
    (``allow`` excepted), or None."""
    for ch in value:
        if ch in allow or (" " <= ch <= "~"):
            continue
        cat = unicodedata.category(ch)
        if cat in refused:
            return f"U+{ord(ch):04X} ({_CATEGORY_WORDS.get(cat, cat)})"
    return None


def check_text(value: str, allow: str = "\t") -> str:
    bad = first_refused(value, TEXT_REFUSED, allow)
    if bad:
        raise ValueError(f"must not contain {bad}")
    return value


def check_multiline(value: str) -> str:
    """Scripts and commands: tab and line breaks allowed, other control characters not."""
    return check_text(value, allow="\t\n\r")


def check_name(value: str) -> str:
    bad = first_refused(value, NAME_REFUSED)
    if bad:
        raise ValueError(f"must not contain {bad}")
    return value


PlainText = Annotated[str, AfterValidator(check_text)]
MultilineText = Annotated[str, AfterValidator(check_multiline)]
NameText = Annotated[str, AfterValidator(check_name)]
