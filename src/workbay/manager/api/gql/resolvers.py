"""Backend.AI's read-only GraphQL surface (``POST /admin/gql``), limited to what the official client
23.09 sends for its list commands: ``compute_session_list`` (``backend.ai ps``), ``vfolder_list``
(``backend.ai vfolder list``), ``keypair`` (``ps`` asks whether its caller is an admin),
``agent_list`` (``backend.ai admin agent list``), ``user_list`` and ``user`` (``backend.ai admin user
list`` / ``info``), ``keypair_list`` (``backend.ai admin keypair list``), ``groups`` and ``group``
(``admin group list`` / ``info``), ``scaling_groups`` and ``scaling_group`` (``admin scaling-group
list`` / ``info``) and ``images`` (``admin image list``).

Resolvers call services only (no SQL here); the services apply the same authorization as ``GET /sessions``,
``GET /folders``, the keypair API, ``GET /admin/agents``, ``GET /admin/users``, ``GET /admin/projects``, ``GET /admin/resource-groups``
and ``GET /images``.  No mutations: the schema has no
Mutation type, so graphql-core refuses them at validation.  ``filter`` expressions are refused
rather than ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

from graphql import GraphQLError, execute, parse, validate
from pydantic import BaseModel, ConfigDict, Field

from workbay.common.domain import ALL_STATUSES, AgentStatus, UserStatus
from workbay.common.errors import BackendError
from workbay.manager.services.access import Actor
from workbay.manager.services.serialize import Page, keypair_out
from workbay.manager.services.session_queries import live_sessions_by_access_key
from workbay.manager.services.users import user_profiles
from workbay.manager.state import ManagerState

from ..folders import folder_wire
from .schema import MAX_PAGE_SIZE, MAX_QUERY_CHARS, MAX_TOKENS, SCHEMA

SESSION_STATUSES: tuple[str, ...] = ALL_STATUSES
AGENT_STATUSES: tuple[str, ...] = tuple(AgentStatus)
USER_STATUSES: tuple[str, ...] = tuple(UserStatus)
# Backend.AI's ordering columns -> Workbay's session sort keys.
SESSION_ORDER_KEYS = {"created_at": "created_at", "name": "name", "status": "status", "type": "type",
                      "terminated_at": "terminated_at", "scaling_group": "resource_group"}
AGENT_ORDER_KEYS = ("id", "status", "scaling_group", "region", "architecture", "addr", "first_contact")
USER_ORDER_KEYS = ("uuid", "username", "role", "email", "full_name", "need_password_change", "status",
                   "status_info", "created_at", "modified_at", "domain_name")
KEYPAIR_ORDER_KEYS = ("access_key", "user_id", "is_active", "is_admin", "created_at", "last_used",
                      "resource_policy", "rate_limit")
FOLDER_ORDER_KEYS = ("host", "name", "created_at", "creator", "ownership_type", "status", "permission")


class GraphQLRequestError(BackendError):
    """What Backend.AI answers for any GraphQL error: 400 with the GraphQL errors as ``data``."""

    status, kind, title = 400, "graphql-error", "GraphQL-generated error"


class GraphQLRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    variables: dict[str, Any] | None = None
    operationName: str | None = Field(None, max_length=256)


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise GraphQLError(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    if offset < 0:
        raise GraphQLError("offset must not be negative.")


def _no_filter(filter_expr: str | None) -> None:
    if filter_expr:
        raise GraphQLError("filter expressions are not supported by this server; list without --filter.")


def _order(expr: str | None, allowed: Any) -> tuple[str, bool] | None:
    """Backend.AI's ``column``, ``+column`` or ``-column`` -> (column, descending)."""
    if not expr:
        return None
    expr = expr.strip()
    desc = expr.startswith("-")
    column = expr.lstrip("+-").strip()
    if column not in allowed:
        raise GraphQLError(f"order must be one of {', '.join(sorted(allowed))} (prefix - to reverse).")
    return column, desc


def _statuses(status: str | None) -> str | None:
    if not status:
        return None
    wanted = [s.strip().upper() for s in status.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SESSION_STATUSES]
    if unknown or not wanted:
        raise GraphQLError(f"Unknown session status {', '.join(unknown)[:100]}; "
                           f"one or more of {', '.join(SESSION_STATUSES)} separated by commas.")
    return ",".join(wanted)


def _status_changed(item: dict[str, Any]) -> str | None:
    history = item.get("status_history") or []
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    return last.get("timestamp") or item.get("created_at")


def _session_node(item: dict[str, Any], project_names: dict[str, str]) -> dict[str, Any]:
    kernels = item.get("kernels") or []
    main = next((k for k in kernels if k.get("cluster_role") == "main"), None)
    return {
        **item,
        "session_id": item["id"], "main_kernel_id": main["id"] if main else None,
        "group_id": item["project_id"], "group_name": project_names.get(item["project_id"]),
        "agent_ids": item.get("agents") or [], "user_email": item.get("owner_email"),
        "status_changed": _status_changed(item), "scaling_group": item["resource_group"],
        "occupied_slots": item["occupying_slots"], "abusing_reports": [],
        "mounts": [m["name"] for m in item.get("mounts") or [] if m.get("name")],
    }


def _folder_node(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "id": str(uuid.UUID(item["id"]))}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _agent_node(item: dict[str, Any]) -> dict[str, Any]:
    node = (item.get("live_stat") or {}).get("node") or {}
    mem = _number((node.get("mem") or {}).get("current"))
    return {**item, "scaling_group": item["resource_group"],
            "cpu_cur_pct": _number((node.get("cpu_util") or {}).get("pct")),
            # the client divides it without a None check; an agent that reported no memory shows 0
            "mem_cur_bytes": mem if mem is not None else 0.0}


def _user_node(item: dict[str, Any], main_keys: dict[str, str]) -> dict[str, Any]:
    return {**item, "id": item["uuid"], "is_active": item["status"] == "active", "groups": item["projects"],
            "main_access_key": main_keys.get(item["uuid"])}


def _group_node(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k != "allowed_folder_hosts"}
    return {**out, "allowed_vfolder_hosts": item["allowed_folder_hosts"], "integration_id": None}


def _scaling_group_node(item: dict[str, Any]) -> dict[str, Any]:
    # Workbay's resource groups are fixed sets of agents (Backend.AI's "static" driver), reached through
    # the app-proxy; the proxy's token is the manager's secret, never shown.
    return {**item, "driver": "static", "driver_opts": {}, "use_host_network": False, "wsproxy_api_token": None}


def _is_operation_image(item: dict[str, Any]) -> bool:
    return "operation" in str((item.get("labels") or {}).get("ai.backend.features", "")).split()


def _image_node(item: dict[str, Any]) -> dict[str, Any]:
    labels = item.get("labels") or {}
    return {**item, "labels": [{"key": k, "value": str(v)} for k, v in labels.items()], "aliases": [],
            "installed_agents": item.get("installed_on") or []}


def _json_page(page: Page[Any]) -> dict[str, Any]:
    """A service's typed page as the plain objects the node builders read."""
    return {"items": [x.as_json() for x in page.items], "total_count": page.total_count}


async def _every(fetch: Callable[[int, int], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """All items of a service's paginated list, page by page (for orders and filters it has not)."""
    items: list[dict[str, Any]] = []
    while True:
        page = await fetch(MAX_PAGE_SIZE, len(items))
        items += page["items"]
        if not page["items"] or len(items) >= page["total_count"]:
            return items


def _sorted_page(items: list[dict[str, Any]], ordering: tuple[str, bool] | None, key: str, limit: int,
                 offset: int) -> dict[str, Any]:
    if ordering:
        column, desc = ordering
        # None sorts first ascending; the key keeps equal values in a stable order
        # (False values such as is_active=false compare as themselves, not as "": no bool/str comparisons)
        items = sorted(items, key=lambda i: (i.get(column) is not None,
                                             i.get(column) if i.get(column) is not None else "", i[key]),
                       reverse=desc)
    return {"items": items[offset:offset + limit], "total_count": len(items)}


@dataclass
class GraphQLContext:
    actor: Actor
    service: GraphQLExecutor


class GraphQLExecutor:
    """Runs one query against the manager's services (cheap to make: it only holds references)."""

    def __init__(self, st: ManagerState) -> None:
        self.ctx = st.ctx
        self.sessions = st.sessions
        self.folders = st.folders
        self.auth = st.auth
        self.keypairs = st.keypairs
        self.compute_admin = st.compute_admin
        self.users = st.users
        self.projects = st.projects

    async def execute(self, actor: Actor, request: GraphQLRequest) -> dict[str, Any]:
        try:
            document = parse(request.query, max_tokens=MAX_TOKENS)
        except GraphQLError as e:
            raise self._failed([e]) from None
        errors = validate(SCHEMA, document)
        if errors:
            raise self._failed(errors)
        root = {"compute_session_list": self._session_list, "vfolder_list": self._folder_list,
                "keypair": self._keypair,
                "agent_list": self._agent_list, "user_list": self._user_list, "user": self._user,
                "keypair_list": self._keypair_list, "groups": self._groups, "group": self._group,
                "scaling_groups": self._scaling_groups, "scaling_group": self._scaling_group,
                "images": self._images}
        result = execute(SCHEMA, document, root_value=root, context_value=GraphQLContext(actor, self),
                         variable_values=request.variables, operation_name=request.operationName)
        if isawaitable(result):  # synchronous when variables fail to coerce, before any resolver ran
            result = await result
        if result.errors:
            for err in result.errors:
                # A resolver's own failure (a bug, the database) is a server error, not the query's.
                original = err.original_error
                if original is not None and not isinstance(original, (BackendError, GraphQLError)):
                    raise original
            raise self._failed(result.errors)
        return {"data": result.data}

    @staticmethod
    def _failed(errors: list[GraphQLError]) -> GraphQLRequestError:
        formatted = []
        for e in errors:
            entry = e.formatted
            original = e.original_error
            if isinstance(original, BackendError):
                entry["message"] = original.msg or original.title
                entry["extensions"] = {"type": original.body()["type"], "status": original.status}
            formatted.append(entry)
        return GraphQLRequestError("; ".join(f["message"] for f in formatted)[:1000], data=formatted,
                                   extra={"errors": formatted})

    # -- resolvers (graphql-core calls a callable root value as (info, **arguments)) -----------------
    async def _session_list(self, info: Any, limit: int, offset: int, status: str | None = None,
                            access_key: str | None = None, group_id: str | None = None,
                            filter: str | None = None, order: str | None = None) -> dict[str, Any]:
        actor: Actor = info.context.actor
        _page(limit, offset)
        _no_filter(filter)
        ordering = _order(order, SESSION_ORDER_KEYS)
        sort = None
        if ordering:
            sort = ("-" if ordering[1] else "") + SESSION_ORDER_KEYS[ordering[0]]
        # As Backend.AI: administrators and monitors list every session of their scope, users their own.
        found = await self.sessions.list(
            actor, status=_statuses(status), session_type=None, access_key=access_key,
            project_id=uuid.UUID(group_id) if group_id else None, owner_email=None, search=None,
            all_users=actor.role in ("superadmin", "admin", "monitor"), limit=limit, offset=offset, sort=sort)
        items = [i.as_json() for i in found.items]
        names = await self._project_names({i["project_id"] for i in items})
        return {"items": [_session_node(i, names) for i in items], "total_count": found.total_count}

    async def _project_names(self, ids: set[str]) -> dict[str, str]:
        names = await self.projects.names({uuid.UUID(i) for i in ids})
        return {str(pid): name for pid, name in names.items()}

    async def _folder_list(self, info: Any, limit: int, offset: int, group_id: str | None = None,
                           user_id: str | None = None, filter: str | None = None,
                           order: str | None = None) -> dict[str, Any]:
        actor: Actor = info.context.actor
        _page(limit, offset)
        _no_filter(filter)
        ordering = _order(order, FOLDER_ORDER_KEYS)
        items = [folder_wire(f) for f in await self.folders.list(actor, project_id=group_id)]
        if user_id:
            items = [i for i in items if i["user"] == user_id]
        page = _sorted_page(items, ordering, "id", limit, offset)
        return {**page, "items": [_folder_node(i) for i in page["items"]]}

    async def _agent_list(self, info: Any, limit: int, offset: int, status: str | None = None,
                          scaling_group: str | None = None, filter: str | None = None,
                          order: str | None = None) -> dict[str, Any]:
        _page(limit, offset)
        _no_filter(filter)
        ordering = _order(order, AGENT_ORDER_KEYS)
        if status and status.upper() not in AGENT_STATUSES:
            raise GraphQLError(f"status must be one of {', '.join(AGENT_STATUSES)}.")
        found = await self.compute_admin.list_agents(info.context.actor, status, scaling_group)
        items = [_agent_node(a.as_json()) for a in found]
        return _sorted_page(items, ordering, "id", limit, offset)

    async def _keypair(self, info: Any, access_key: str | None = None) -> dict[str, Any]:
        actor: Actor = info.context.actor
        if access_key and access_key != actor.access_key:
            found = (await self.keypairs.get(actor, access_key)).as_json()  # administrators and monitors only
            user = {"email": found["user_email"], "full_name": None}
        else:
            row = await self.auth.resolve_access_key(actor.access_key)
            if row is None:
                raise GraphQLError("The caller's keypair is no longer active.")
            kp, owner = row
            found = keypair_out(kp, owner.email, show_secret=True)  # the caller's own keypair
            user = {"email": owner.email, "full_name": owner.full_name}
        # Backend.AI's KeyPair.user_id is the owner's email
        return {**found, "user_id": found["user_email"], "user_info": user}

    async def _user_list(self, info: Any, limit: int, offset: int, status: str | None = None,
                         group_id: str | None = None, filter: str | None = None,
                         order: str | None = None) -> dict[str, Any]:
        actor: Actor = info.context.actor
        _page(limit, offset)
        _no_filter(filter)
        ordering = _order(order, USER_ORDER_KEYS)
        if status:
            status = status.strip().lower()
            if status not in USER_STATUSES:
                raise GraphQLError(f"status must be one of {', '.join(USER_STATUSES)}.")

        async def fetch(page_size: int, page_offset: int) -> dict[str, Any]:
            # administrators and monitors, confined to their domain unless superadmin (as GET /admin/users)
            return _json_page(await self.users.list(actor, status, None, None, page_size, page_offset))

        if ordering or group_id:
            items = await _every(fetch)
            if group_id:
                items = [u for u in items if any(p["id"] == group_id for p in u["projects"])]
            page = _sorted_page(items, ordering, "uuid", limit, offset)
        else:
            page = await fetch(limit, offset)
        main_keys = await self._main_access_keys([u["uuid"] for u in page["items"]])
        return {**page, "items": [_user_node(u, main_keys) for u in page["items"]]}

    async def _user(self, info: Any, email: str | None = None) -> dict[str, Any]:
        actor: Actor = info.context.actor
        found = (await self.users.get(actor, email or actor.email)).as_json()  # oneself, or admins and monitors
        return _user_node(found, await self._main_access_keys([found["uuid"]]))

    async def _main_access_keys(self, user_ids: list[str]) -> dict[str, str]:
        keys = await self.keypairs.main_access_keys([uuid.UUID(i) for i in user_ids])
        return {str(uid): ak for uid, ak in keys.items()}

    async def _keypair_list(self, info: Any, limit: int, offset: int, is_active: bool | None = None,
                            domain_name: str | None = None, email: str | None = None,
                            filter: str | None = None, order: str | None = None) -> dict[str, Any]:
        actor: Actor = info.context.actor
        _page(limit, offset)
        _no_filter(filter)
        ordering = _order(order, KEYPAIR_ORDER_KEYS)

        async def fetch(page_size: int, page_offset: int) -> dict[str, Any]:
            # secret keys only where access.may_see_secret_key allows (as GET /admin/keypairs)
            return _json_page(await self.keypairs.list(actor, is_active, email, None, page_size, page_offset))

        if ordering or domain_name:
            items = await _every(fetch)
            owners = await self._keypair_owners({i["user_id"] for i in items})
            if domain_name:
                items = [i for i in items if owners[i["user_id"]]["domain_name"] == domain_name]
            # Backend.AI's KeyPair.user_id is the owner's email
            items = [{**i, "user_id": i["user_email"], "owner_id": i["user_id"]} for i in items]
            page = _sorted_page(items, ordering, "access_key", limit, offset)
        else:
            page = await fetch(limit, offset)
            owners = await self._keypair_owners({i["user_id"] for i in page["items"]})
            page = {**page, "items": [{**i, "user_id": i["user_email"], "owner_id": i["user_id"]}
                                      for i in page["items"]]}
        running = await self._sessions_running([i["access_key"] for i in page["items"]])
        return {**page, "items": [{**i, "user_info": {"email": i["user_email"],
                                                      "full_name": owners[i["owner_id"]]["full_name"]},
                                   "projects": owners[i["owner_id"]]["projects"],
                                   "concurrency_used": running.get(i["access_key"], 0)}
                                  for i in page["items"]]}

    async def _keypair_owners(self, user_ids: set[str]) -> dict[str, dict[str, Any]]:
        """Full name, domain and project names of the keypairs' owners (the keypair service gives emails)."""
        found = await user_profiles(self.ctx, {uuid.UUID(i) for i in user_ids})
        return {str(uid): {"full_name": p.full_name, "domain_name": p.domain_name, "projects": p.projects}
                for uid, p in found.items()}

    async def _sessions_running(self, access_keys: list[str]) -> dict[str, int]:
        """Backend.AI's concurrency_used: the keypair's sessions that are not over yet."""
        return await live_sessions_by_access_key(self.ctx, access_keys)

    async def _groups(self, info: Any, domain_name: str | None = None,
                      is_active: bool | None = None) -> list[dict[str, Any]]:
        actor: Actor = info.context.actor
        # administrators and monitors; a domain's own for all but the superadmin (as GET /admin/projects)
        async def fetch(page_size: int, page_offset: int) -> dict[str, Any]:
            return _json_page(await self.projects.list(actor, domain_name, None, page_size, page_offset))

        items = await _every(fetch)
        if is_active is not None:
            items = [p for p in items if p["is_active"] is is_active]
        return [_group_node(p) for p in items]

    async def _group(self, info: Any, id: str) -> dict[str, Any]:
        return _group_node((await self.projects.get(info.context.actor, uuid.UUID(id))).as_json())

    async def _scaling_groups(self, info: Any, is_active: bool | None = None) -> list[dict[str, Any]]:
        found = await self.compute_admin.list_resource_groups(info.context.actor)  # administrators and monitors
        return [_scaling_group_node(rg.as_json()) for rg in found if is_active is None or rg.is_active is is_active]

    async def _scaling_group(self, info: Any, name: str | None = None) -> dict[str, Any]:
        if not name:
            raise GraphQLError("name is required.")
        return _scaling_group_node((await self.compute_admin.get_resource_group(info.context.actor, name)).as_json())

    async def _images(self, info: Any, is_operation: bool | None = None) -> list[dict[str, Any]]:
        found = await self.compute_admin.list_images(info.context.actor)  # every signed-in user (as GET /images)
        items = [i.as_json() for i in found]
        return [_image_node(i) for i in items if not is_operation or _is_operation_image(i)]
