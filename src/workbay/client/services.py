"""The model-service SDK (docs/serving.md, ``/services``): find a service by name or id, build the
create/update body from plain values, tokens, autoscaling rules, errors, logs and the validate dry
run's event stream.  No click, no rich: ``cli_service`` prints; these functions return data or raise
(:class:`~workbay.client.sdk.APIError`, ``LookupError`` for a name that matches nothing)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from .sdk import APIError, Client
from .sessions import parse_sse

VALIDATE_TIMEOUT = httpx.Timeout(30.0, read=None)  # the dry run talks when its replica does
COMPARATORS = {"<": "lt", "<=": "le", "≤": "le", ">": "gt", ">=": "ge", "≥": "ge",
               "lt": "lt", "le": "le", "gt": "gt", "ge": "ge"}


# -- finding a service -----------------------------------------------------------------------------
def _items(answer: Any, *keys: str) -> list[dict[str, Any]]:
    """A list answer: Backend.AI's bare list, or Workbay's ``{"items": […]}`` (or another key)."""
    if isinstance(answer, list):
        return answer
    if isinstance(answer, dict):
        for key in ("items", *keys):
            if isinstance(answer.get(key), list):
                return list(answer[key])
    return []


def service_id(service: Mapping[str, Any]) -> str:
    """A service's id: list items say ``id``, the detail says ``endpoint_id``."""
    return str(service.get("id") or service.get("endpoint_id") or "")


async def list_services(client: Client, *, name: str | None = None, status: str | None = None,
                        project: str | None = None, all_owners: bool = False) -> list[dict[str, Any]]:
    params = {"name": name, "status": status, "project": project, "all": "true" if all_owners else None}
    return _items(await client.get("/services", params=params))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def resolve(client: Client, ref: str) -> str:
    """The id of the service named ``ref`` (or with that id).  An admin's own services come first;
    a name only another owner uses is found with ``all``."""
    if _is_uuid(ref):
        return ref
    for all_owners in (False, True):
        try:
            found = [s for s in await list_services(client, name=ref, all_owners=all_owners)
                     if s.get("name") == ref]
        except APIError as e:
            if all_owners and e.status in (400, 403):
                break  # not an admin: `all` is not for them
            raise
        if len(found) == 1:
            return service_id(found[0])
        if len(found) > 1:
            raise LookupError(f"{len(found)} services are named {ref!r}: use the id "
                              f"({', '.join(service_id(s)[:8] for s in found)}…).")
    raise LookupError(f"No model service named {ref!r}.")


async def get_service(client: Client, ref: str) -> dict[str, Any]:
    return dict(await client.get(f"/services/{await resolve(client, ref)}"))


# -- create / update -------------------------------------------------------------------------------
@dataclass
class ServiceFields:
    """What a service is created (or changed) with; None = not given (the server's default when
    creating, unchanged when updating)."""

    name: str | None = None
    model_folder: str | None = None
    runtime_variant: str | None = None
    mount_destination: str | None = None
    definition_path: str | None = None
    extra_mounts: dict[str, str] = field(default_factory=dict)
    replicas: int | None = None
    image: str | None = None
    resource_group: str | None = None
    resources: dict[str, str] = field(default_factory=dict)
    shmem: str | None = None
    environ: dict[str, str] = field(default_factory=dict)
    public: bool | None = None
    project: str | None = None
    owner_access_key: str | None = None
    startup_command: str | None = None
    architecture: str | None = None


def service_body(fields: ServiceFields) -> dict[str, Any]:
    """The ``POST /services`` body (Backend.AI's wire names plus Workbay's extras), only the given
    fields: the same body serves ``PATCH /services/{id}`` and ``POST /services/_/validate``."""
    config: dict[str, Any] = {}
    top: dict[str, Any] = {}

    def put(target: dict[str, Any], key: str, value: Any) -> None:
        if value is not None and value != {}:
            target[key] = value

    put(top, "name", fields.name)
    put(top, "desired_session_count", fields.replicas)
    put(top, "image", fields.image)
    put(top, "architecture", fields.architecture)
    put(top, "group", fields.project)
    put(top, "owner_access_key", fields.owner_access_key)
    put(top, "open_to_public", fields.public)
    put(top, "runtime_variant", fields.runtime_variant)
    put(top, "startup_command", fields.startup_command)
    put(config, "model", fields.model_folder)
    put(config, "model_mount_destination", fields.mount_destination)
    put(config, "model_definition_path", fields.definition_path)
    put(config, "extra_mounts", dict(fields.extra_mounts))
    put(config, "environ", dict(fields.environ))
    put(config, "scaling_group", fields.resource_group)
    put(config, "resources", dict(fields.resources))
    if fields.shmem:
        config["resource_opts"] = {"shmem": fields.shmem}
    if config:
        top["config"] = config
    return top


async def create_service(client: Client, fields: ServiceFields) -> str:
    """Create the service; its id."""
    created = await client.post("/services", json=service_body(fields))
    return str(created.get("endpoint_id") or created.get("id"))


async def update_service(client: Client, ref: str, fields: ServiceFields) -> dict[str, Any]:
    sid = await resolve(client, ref)
    return dict(await client.patch(f"/services/{sid}", json=service_body(fields)) or {})


async def delete_service(client: Client, ref: str) -> None:
    await client.delete(f"/services/{await resolve(client, ref)}")


async def scale(client: Client, ref: str, to: int) -> dict[str, Any]:
    return dict(await client.post(f"/services/{await resolve(client, ref)}/scale", json={"to": to}))


# -- tokens ----------------------------------------------------------------------------------------
def token_body(duration: str | None = None, valid_until: datetime | None = None) -> dict[str, Any]:
    """``{"duration": "1h"}`` or ``{"valid_until": unix}``; empty for the server's default (24 h)."""
    if valid_until is not None:
        return {"valid_until": int(valid_until.timestamp())}
    return {"duration": duration} if duration else {}


async def issue_token(client: Client, ref: str, duration: str | None = None,
                      valid_until: datetime | None = None) -> dict[str, Any]:
    """``{"token", "token_id"?, "expires_at"?}``."""
    sid = await resolve(client, ref)
    return dict(await client.post(f"/services/{sid}/token", json=token_body(duration, valid_until)))


async def list_tokens(client: Client, ref: str) -> list[dict[str, Any]]:
    return _items(await client.get(f"/services/{await resolve(client, ref)}/tokens"), "tokens")


async def revoke_token(client: Client, ref: str, token_id: str) -> None:
    await client.delete(f"/services/{await resolve(client, ref)}/tokens/{token_id}")


# -- errors, logs ----------------------------------------------------------------------------------
async def errors(client: Client, ref: str) -> dict[str, Any]:
    """``{"errors": [{session_id, error, route_id, log_tail, created_at}], "retries"}``."""
    return dict(await client.get(f"/services/{await resolve(client, ref)}/errors"))


async def clear_errors(client: Client, ref: str) -> None:
    await client.post(f"/services/{await resolve(client, ref)}/errors/clear")


async def logs(client: Client, ref: str, route: str | None = None) -> str:
    answer = await client.get(f"/services/{await resolve(client, ref)}/logs", params={"route": route})
    return str(answer.get("logs") or "") if isinstance(answer, dict) else str(answer)


# -- autoscaling rules -----------------------------------------------------------------------------
@dataclass
class RuleFields:
    metric_source: str
    metric_name: str
    comparator: str
    threshold: str
    step_size: int
    cooldown_seconds: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None


def rule_body(rule: RuleFields) -> dict[str, Any]:
    """The rule as the API takes it; comparators may be written ``<``, ``>=``, ``le``, …"""
    comparator = COMPARATORS.get(rule.comparator.strip())
    if comparator is None:
        raise ValueError(f"comparator {rule.comparator!r}: use one of <, <=, >, >= (or lt, le, gt, ge)")
    body: dict[str, Any] = {"metric_source": rule.metric_source, "metric_name": rule.metric_name,
                            "comparator": comparator, "threshold": rule.threshold, "step_size": rule.step_size}
    for key in ("cooldown_seconds", "min_replicas", "max_replicas"):
        if getattr(rule, key) is not None:
            body[key] = getattr(rule, key)
    return body


async def list_rules(client: Client, ref: str) -> list[dict[str, Any]]:
    return _items(await client.get(f"/services/{await resolve(client, ref)}/auto-scaling-rules"), "rules")


async def add_rule(client: Client, ref: str, rule: RuleFields) -> dict[str, Any]:
    sid = await resolve(client, ref)
    return dict(await client.post(f"/services/{sid}/auto-scaling-rules", json=rule_body(rule)) or {})


async def remove_rule(client: Client, ref: str, rule_id: str) -> None:
    await client.delete(f"/services/{await resolve(client, ref)}/auto-scaling-rules/{rule_id}")


# -- validate (the dry run) ------------------------------------------------------------------------
async def validate(client: Client, fields: ServiceFields) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(event, data)`` of the dry run, as they come: ``log`` ``{"line"}``, ``step``
    ``{"step","status"}``, and last ``verdict`` ``{"ok","step"?,"message"}``."""
    async with client.stream("/services/_/validate", method="POST", json=service_body(fields),
                             headers={"Accept": "text/event-stream"}, timeout=VALIDATE_TIMEOUT) as resp:
        async for event, data in sse_lines(resp.aiter_lines()):
            yield event, data


async def sse_lines(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Server-sent events as ``(event, JSON data)`` (a data that is not a JSON object is
    ``{"line": text}``); ends after a ``verdict``."""
    async for name, text, _ in parse_sse(lines):
        try:
            parsed = json.loads(text) if text else {}
        except ValueError:
            parsed = {"line": text}
        yield name, parsed if isinstance(parsed, dict) else {"line": text}
        if name == "verdict":
            return
