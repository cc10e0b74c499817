"""The sidebar (UI-1): which pages each role sees, where they live, and their guide pages.

A page appears here only once it exists."""

from __future__ import annotations

from dataclasses import dataclass

from .i18n import N_

ADMIN_ROLES = frozenset({"superadmin", "admin"})
EVERYONE = frozenset({"superadmin", "admin", "user", "monitor"})


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    icon: str
    url: str
    guide_page: str
    roles: frozenset[str]
    admin_section: bool = False


NAV_ITEMS: tuple[NavItem, ...] = (
    NavItem("start", N_("Home"), "house-door", "/start", "start/start.html", EVERYONE),
    NavItem("summary", N_("Summary"), "speedometer2", "/summary", "summary/summary.html", EVERYONE),
    NavItem("sessions", N_("Sessions"), "terminal", "/sessions", "sessions_all/sessions_all.html", EVERYONE),
    NavItem("launcher", N_("Start"), "play-circle", "/session/start", "sessions_all/sessions_all.html",
            EVERYONE - {"monitor"}),
    NavItem("serving", N_("Serving"), "rocket-takeoff", "/serving", "model_serving/model_serving.html", EVERYONE),
    NavItem("data", N_("Data"), "folder2-open", "/data", "vfolder/vfolder.html", EVERYONE),
    NavItem("model-store", N_("Model Store"), "shop", "/model-store",
            "admin_menu/admin_menu.html#manage-model-cards", EVERYONE),
    NavItem("agent-summary", N_("Agent Summary"), "cpu", "/agent-summary", "agent_summary/agent_summary.html",
            EVERYONE),
    NavItem("settings", N_("Preferences"), "sliders", "/settings",
            "user_settings/user_settings.html", EVERYONE),
    NavItem("users", N_("Users"), "people", "/users", "admin_menu/admin_menu.html", ADMIN_ROLES,
            admin_section=True),
    NavItem("resource-policy", N_("Resource Policy"), "clipboard-data", "/resource-policy",
            "admin_menu/admin_menu.html#manage-resource-policy", ADMIN_ROLES, admin_section=True),
    NavItem("resources", N_("Resources"), "hdd-rack", "/resources", "admin_menu/admin_menu.html#storages",
            ADMIN_ROLES, admin_section=True),
    NavItem("environments", N_("Environments"), "box-seam", "/environments",
            "admin_menu/admin_menu.html#manage-images", ADMIN_ROLES, admin_section=True),
    NavItem("maintenance", N_("Maintenance"), "tools", "/maintenance",
            "admin_menu/admin_menu.html#server-management", frozenset({"superadmin"}), admin_section=True),
)
LOGIN_GUIDE_PAGE = "sign_up_and_log_in/sign_up_and_log_in.html"


def items_for(role: str, admin_section: bool, hidden: frozenset[str] = frozenset()) -> list[NavItem]:
    """The menu of a role; ``hidden``: keys of pages switched off by configuration."""
    return [i for i in NAV_ITEMS if role in i.roles and i.admin_section == admin_section
            and i.key not in hidden]


def landing_url(role: str) -> str:
    """Admins land on the Users page, everyone else on the Summary page."""
    return "/users" if role in ADMIN_ROLES else "/summary"


def guide_url(base: str, section: str, language: str) -> str:
    page = next((i.guide_page for i in NAV_ITEMS if i.key == section), LOGIN_GUIDE_PAGE)
    base = base.rstrip("/") + "/"
    if language != "en" and "/en/" in base:
        base = base.replace("/en/", f"/{language}/")
    return base + page
