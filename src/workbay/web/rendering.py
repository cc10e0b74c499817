"""Jinja2 rendering with the request's language, theme, CSRF token and the shell's context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from workbay import API_VERSION, __version__

from . import formatting
from .cookies import set_cookie
from .i18n import LANGUAGES

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def _static_version() -> str:
    """Cache-busting token: changes whenever a static file of ours changes."""
    ours = [p for p in STATIC_DIR.rglob("*") if p.is_file() and "vendor" not in p.parts]
    return str(int(max((p.stat().st_mtime for p in ours), default=0)))


def make_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    version = _static_version()
    env.globals.update(
        static=lambda path: f"/static/{path}?v={version}",
        languages=LANGUAGES, workbay_version=__version__, api_version=API_VERSION,
    )
    env.filters.update(
        binary_size=formatting.binary_size, duration=formatting.duration,
        days_since=formatting.days_since, short_datetime=formatting.short_datetime,
        decimal_text=formatting.decimal_text,
        pair=lambda value: (value, value),
        project_option=lambda project: (project["id"], project["name"]),
    )
    return env


class Renderer:
    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or make_environment()

    def render(self, request: Request, template: str, status_code: int = 200,
               headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        page = request.state.page  # set by the page_context dependency (context.py)
        html = self.env.get_template(template).render({**page.template_context(), **context})
        response = HTMLResponse(html, status_code=status_code, headers=headers)
        for name, value, max_age in page.pending_cookies:
            set_cookie(response, request, name, value, max_age)
        return response
