"""Reading the model-service form (MS-2) and the serving dialogs into the manager's request bodies.

Form parsing only: every rule about the values (names, folders, limits, images) is the manager's,
which answers ``field_errors`` keyed by request path; ``field_of`` says which form field shows
each.  The service form shares its field names with the session launcher (``LaunchForm``:
``version``/``image_manual``, ``rg``, ``preset``/``cpu``/``mem``/``shmem``/``acc``,
``cluster_mode``/``cluster_size``, ``ev_k``/``ev_v``, ``mount`` with ``alias:<folder>``), so the
launcher's resource reading is reused as it is."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from workbay.common.domain import RuntimeVariant

Translate = Callable[..., str]

DEFAULT_MOUNT = "/models"
MAX_REPLICAS_SHOWN = 100  # the field's max; the manager holds the real limit
# Token lifetimes offered (MS-6): the default first.
TOKEN_DURATIONS = (("24h", timedelta(hours=24)), ("1h", timedelta(hours=1)), ("7d", timedelta(days=7)))
METRIC_SOURCES = ("kernel", "inference-framework", "endpoint")
COMPARATORS = (("lt", "<"), ("le", "≤"), ("gt", ">"), ("ge", "≥"))
RUNTIME_VARIANTS = tuple(v.value for v in RuntimeVariant)

# The manager's request paths → the form field that shows their message.
FIELD_OF: dict[str, str] = {
    "name": "name", "service_name": "name", "clientSessionToken": "name",
    "open_to_public": "open_to_public", "runtime_variant": "runtime_variant",
    "desired_session_count": "replicas", "replicas": "replicas",
    "image": "image", "arch": "image", "architecture": "image", "group": "rg",
    "cluster_mode": "cluster_mode", "cluster_size": "cluster_size",
    "startup_command": "startup_command", "owner_access_key": "name",
    "config.model": "model_folder", "config.model_version": "model_folder",
    "config.model_mount_destination": "model_mount_destination",
    "config.model_definition_path": "model_definition_path",
    "config.extra_mounts": "mounts", "config.environ": "environ",
    "config.scaling_group": "rg", "config.resource_group": "rg",
    "config.resources": "resources", "config.resources.cpu": "cpu", "config.resources.mem": "mem",
    "config.resource_opts": "shmem",
}
RULE_FIELD_OF = {"metric_source": "metric_source", "metric_name": "metric_name", "comparator": "comparator",
                 "threshold": "threshold", "step_size": "step_size", "cooldown_seconds": "cooldown_seconds",
                 "min_replicas": "min_replicas", "max_replicas": "max_replicas"}


def field_of(path: str, places: dict[str, str] = FIELD_OF) -> str | None:
    """The form field that shows the manager's message for a request path (or its parent's)."""
    if path in places:
        return places[path]
    if path.startswith("config.resources."):
        return "acc"
    head = path
    while "." in head:
        head = head.rsplit(".", 1)[0]
        if head in places:
            return places[head]
    return None


def split_field_errors(body: Any, places: dict[str, str] = FIELD_OF) -> tuple[dict[str, str], list[str]]:
    """The manager's ``field_errors`` as {form field: message} and the messages no field shows."""
    fields = body.get("field_errors") if isinstance(body, dict) else None
    placed: dict[str, str] = {}
    unplaced: list[str] = []
    for path, message in (fields.items() if isinstance(fields, dict) else ()):
        name = field_of(str(path), places)
        if name is None:
            unplaced.append(f"{path}: {message}")
        else:
            placed.setdefault(name, str(message))
    return placed, unplaced


def _whole(text: str) -> int | None:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or value != value.to_integral_value():
        return None
    return int(value)


def service_body(get: Callable[[str], str], env_vars: list[tuple[str, str]], mounts: list[str],
                 aliases: dict[str, str], image: str, resources: dict[str, Any], shmem: str | None,
                 project_id: str | None, _: Translate) -> tuple[dict[str, str], dict[str, Any]]:
    """The ``POST /services`` body (docs/serving.md) read from the form, and what could not be read
    ({field: message}).  ``get`` reads one form value; the resources come from the launcher's reader."""
    problems: dict[str, str] = {}
    config: dict[str, Any] = {}
    body: dict[str, Any] = {"name": get("name"), "open_to_public": get("open_to_public") == "on"}
    variant = get("runtime_variant") or RuntimeVariant.CUSTOM.value
    if variant not in RUNTIME_VARIANTS:
        problems["runtime_variant"] = _("Choose a runtime variant.")
    body["runtime_variant"] = variant
    replicas = _whole(get("replicas") or "1")
    if replicas is None or replicas < 0:
        problems["replicas"] = _("Enter a whole number of replicas, 0 or more.")
    else:
        body["desired_session_count"] = replicas
    if image:
        body["image"] = image
    if project_id:
        body["group"] = project_id
    body["cluster_mode"] = get("cluster_mode") or "single-node"
    size = _whole(get("cluster_size") or "1")
    if size is None or size < 1:
        problems["cluster_size"] = _("Enter a whole number.")
    else:
        body["cluster_size"] = size
    if variant == RuntimeVariant.COMMAND.value and get("startup_command"):
        body["startup_command"] = get("startup_command")
    if not get("model_folder"):
        problems["model_folder"] = _("Choose the model folder to serve.")
    else:
        config["model"] = get("model_folder")
    config["model_mount_destination"] = get("model_mount_destination") or DEFAULT_MOUNT
    if get("model_definition_path"):
        config["model_definition_path"] = get("model_definition_path")
    extra = [m for m in mounts if m != get("model_folder")]
    if extra:
        config["extra_mounts"] = {m: aliases.get(m) or f"/home/work/{m}" for m in extra}
    environ: dict[str, str] = {}
    for key, value in env_vars:
        if key in environ:
            problems["environ"] = _("The variable %(name)s is set twice.", name=key)
        environ[key] = value
    config["environ"] = environ
    if get("rg"):
        config["scaling_group"] = get("rg")
    config["resources"] = resources
    if shmem:
        config["resource_opts"] = {"shmem": shmem}
    body["config"] = config
    return problems, body


def folder_key(value: Any) -> str:
    """A folder id as one spelling (the manager writes UUIDs with dashes in some answers, without in others)."""
    try:
        return UUID(str(value)).hex
    except ValueError:
        return str(value)


def form_values(service: dict[str, Any]) -> tuple[dict[str, str], list[tuple[str, str]], list[str], dict[str, str]]:
    """An existing service as the form's values (Edit, MS-8): (values, env vars, mounts, aliases)."""
    config = service.get("config") or {}
    folder = service.get("model_folder") or {}
    resources = config.get("resources") or service.get("resource_slots") or {}
    values = {
        "name": str(service.get("name") or ""),
        "open_to_public": "on" if service.get("open_to_public", service.get("is_public")) else "off",
        "model_folder": folder_key(folder.get("id") or config.get("model")) if (folder.get("id") or config.get("model"))
        else "",
        "runtime_variant": str(service.get("runtime_variant") or "custom"),
        "model_mount_destination": str(config.get("model_mount_destination") or DEFAULT_MOUNT),
        "model_definition_path": str(config.get("model_definition_path") or ""),
        "replicas": str(service.get("desired_session_count", service.get("replicas", 1))),
        "image_manual": str(service.get("image") or ""),
        "rg": str(config.get("scaling_group") or config.get("resource_group") or service.get("resource_group") or ""),
        "cluster_mode": str(service.get("cluster_mode") or config.get("cluster_mode") or "single-node"),
        "cluster_size": str(service.get("cluster_size") or config.get("cluster_size") or 1),
        "startup_command": str(service.get("startup_command") or config.get("startup_command") or ""),
        "preset": "custom",
    }
    if "cpu" in resources:
        values["cpu"] = str(resources["cpu"])
    if "mem" in resources:
        values["mem"] = _gib(str(resources["mem"]))
    shm = (config.get("resource_opts") or {}).get("shmem")
    if shm:
        values["shmem"] = _gib(str(shm))
    for key, amount in resources.items():
        if key not in ("cpu", "mem"):
            values["acc_slot"], values["acc"] = str(key), str(amount)
    env = [(str(k), str(v)) for k, v in (config.get("environ") or {}).items()]
    extra = config.get("extra_mounts") or {}
    if isinstance(extra, list):  # [{folder_id, mount_destination}]
        extra = {str(m.get("folder_id")): str(m.get("mount_destination") or "") for m in extra if isinstance(m, dict)}
    mounts = [folder_key(k) for k in extra]
    aliases = {folder_key(k): str(v) for k, v in extra.items() if v}
    return values, env, mounts, aliases


def _gib(size: str) -> str:
    """A size the manager wrote (bytes, ``512m``, ``2g``) as the form's GiB."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = size.strip().lower()
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        amount = Decimal(number) * factor / (1 << 30)
    except (InvalidOperation, ValueError):
        return size
    return f"{amount.quantize(Decimal('0.0001')).normalize():f}"


def token_request(choice: str, custom: str, now: datetime, _: Translate) -> tuple[dict[str, Any] | None, str | None]:
    """The ``POST /services/{id}/token`` body for the chosen lifetime (1 h / 24 h / 7 d, or a custom
    ISO date-time in UTC), or the message saying why not."""
    for key, _delta in TOKEN_DURATIONS:
        if choice == key:
            return {"duration": key}, None
    if choice != "custom":
        return None, _("Choose when the token expires.")
    try:
        when = datetime.fromisoformat(custom)
    except ValueError:
        return None, _("Choose a date and time.")
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= now:
        return None, _("The expiry must be in the future.")
    return {"valid_until": int(when.timestamp())}, None


def rule_body(get: Callable[[str], str], _: Translate) -> tuple[dict[str, str], dict[str, Any]]:
    """An autoscaling rule (MS-4) read from its dialog: (problems, body)."""
    problems: dict[str, str] = {}
    body: dict[str, Any] = {}
    source = get("metric_source")
    if source not in METRIC_SOURCES:
        problems["metric_source"] = _("Choose where the metric comes from.")
    body["metric_source"] = source
    if not get("metric_name"):
        problems["metric_name"] = _("Enter the metric's name.")
    body["metric_name"] = get("metric_name")
    if get("comparator") not in dict(COMPARATORS):
        problems["comparator"] = _("Choose a comparison.")
    body["comparator"] = get("comparator")
    try:
        threshold = Decimal(get("threshold"))
        if not threshold.is_finite():
            raise InvalidOperation
        body["threshold"] = f"{threshold.normalize():f}"
    except (InvalidOperation, ValueError):
        problems["threshold"] = _("Enter a number.")
    for name in ("step_size", "cooldown_seconds"):
        value = _whole(get(name))
        if value is None:
            problems[name] = _("Enter a whole number.")
        else:
            body[name] = value
    for name in ("min_replicas", "max_replicas"):
        if get(name) == "":
            body[name] = None
            continue
        value = _whole(get(name))
        if value is None:
            problems[name] = _("Enter a whole number.")
        else:
            body[name] = value
    return problems, body


def rule_values(rule: dict[str, Any]) -> dict[str, str]:
    return {k: "" if rule.get(k) is None else str(rule.get(k)) for k in RULE_FIELD_OF}


def curl_example(url: str, token: str | None, public: bool) -> str:
    """The example call (MS-6) as the guide shows it: works as printed once the token is set."""
    lines = []
    if not public:
        lines.append(f"export API_TOKEN={token or '<token>'}")
    call = 'curl -H "Content-Type: application/json"'
    if not public:
        call += ' \\\n  -H "Authorization: BackendAI $API_TOKEN"'
    call += f" \\\n  {url or '<model-service-endpoint>'}"
    lines.append(call)
    return "\n".join(lines)
