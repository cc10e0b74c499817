"""Runtime variants: what a replica runs for each variant, and why a variant cannot be satisfied."""

from __future__ import annotations

import pytest

from workbay.common.domain import RuntimeVariant
from workbay.manager.serving.definition import HealthCheck, parse_definition
from workbay.manager.serving.runtimes import (
    LABEL_HEALTH_PATH,
    LABEL_PORT,
    LABEL_START_COMMAND,
    ReplicaSpec,
    ReplicaSpecError,
    model_file_path,
    replica_spec,
    variant_defaults,
)

DEFINITION = parse_definition("""\
models:
  - name: first
    model_path: /models/first
    service:
      pre_start_actions:
        - {action: mkdir, args: {path: /home/work/x}}
      start_command: python3 serve.py
      port: 9000
      health_check: {path: /ready, initial_delay: 5}
  - name: second
    model_path: /models/second
    service: {start_command: [second], port: 9001}
  - name: no-service
    model_path: /models/x
""")


def spec(variant, *, definition=None, model_name=None, mount="/models", labels=None, command=None,
         model_file=None) -> ReplicaSpec:
    return replica_spec(variant, definition=definition, model_name=model_name, mount_destination=mount,
                        image_labels=labels or {}, startup_command=command, model_file=model_file)


def refused(field: str, **kw) -> str:
    with pytest.raises(ReplicaSpecError) as e:
        spec(**kw)
    assert e.value.field == field, e.value.field
    assert isinstance(e.value, ValueError) and str(e.value) == e.value.message
    return e.value.message


def test_custom_runs_the_definitions_first_or_named_model():
    s = spec("custom", definition=DEFINITION)
    assert s.launch() == {
        "start_command": ["/bin/sh", "-c", "python3 serve.py"], "port": 9000,
        "pre_start_actions": [{"action": "mkdir", "args": {"path": "/home/work/x"}}],
        "model_path": "/models/first", "definition_name": "first", "runtime_variant": "custom",
        "health_check": {"path": "/ready", "interval": 10.0, "max_retries": 10, "max_wait_time": 15.0,
                         "expected_status_code": 200, "initial_delay": 5.0}}
    s = spec(RuntimeVariant.CUSTOM, definition=DEFINITION, model_name="second", command="ignored")
    assert (s.start_command, s.port, s.health_check, s.model_path, s.definition_name, s.pre_start_actions) == (
        ["second"], 9001, None, "/models/second", "second", [])
    assert s.launch()["health_check"] is None


def test_custom_refusals_name_the_field():
    assert "needs a model definition file" in refused("config.model_definition_path", variant="custom")
    msg = refused("config.model", variant="custom", definition=DEFINITION, model_name="third")
    assert msg == "the model definition has no model named 'third' (it defines: first, second, no-service)"
    msg = refused("config.model_definition_path", variant="custom", definition=DEFINITION, model_name="no-service")
    assert "has no service section" in msg


def test_command_uses_the_override_or_the_images_labels():
    labels = {LABEL_START_COMMAND: '["serve", "--port", "7000"]', LABEL_PORT: "7000", LABEL_HEALTH_PATH: "/hz"}
    s = spec("command", labels=labels)
    assert (s.start_command, s.port, s.health_check) == (["serve", "--port", "7000"], 7000, HealthCheck(path="/hz"))
    assert (s.model_path, s.definition_name, s.runtime_variant) == ("/models", None, "command")
    s = spec("command", labels=labels, command="  my-server --fast ")
    assert s.start_command == ["/bin/sh", "-c", "my-server --fast"] and s.port == 7000
    s = spec("command", labels={LABEL_START_COMMAND: "run.sh && serve"})
    assert (s.start_command, s.port, s.health_check) == (["/bin/sh", "-c", "run.sh && serve"], 8000, None)
    # a definition, when there is one, only names the replica
    assert spec("command", definition=DEFINITION, command="x").definition_name == "first"


@pytest.mark.parametrize(("labels", "command", "field", "message"), [
    ({}, None, "startup_command", "the command runtime needs a start command"),
    ({}, "   ", "startup_command", "the command runtime needs a start command"),
    ({LABEL_START_COMMAND: "[1, 2]"}, None, "runtime_variant", "the image's label workbay.model.start-command"),
    ({LABEL_START_COMMAND: "[]"}, None, "runtime_variant", "the image's label workbay.model.start-command"),
    ({LABEL_START_COMMAND: "[oops"}, None, "runtime_variant", "the image's label workbay.model.start-command"),
    ({LABEL_START_COMMAND: "a", LABEL_PORT: "http"}, None, "runtime_variant", "the image's label workbay.model.port"),
    ({LABEL_START_COMMAND: "a", LABEL_PORT: "70000"}, None, "runtime_variant", "the image's label workbay.model.port"),
    ({LABEL_START_COMMAND: "a", LABEL_PORT: "80"}, None, "runtime_variant", "the image's label workbay.model.port"),
    ({LABEL_START_COMMAND: '["a", ""]'}, None, "runtime_variant", "the image's label workbay.model.start-command"),
    ({LABEL_START_COMMAND: "a", LABEL_HEALTH_PATH: "health"}, None, "runtime_variant",
     "the image's label workbay.model.health-path"),
    ({}, "x" * 4097, "startup_command", "the start command must be at most"),
    ({}, "a\x00b", "startup_command", "the start command must be at most"),
])
def test_command_refusals(labels, command, field, message):
    assert refused(field, variant="command", labels=labels, command=command).startswith(message)


def test_vllm_nim_and_llama_cpp_defaults():
    s = spec("vllm", mount="/mnt/model/")
    assert s.start_command == ["vllm", "serve", "/mnt/model", "--host", "0.0.0.0", "--port", "8000"]
    assert (s.port, s.health_check, s.model_path) == (8000, HealthCheck(path="/health"), "/mnt/model")
    assert spec("vllm", command="vllm serve /models --tp 2").start_command == [
        "/bin/sh", "-c", "vllm serve /models --tp 2"]
    s = spec("nim")
    assert (s.start_command, s.port, s.health_check) == (
        ["/opt/nvidia/nvidia_entrypoint.sh", "/opt/nim/start_server.sh"], 8000, HealthCheck(path="/v1/health/ready"))
    assert spec("nim", command="/opt/other/start.sh").start_command == ["/bin/sh", "-c", "/opt/other/start.sh"]
    s = spec("llama-cpp", model_file="weights/tiny.gguf")
    assert s.start_command == ["python3", "-m", "llama_cpp.server", "--model", "/models/weights/tiny.gguf",
                               "--host", "0.0.0.0", "--port", "8000"]
    assert (s.port, s.health_check) == (8000, HealthCheck(path="/v1/models"))
    assert spec("llama-cpp", model_file="/models/a.GGUF").start_command[4] == "/models/a.GGUF"
    assert spec("llama-cpp", command="llama-server -m /models/x.gguf").start_command[0] == "/bin/sh"


@pytest.mark.parametrize(("model_file", "message"), [
    (None, "the llama.cpp runtime needs the model's .gguf file"),
    ("", "the llama.cpp runtime needs the model's .gguf file"),
    ("model.bin", "the llama.cpp runtime serves a .gguf file, not model.bin"),
    ("../x.gguf", "the model file must be a file inside the model folder"),
    ("/etc/x.gguf", "the model file must be inside the model folder (/models)"),
    ("/models/../etc/x.gguf", "the model file must be inside the model folder"),
    (".", "the model file must be a file inside the model folder"),
])
def test_llama_cpp_refusals(model_file, message):
    assert refused("config.model", variant="llama-cpp", model_file=model_file).startswith(message)


def test_unknown_variant():
    assert refused("runtime_variant", variant="tgi").startswith("runtime_variant must be one of custom, command")


def test_model_file_path():
    assert model_file_path("/models", "a/b.gguf") == "/models/a/b.gguf"
    assert model_file_path("/models", "./a//b.gguf") == "/models/a/b.gguf"
    assert model_file_path("/models", "/models/a.gguf") == "/models/a.gguf"
    with pytest.raises(ReplicaSpecError):
        model_file_path("/models", "/modelsx/a.gguf")


def test_variant_defaults_cover_every_variant():
    rows = variant_defaults()
    assert [r["name"] for r in rows] == [v.value for v in RuntimeVariant]
    by = {r["name"]: r for r in rows}
    assert by["custom"]["needs_definition"] and not any(r["needs_definition"] for r in rows[1:])
    assert (by["vllm"]["port"], by["vllm"]["health_path"]) == (8000, "/health")
    assert (by["nim"]["port"], by["nim"]["health_path"], by["nim"]["start_command"]) == (
        8000, "/v1/health/ready", ["/opt/nvidia/nvidia_entrypoint.sh", "/opt/nim/start_server.sh"])
    assert by["llama-cpp"]["health_path"] == "/v1/models" and "<model-file>" in by["llama-cpp"]["start_command"]
    assert set(rows[0]) == {"name", "label", "port", "health_path", "start_command", "needs_definition"}
    rows[2]["start_command"].append("mutated")  # the caller's copy
    assert "mutated" not in variant_defaults()[2]["start_command"]


def test_every_launch_is_what_the_agent_accepts():
    """The agent checks a replica's spec strictly (agent/models.py): what a valid definition and
    each variant make must pass it, so a definition accepted at creation never fails at a start."""
    from workbay.agent.models import ModelServiceSpec
    from workbay.manager.compute.agent_rpc import REPLICA_KEYS

    full = parse_definition("""\
models:
  - name: m
    model_path: /models
    service:
      pre_start_actions:
        - {action: mkdir, args: {path: /home/work/x}}
        - {action: write_file, args: {filename: /home/work/a, body: [x, y], mode: 600, append: true}}
        - {action: write_tempfile, args: {body: z}}
        - {action: run_command, args: {command: pip install x, cwd: /home/work, echo: true}}
        - {action: run_command, args: {command: [ls, -l]}}
        - {action: log, args: {message: hi, debug: true}}
      start_command: [python3, serve.py]
      port: 1024
""")
    specs = [spec("custom", definition=full), spec("custom", definition=DEFINITION),
             spec("command", command="serve"), spec("vllm"), spec("nim"), spec("llama-cpp", model_file="m.gguf"),
             spec("command", labels={LABEL_START_COMMAND: '["a"]', LABEL_PORT: "65535"})]
    for s in specs:
        wire = {k: v for k, v in s.launch().items() if k in REPLICA_KEYS}
        ModelServiceSpec.model_validate(wire)
