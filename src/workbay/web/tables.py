"""Tables (UI-7): columns the user can hide, server-side pagination, URLs that keep the state."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request

PAGE_SIZES = (10, 20, 50, 100)
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # marked with N_(), translated when shown
    align: str = ""


@dataclass(frozen=True)
class Pager:
    total: int
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first_item(self) -> int:
        return 0 if self.total == 0 else self.offset + 1

    @property
    def last_item(self) -> int:
        return min(self.total, self.offset + self.size)

    def window(self, width: int = 5) -> list[int]:
        """Page numbers around the current one."""
        start = max(1, min(self.page - width // 2, self.page_count - width + 1))
        return list(range(start, min(self.page_count, start + width - 1) + 1))


def requested_page(request: Request) -> tuple[int, int]:
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    try:
        size = int(request.query_params.get("size", DEFAULT_PAGE_SIZE))
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    return page, size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE


def url_with(request: Request, **changes: object) -> str:
    """The current page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")
