"""Reading submitted forms: trimmed text, raw secrets, switches, numbers with an "unlimited" box."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData as StarletteForm
from starlette.requests import Request


@dataclass
class FormData:
    form: StarletteForm

    def raw(self, name: str) -> str:
        """The value as typed (passwords, keys): not trimmed."""
        value = self.form.get(name)
        return value if isinstance(value, str) else ""

    def text(self, name: str) -> str:
        return self.raw(name).strip()

    def flag(self, name: str) -> bool:
        return self.text(name).lower() in ("on", "true", "1", "yes")

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self.form.getlist(name) if isinstance(v, str) and v.strip()]

    def has(self, name: str) -> bool:
        return name in self.form

    def values(self, names: set[str]) -> dict[str, Any]:
        """What to put back into a form shown again with errors (never secrets)."""
        return {n: self.text(n) for n in names if n in self.form}


async def read_form(request: Request) -> FormData:
    return FormData(await request.form())


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def integer(form: FormData, name: str, message: str, minimum: int | None = None,
            maximum: int | None = None) -> int:
    """A whole number within bounds, else FieldError(name, message)."""
    try:
        value = int(form.text(name))
    except ValueError as e:
        raise FieldError(name, message) from e
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise FieldError(name, message)
    return value
