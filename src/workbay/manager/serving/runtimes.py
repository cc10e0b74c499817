"""Runtime variants (docs/serving.md "Runtime variants"): what a replica runs, for each variant (pure).

``replica_spec`` turns a service's variant, its model folder's definition (``custom``), the image's
labels (``command``) and the service's ``startup_command`` into a ``ReplicaSpec``: the launch spec
stored in ``sessions.model_service`` and run by the runner inside the replica's container."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from workbay.common.domain import RuntimeVariant

from .definition import SHELL, HealthCheck, ModelDefinition, PreStartAction

# What an image declares for the ``command`` variant (Workbay's labels; docs/serving.md).
LABEL_START_COMMAND = "workbay.model.start-command"   # a JSON list of strings, or a shell command line
LABEL_PORT = "workbay.model.port"                     # default 8000
LABEL_HEALTH_PATH = "workbay.model.health-path"       # none: healthy once the port accepts connections
DEFAULT_PORT = 8000
MAX_STARTUP_COMMAND = 4096  # one argument of the agent's command (agent/models.py)
MAX_ARGS = 64
# NVIDIA NIM images' own ENTRYPOINT + CMD (the runner is the container's entrypoint, so the image's
# are not run by themselves); an image that starts otherwise needs startup_command.
NIM_COMMAND = ["/opt/nvidia/nvidia_entrypoint.sh", "/opt/nim/start_server.sh"]

# Fields that a problem names (the create request's, docs/serving.md "API").
FIELD_DEFINITION = "config.model_definition_path"
FIELD_MODEL = "config.model"
FIELD_STARTUP_COMMAND = "startup_command"
FIELD_VARIANT = "runtime_variant"


class ReplicaSpecError(ValueError):
    """A variant that cannot be satisfied; ``field`` is the request field to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class VariantDefaults:
    name: str
    label: str
    port: int | None
    health_path: str | None
    start_command: list[str]          # with <mount> / <model-file> placeholders for the form
    needs_definition: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "port": self.port, "health_path": self.health_path,
                "start_command": list(self.start_command), "needs_definition": self.needs_definition}


_DEFAULTS: dict[RuntimeVariant, VariantDefaults] = {
    RuntimeVariant.CUSTOM: VariantDefaults(
        "custom", "Custom (model-definition.yaml)", None, None, [], True),
    RuntimeVariant.COMMAND: VariantDefaults(
        "command", "Predefined image command", DEFAULT_PORT, None, [], False),
    RuntimeVariant.VLLM: VariantDefaults(
        "vllm", "vLLM", 8000, "/health",
        ["vllm", "serve", "<mount>", "--host", "0.0.0.0", "--port", "8000"], False),
    RuntimeVariant.NIM: VariantDefaults(
        "nim", "NVIDIA NIM", 8000, "/v1/health/ready", NIM_COMMAND, False),
    RuntimeVariant.LLAMA_CPP: VariantDefaults(
        "llama-cpp", "llama.cpp (CPU)", 8000, "/v1/models",
        ["python3", "-m", "llama_cpp.server", "--model", "<model-file>", "--host", "0.0.0.0", "--port", "8000"],
        False),
}


def variant_defaults() -> list[dict[str, Any]]:
    """Every variant and its defaults, for the Start service form and ``GET /services/_/runtimes``."""
    return [_DEFAULTS[v].as_dict() for v in RuntimeVariant]


@dataclass(frozen=True)
class ReplicaSpec:
    """What a replica runs (``launch()``: what ``sessions.model_service`` stores)."""

    start_command: list[str]
    port: int
    health_check: HealthCheck | None
    pre_start_actions: list[dict[str, Any]] = field(default_factory=list)
    model_path: str = "/models"
    definition_name: str | None = None
    runtime_variant: str = RuntimeVariant.CUSTOM.value

    def launch(self) -> dict[str, Any]:
        """The JSON stored in ``sessions.model_service`` (docs/serving.md "The replica")."""
        return {"start_command": list(self.start_command), "port": self.port,
                "pre_start_actions": [dict(a) for a in self.pre_start_actions],
                "model_path": self.model_path, "definition_name": self.definition_name,
                "health_check": self.health_check.as_dict() if self.health_check else None,
                "runtime_variant": self.runtime_variant}


def _variant(value: RuntimeVariant | str) -> RuntimeVariant:
    try:
        return RuntimeVariant(value)
    except ValueError:
        raise ReplicaSpecError(FIELD_VARIANT, f"runtime_variant must be one of "
                                              f"{', '.join(v.value for v in RuntimeVariant)}") from None


def _shell(command: str, field_name: str) -> list[str]:
    text = command.strip()
    if not text:
        raise ReplicaSpecError(field_name, "the start command is empty")
    if len(text) > MAX_STARTUP_COMMAND or "\x00" in text:
        raise ReplicaSpecError(field_name, f"the start command must be at most {MAX_STARTUP_COMMAND} "
                                           f"characters, without NUL")
    return [*SHELL, text]


def label_command(labels: dict[str, str]) -> list[str] | None:
    """The image's predefined start command: a JSON list of strings, or a shell command line."""
    raw = (labels.get(LABEL_START_COMMAND) or "").strip()
    if not raw:
        return None
    if raw.startswith("["):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if (not isinstance(value, list) or not 1 <= len(value) <= MAX_ARGS
                or not all(isinstance(x, str) and 0 < len(x) <= MAX_STARTUP_COMMAND and "\x00" not in x
                           for x in value)):
            raise ReplicaSpecError(FIELD_VARIANT, f"the image's label {LABEL_START_COMMAND} is not a JSON list "
                                                  f"of 1-{MAX_ARGS} non-empty strings")
        return list(value)
    return _shell(raw, FIELD_VARIANT)


def label_port(labels: dict[str, str]) -> int:
    raw = (labels.get(LABEL_PORT) or "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 1024 <= int(raw) <= 65535:
        raise ReplicaSpecError(FIELD_VARIANT, f"the image's label {LABEL_PORT} is not a port (1024-65535)")
    return int(raw)


def label_health(labels: dict[str, str]) -> HealthCheck | None:
    raw = (labels.get(LABEL_HEALTH_PATH) or "").strip()
    if not raw:
        return None
    if not raw.startswith("/") or any(ch.isspace() for ch in raw) or len(raw) > 2048:
        raise ReplicaSpecError(FIELD_VARIANT, f"the image's label {LABEL_HEALTH_PATH} is not a URL path")
    return HealthCheck(path=raw)


def _actions(actions: list[PreStartAction]) -> list[dict[str, Any]]:
    return [a.as_dict() for a in actions]


def _custom(definition: ModelDefinition | None, model_name: str | None) -> ReplicaSpec:
    if definition is None:
        raise ReplicaSpecError(FIELD_DEFINITION, "the custom runtime needs a model definition file "
                                                 "(model-definition.yaml) in the model folder")
    try:
        model = definition.model(model_name)
    except KeyError:
        names = ", ".join(m.name for m in definition.models)
        raise ReplicaSpecError(FIELD_MODEL, f"the model definition has no model named {model_name!r} "
                                            f"(it defines: {names})") from None
    if model.service is None:
        raise ReplicaSpecError(FIELD_DEFINITION, f"the model {model.name!r} of the definition has no service "
                                                 f"section (start_command, port) to run")
    svc = model.service
    return ReplicaSpec(start_command=list(svc.start_command), port=svc.port, health_check=svc.health_check,
                       pre_start_actions=_actions(svc.pre_start_actions), model_path=model.model_path,
                       definition_name=model.name, runtime_variant=RuntimeVariant.CUSTOM.value)


def model_file_path(mount_destination: str, model_file: str) -> str:
    """A file of the model folder as the container sees it (``model_file`` relative to the folder's
    root, or already under the mount destination)."""
    if model_file.startswith("/"):
        path = posixpath.normpath(model_file)
        if path != mount_destination and not path.startswith(mount_destination.rstrip("/") + "/"):
            raise ReplicaSpecError(FIELD_MODEL, f"the model file must be inside the model folder "
                                                f"({mount_destination})")
        return path
    rel = posixpath.normpath(model_file)
    if rel.startswith("..") or rel in (".", ""):
        raise ReplicaSpecError(FIELD_MODEL, "the model file must be a file inside the model folder")
    return posixpath.join(mount_destination, rel)


def replica_spec(variant: RuntimeVariant | str, *, definition: ModelDefinition | None, model_name: str | None,
                 mount_destination: str, image_labels: dict[str, str], startup_command: str | None,
                 model_file: str | None = None) -> ReplicaSpec:
    """The replica's launch spec for ``variant``.

    - ``custom``: the definition's model (``model_name``, or the first): command, port, health
      check, pre-start actions, model path.  ``startup_command`` is not used (the definition says).
    - ``command``: ``startup_command`` if given (run by ``/bin/sh -c``), else the image's
      ``workbay.model.start-command`` label; port and health path from the image's labels.
    - ``vllm``, ``nim``, ``llama-cpp``: their standard commands, ports and health paths; a
      ``startup_command`` replaces the standard command.  ``llama-cpp`` needs ``model_file`` (the
      ``.gguf`` file, relative to the folder's root).
    Raises ``ReplicaSpecError`` (a ValueError naming the field) when the variant cannot be satisfied."""
    v = _variant(variant)
    mount = mount_destination.rstrip("/") or "/"
    if v is RuntimeVariant.CUSTOM:
        return _custom(definition, model_name)
    override = _shell(startup_command, FIELD_STARTUP_COMMAND) if startup_command and startup_command.strip() \
        else None
    d = _DEFAULTS[v]
    health = HealthCheck(path=d.health_path) if d.health_path else None
    name = definition.model(None).name if definition is not None and definition.models else None
    common: dict[str, Any] = {"model_path": mount, "definition_name": name, "runtime_variant": v.value}
    if v is RuntimeVariant.COMMAND:
        command = override or label_command(image_labels)
        if command is None:
            raise ReplicaSpecError(FIELD_STARTUP_COMMAND,
                                   f"the command runtime needs a start command: give startup_command, or use "
                                   f"an image with the label {LABEL_START_COMMAND}")
        return ReplicaSpec(start_command=command, port=label_port(image_labels),
                           health_check=label_health(image_labels), **common)
    if v is RuntimeVariant.VLLM:
        command = override or ["vllm", "serve", mount, "--host", "0.0.0.0", "--port", str(DEFAULT_PORT)]
        return ReplicaSpec(start_command=command, port=DEFAULT_PORT, health_check=health, **common)
    if v is RuntimeVariant.NIM:
        return ReplicaSpec(start_command=override or list(NIM_COMMAND), port=DEFAULT_PORT, health_check=health,
                           **common)
    # llama-cpp
    if override is None:
        if not model_file:
            raise ReplicaSpecError(FIELD_MODEL, "the llama.cpp runtime needs the model's .gguf file in the "
                                                "model folder")
        path = model_file_path(mount, model_file)
        if not path.lower().endswith(".gguf"):
            raise ReplicaSpecError(FIELD_MODEL, f"the llama.cpp runtime serves a .gguf file, not "
                                                f"{posixpath.basename(path)}")
        override = ["python3", "-m", "llama_cpp.server", "--model", path, "--host", "0.0.0.0",
                    "--port", str(DEFAULT_PORT)]
    return ReplicaSpec(start_command=override, port=DEFAULT_PORT, health_check=health, **common)
