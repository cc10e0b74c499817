"""`workbay admin …`: users, keypairs, domains, projects, resource policies, settings."""

from __future__ import annotations

import json
from typing import Any

import click

from workbay.common.domain import UserStatus

from .commands import call, json_option, run_async
from .output import console, emit

USER_COLUMNS = ("email", "username", "full_name", "role", "status", "domain_name", "resource_policy")
KEYPAIR_COLUMNS = ("access_key", "user_email", "is_active", "is_admin", "resource_policy", "rate_limit",
                   "num_queries", "created_at")
PROJECT_COLUMNS = ("id", "name", "domain_name", "type", "is_active", "member_count", "resource_policy")
DOMAIN_COLUMNS = ("name", "description", "is_active", "created_at")
POLICY_COLUMNS = {
    "keypair": ("name", "total_resource_slots", "max_concurrent_sessions", "max_containers_per_session",
                "max_session_lifetime", "idle_timeout", "allowed_folder_hosts"),
    "user": ("name", "max_folder_count", "max_quota_scope_size", "max_session_count_per_model_session",
             "max_customized_image_count"),
    "project": ("name", "max_folder_count", "max_quota_scope_size", "max_network_count"),
}

def parse_assignments(pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs; VALUE is JSON when it parses (numbers, booleans, objects), else a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@click.group()
def admin() -> None:
    """Administration (admins and superadmins)."""


# -- users -------------------------------------------------------------------------------------
@admin.group()
def user() -> None:
    """Users."""


@user.command("list")
@click.option("--status", type=click.Choice([s.value for s in UserStatus]))
@click.option("-q", "--query", help="Filter by e-mail, name or access key.")
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0)
@json_option
@run_async
async def user_list(status, query, limit, offset, as_json):
    data = await call("GET", "/admin/users", params={"status": status, "q": query, "limit": limit,
                                                     "offset": offset})
    emit(data, as_json, USER_COLUMNS, "Users")


@user.command("info")
@click.argument("email")
@json_option
@run_async
async def user_info(email, as_json):
    emit(await call("GET", f"/admin/users/{email}"), as_json)


@user.command("create")
@click.argument("email")
@click.option("--username", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--full-name", default="")
@click.option("--description", default="")
@click.option("--role", type=click.Choice(["user", "admin", "monitor", "superadmin"]), default="user")
@click.option("--domain", "domain_name", default="default")
@click.option("--status", type=click.Choice([s.value for s in UserStatus if s != UserStatus.DELETED]),
              default=UserStatus.ACTIVE.value)
@click.option("--need-password-change", is_flag=True)
@click.option("--sudo", "sudo_session_enabled", is_flag=True, help="Allow sudo in sessions.")
@click.option("--resource-policy", default="default")
@click.option("--project", "project_ids", multiple=True, help="Project id (repeatable).")
@json_option
@run_async
async def user_create(email, username, password, full_name, description, role, domain_name, status,
                      need_password_change, sudo_session_enabled, resource_policy, project_ids, as_json):
    body = dict(email=email, username=username, password=password, full_name=full_name,
                description=description, role=role, domain_name=domain_name, status=status,
                need_password_change=need_password_change, sudo_session_enabled=sudo_session_enabled,
                resource_policy=resource_policy, project_ids=list(project_ids))
    emit(await call("POST", "/admin/users", json=body), as_json)


@user.command("update")
@click.argument("email")
@click.option("--username")
@click.option("--full-name")
@click.option("--description")
@click.option("--role", type=click.Choice(["user", "admin", "monitor", "superadmin"]))
@click.option("--status", type=click.Choice([s.value for s in UserStatus]))
@click.option("--need-password-change/--no-need-password-change", default=None)
@click.option("--sudo/--no-sudo", "sudo_session_enabled", default=None)
@click.option("--resource-policy")
@click.option("--password", help="Set a new password.")
@json_option
@run_async
async def user_update(email, as_json, **fields):
    emit(await call("PATCH", f"/admin/users/{email}", json=_drop_none(fields)), as_json)


@user.command("deactivate")
@click.argument("email")
@run_async
async def user_deactivate(email):
    await call("PATCH", f"/admin/users/{email}", json={"status": UserStatus.INACTIVE.value})
    console.print(f"{email} is deactivated (and so are their keypairs).")


@user.command("activate")
@click.argument("email")
@run_async
async def user_activate(email):
    await call("PATCH", f"/admin/users/{email}", json={"status": UserStatus.ACTIVE.value})
    console.print(f"{email} is active again (reactivate keypairs separately).")


@user.command("disable-2fa")
@click.argument("email")
@run_async
async def user_disable_2fa(email):
    await call("DELETE", f"/admin/users/{email}/totp")
    console.print(f"Two-factor authentication is off for {email}.")


# -- keypairs ----------------------------------------------------------------------------------
@admin.group()
def keypair() -> None:
    """Keypairs (API credentials)."""


@keypair.command("list")
@click.option("--inactive", is_flag=True, help="List inactive keypairs.")
@click.option("--all", "show_all", is_flag=True, help="Active and inactive.")
@click.option("--user", "user_email")
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0)
@json_option
@run_async
async def keypair_list(inactive, show_all, user_email, limit, offset, as_json):
    is_active = None if show_all else ("false" if inactive else "true")
    data = await call("GET", "/admin/keypairs", params={"is_active": is_active, "user_email": user_email,
                                                        "limit": limit, "offset": offset})
    emit(data, as_json, KEYPAIR_COLUMNS, "Keypairs")


@keypair.command("info")
@click.argument("access_key")
@json_option
@run_async
async def keypair_info(access_key, as_json):
    emit(await call("GET", f"/admin/keypairs/{access_key}"), as_json)


@keypair.command("create")
@click.argument("user_email")
@click.option("--resource-policy", default="default")
@click.option("--rate-limit", type=int, default=10000)
@click.option("--access-key", help="Explicit access key (20 letters/digits).")
@click.option("--secret-key", help="Explicit secret key (40 characters).")
@click.option("--inactive", is_flag=True)
@json_option
@run_async
async def keypair_create(user_email, resource_policy, rate_limit, access_key, secret_key, inactive, as_json):
    body = _drop_none(dict(user_email=user_email, resource_policy=resource_policy, rate_limit=rate_limit,
                           access_key=access_key, secret_key=secret_key, is_active=not inactive))
    emit(await call("POST", "/admin/keypairs", json=body), as_json)


@keypair.command("update")
@click.argument("access_key")
@click.option("--resource-policy")
@click.option("--rate-limit", type=int)
@json_option
@run_async
async def keypair_update(access_key, resource_policy, rate_limit, as_json):
    body = _drop_none(dict(resource_policy=resource_policy, rate_limit=rate_limit))
    emit(await call("PATCH", f"/admin/keypairs/{access_key}", json=body), as_json)


@keypair.command("activate")
@click.argument("access_key")
@run_async
async def keypair_activate(access_key):
    await call("PATCH", f"/admin/keypairs/{access_key}", json={"is_active": True})
    console.print(f"{access_key} is active.")


@keypair.command("deactivate")
@click.argument("access_key")
@run_async
async def keypair_deactivate(access_key):
    await call("PATCH", f"/admin/keypairs/{access_key}", json={"is_active": False})
    console.print(f"{access_key} is inactive.")


@keypair.command("delete")
@click.argument("access_key")
@click.confirmation_option(prompt="Delete this keypair for good?")
@run_async
async def keypair_delete(access_key):
    await call("DELETE", f"/admin/keypairs/{access_key}")
    console.print(f"{access_key} is deleted.")


# -- domains -----------------------------------------------------------------------------------
@admin.group()
def domain() -> None:
    """Domains (superadmin)."""


@domain.command("list")
@json_option
@run_async
async def domain_list(as_json):
    emit(await call("GET", "/admin/domains"), as_json, DOMAIN_COLUMNS, "Domains")


@domain.command("info")
@click.argument("name")
@json_option
@run_async
async def domain_info(name, as_json):
    emit(await call("GET", f"/admin/domains/{name}"), as_json)


@domain.command("create")
@click.argument("name")
@click.option("--description", default="")
@json_option
@run_async
async def domain_create(name, description, as_json):
    emit(await call("POST", "/admin/domains", json={"name": name, "description": description}), as_json)


@domain.command("update")
@click.argument("name")
@click.option("--set", "assignments", multiple=True, help="KEY=VALUE (repeatable).")
@json_option
@run_async
async def domain_update(name, assignments, as_json):
    emit(await call("PATCH", f"/admin/domains/{name}", json=parse_assignments(assignments)), as_json)


@domain.command("delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete this domain?")
@run_async
async def domain_delete(name):
    await call("DELETE", f"/admin/domains/{name}")
    console.print(f"Domain {name} is deleted.")


# -- projects ----------------------------------------------------------------------------------
@admin.group()
def project() -> None:
    """Projects and their members."""


@project.command("list")
@click.option("--domain")
@click.option("-q", "--query")
@json_option
@run_async
async def project_list(domain, query, as_json):
    emit(await call("GET", "/admin/projects", params={"domain": domain, "q": query}), as_json,
         PROJECT_COLUMNS, "Projects")


@project.command("info")
@click.argument("project_id")
@json_option
@run_async
async def project_info(project_id, as_json):
    emit(await call("GET", f"/admin/projects/{project_id}"), as_json)


@project.command("create")
@click.argument("name")
@click.option("--domain", "domain_name", default="default")
@click.option("--description", default="")
@click.option("--resource-policy", default="default")
@json_option
@run_async
async def project_create(name, domain_name, description, resource_policy, as_json):
    body = dict(name=name, domain_name=domain_name, description=description, resource_policy=resource_policy)
    emit(await call("POST", "/admin/projects", json=body), as_json)


@project.command("update")
@click.argument("project_id")
@click.option("--set", "assignments", multiple=True, help="KEY=VALUE (repeatable).")
@json_option
@run_async
async def project_update(project_id, assignments, as_json):
    emit(await call("PATCH", f"/admin/projects/{project_id}", json=parse_assignments(assignments)), as_json)


@project.command("delete")
@click.argument("project_id")
@click.confirmation_option(prompt="Delete this project?")
@run_async
async def project_delete(project_id):
    await call("DELETE", f"/admin/projects/{project_id}")
    console.print(f"Project {project_id} is deleted.")


@project.command("members")
@click.argument("project_id")
@json_option
@run_async
async def project_members(project_id, as_json):
    emit(await call("GET", f"/admin/projects/{project_id}/members"), as_json, USER_COLUMNS, "Members")


@project.command("add-member")
@click.argument("project_id")
@click.argument("emails", nargs=-1, required=True)
@run_async
async def project_add_member(project_id, emails):
    data = await call("POST", f"/admin/projects/{project_id}/members", json={"emails": list(emails)})
    console.print(f"Added: {', '.join(data['added']) or 'nobody new'}")


@project.command("remove-member")
@click.argument("project_id")
@click.argument("emails", nargs=-1, required=True)
@run_async
async def project_remove_member(project_id, emails):
    data = await call("DELETE", f"/admin/projects/{project_id}/members", json={"emails": list(emails)})
    console.print(f"Removed: {', '.join(data['removed']) or 'nobody'}")


# -- resource policies -------------------------------------------------------------------------
KIND = click.argument("kind", type=click.Choice(["keypair", "user", "project"]))


@admin.group()
def policy() -> None:
    """Resource policies (keypair, user, project)."""


@policy.command("list")
@KIND
@json_option
@run_async
async def policy_list(kind, as_json):
    emit(await call("GET", f"/admin/resource-policies/{kind}"), as_json, POLICY_COLUMNS[kind],
         f"{kind.capitalize()} resource policies")


@policy.command("info")
@KIND
@click.argument("name")
@json_option
@run_async
async def policy_info(kind, name, as_json):
    emit(await call("GET", f"/admin/resource-policies/{kind}/{name}"), as_json)


@policy.command("create")
@KIND
@click.argument("name")
@click.option("--set", "assignments", multiple=True,
              help='KEY=VALUE, e.g. max_concurrent_sessions=3 or total_resource_slots=\'{"cpu":"4"}\'.')
@json_option
@run_async
async def policy_create(kind, name, assignments, as_json):
    body = {"name": name, **parse_assignments(assignments)}
    emit(await call("POST", f"/admin/resource-policies/{kind}", json=body), as_json)


@policy.command("update")
@KIND
@click.argument("name")
@click.option("--set", "assignments", multiple=True, help="KEY=VALUE (repeatable).")
@json_option
@run_async
async def policy_update(kind, name, assignments, as_json):
    emit(await call("PATCH", f"/admin/resource-policies/{kind}/{name}", json=parse_assignments(assignments)),
         as_json)


@policy.command("delete")
@KIND
@click.argument("name")
@run_async
async def policy_delete(kind, name):
    await call("DELETE", f"/admin/resource-policies/{kind}/{name}")
    console.print(f"{kind} policy {name} is deleted.")


# -- settings ----------------------------------------------------------------------------------
@admin.command("settings")
@click.option("--set", "assignments", multiple=True, help="KEY=VALUE, e.g. signup_enabled=true.")
@json_option
@run_async
async def settings(assignments, as_json):
    """Show, or change with --set, the system settings (superadmin)."""
    if assignments:
        data = await call("PATCH", "/admin/settings", json=parse_assignments(assignments))
    else:
        data = await call("GET", "/admin/settings")
    emit(data, as_json)
