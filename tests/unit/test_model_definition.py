"""model-definition.yaml (MS-1): every key, every problem with its file, line and key path."""

from __future__ import annotations

import textwrap

import pytest

from workbay.manager.serving.definition import (
    MAX_ACTIONS,
    MAX_FILE_BYTES,
    MAX_MODELS,
    DefinitionError,
    HealthCheck,
    ModelMetadata,
    PreStartAction,
    parse_definition,
)

FULL = """\
models:
  - name: my-model
    model_path: /models
    service:
      pre_start_actions:
        - action: mkdir
          args: {path: /home/work/cache}
        - action: write_file
          args: {filename: /home/work/cfg.json, body: '{"a": 1}', mode: "640", append: true}
        - action: write_tempfile
          args: {body: [line one, line two], mode: 600}
        - action: run_command
          args: {command: ["pip", "install", "x"], cwd: /home/work, echo: true}
        - action: run_command
          args: {command: "echo hi > /tmp/x"}
        - action: log
          args: {message: starting, debug: true}
      start_command: ["python3", "/models/server.py"]
      port: 8000
      health_check:
        path: /health
        interval: 5
        max_retries: 3
        max_wait_time: 2.5
        expected_status_code: 204
        initial_delay: 0
    metadata:
      title: My model
      author: Someone
      description: |
        Two lines
        of text.
      task: text-generation
      category: LLM
      architecture: transformer
      framework: [vllm, pytorch]
      label: [a, b]
      license: Apache-2.0
      version: 2
      created: 2024-01-02
      last_modified: "2024-02-03"
      min_resource: {cpu: 2, mem: 4g}
  - name: second
    model_path: /models/second
"""


def problems(text: str, filename: str = "model-definition.yaml") -> list[tuple[int | None, str, str]]:
    with pytest.raises(DefinitionError) as e:
        parse_definition(textwrap.dedent(text), filename)
    return [(p.line, p.key, p.message) for p in e.value.problems]


def one(text: str) -> tuple[int | None, str, str]:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def wrap_service(service: str) -> str:
    """A valid model around a service section (its keys at 6 spaces; the section starts on line 5)."""
    return "models:\n  - name: m\n    model_path: /models\n    service:\n" + textwrap.indent(
        textwrap.dedent(service), "      ")


# -- every key ----------------------------------------------------------------------------------------
def test_every_key_is_read():
    d = parse_definition(FULL)
    assert [m.name for m in d.models] == ["my-model", "second"]
    m = d.models[0]
    assert m.model_path == "/models"
    svc = m.service
    assert svc is not None
    assert svc.start_command == ["python3", "/models/server.py"] and svc.port == 8000
    assert svc.health_check == HealthCheck(path="/health", interval=5.0, max_retries=3, max_wait_time=2.5,
                                           expected_status_code=204, initial_delay=0.0)
    assert svc.pre_start_actions == [
        PreStartAction("mkdir", {"path": "/home/work/cache"}),
        PreStartAction("write_file", {"filename": "/home/work/cfg.json", "body": '{"a": 1}', "mode": "640",
                                      "append": True}),
        PreStartAction("write_tempfile", {"body": "line one\nline two\n", "mode": "600"}),
        PreStartAction("run_command", {"command": ["pip", "install", "x"], "cwd": "/home/work"}),  # echo: read, dropped
        PreStartAction("run_command", {"command": ["/bin/sh", "-c", "echo hi > /tmp/x"], "cwd": None}),
        PreStartAction("log", {"message": "starting", "debug": True}),
    ]
    assert m.metadata == ModelMetadata(
        title="My model", author="Someone", description="Two lines\nof text.\n", task="text-generation",
        category="LLM", architecture="transformer", framework="vllm, pytorch", label=["a", "b"],
        license="Apache-2.0", version="2", created="2024-01-02", last_modified="2024-02-03",
        min_resource={"cpu": "2", "mem": "4g"})
    second = d.models[1]
    assert second.service is None and second.metadata == ModelMetadata()
    assert d.model(None) is m and d.model("second") is second
    with pytest.raises(KeyError):
        d.model("third")


def test_defaults_and_string_forms():
    d = parse_definition(wrap_service("""\
        start_command: python3 -m http.server 8000
        port: 8000
        health_check: {path: /}
        pre_start_actions:
          - action: write_file
            args: {filename: /tmp/a, body: x}
          - action: write_tempfile
            args: {body: y}
          - action: log
            args: {message: m}
    """))
    svc = d.models[0].service
    assert svc is not None
    assert svc.start_command == ["/bin/sh", "-c", "python3 -m http.server 8000"]
    assert svc.health_check == HealthCheck(path="/", interval=10.0, max_retries=10, max_wait_time=15.0,
                                           expected_status_code=200, initial_delay=60.0)
    assert [a.args for a in svc.pre_start_actions] == [
        {"filename": "/tmp/a", "body": "x", "mode": "644", "append": False},
        {"body": "y", "mode": "600"},
        {"message": "m", "debug": False},
    ]


def test_nulls_mean_the_defaults():
    d = parse_definition(wrap_service("""\
        start_command: [serve]
        port: 1024
        pre_start_actions: null
        health_check: {path: /h, interval: null, max_retries: ~, initial_delay: null}
    """) + "    metadata: {title: null, label: null}\n")
    svc = d.models[0].service
    assert svc is not None and svc.pre_start_actions == [] and svc.port == 1024
    assert svc.health_check == HealthCheck(path="/h")
    assert d.models[0].metadata == ModelMetadata()
    d = parse_definition("models:\n  - {name: m, model_path: /m, service: null, metadata: null}\n")
    assert d.models[0].service is None


def test_bytes_and_the_limits():
    assert parse_definition(FULL.encode()).models[0].name == "my-model"
    # exactly at the bounds
    many = "models:\n" + "".join(f"  - {{name: m{i}, model_path: /m}}\n" for i in range(MAX_MODELS))
    assert len(parse_definition(many).models) == MAX_MODELS
    actions = "".join("    - {action: log, args: {message: x}}\n" for _ in range(MAX_ACTIONS))
    d = parse_definition(wrap_service("start_command: [a]\nport: 8080\npre_start_actions:\n" + actions))
    assert len(d.models[0].service.pre_start_actions) == MAX_ACTIONS  # type: ignore[union-attr]
    assert parse_definition(wrap_service("start_command: [a]\nport: 65535\n")).models[0].service.port == 65535  # type: ignore[union-attr]


# -- problems: each names file, line, key -------------------------------------------------------------
CASES = [
    # (text, line, key, message start)
    ("models: []\n", 1, "models", "must not be empty"),
    ("models: {}\n", 1, "models", "must be a list, not a mapping"),
    ("models:\n  - 3\n", 2, "models[0]", "must be a mapping, not an integer"),
    ("other: 1\nmodels:\n  - {name: a, model_path: /m}\n", 1, "other", "unknown key (allowed: models)"),
    ("- 1\n", 1, "", "the file must be a mapping with a 'models' list, not a list"),
    ("just text\n", 1, "", "the file must be a mapping with a 'models' list, not a string"),
    ("{}\n", 1, "models", "is required"),
    ("models:\n  - model_path: /m\n", 2, "models[0].name", "is required"),
    ("models:\n  - name: m\n", 2, "models[0].model_path", "is required"),
    ("models:\n  - name: ''\n    model_path: /m\n", 2, "models[0].name", "must not be empty"),
    ("models:\n  - name: [a]\n    model_path: /m\n", 2, "models[0].name", "must be a string, not a list"),
    ("models:\n  - name: 12\n    model_path: /m\n", 2, "models[0].name", "must be a string, not an integer"),
    ("models:\n  - name: " + "n" * 129 + "\n    model_path: /m\n", 2, "models[0].name",
     "must be at most 128 characters"),
    ('models:\n  - name: "a\\x01b"\n    model_path: /m\n', 2, "models[0].name", "must not contain U+0001"),
    ('models:\n  - name: "a\\u202eb"\n    model_path: /m\n', 2, "models[0].name",
     "must not contain invisible"),
    ("models:\n  - name: m\n    model_path: models\n", 3, "models[0].model_path",
     "must be an absolute path (starting with /)"),
    ("models:\n  - name: m\n    model_path: /m\n    servic: {}\n", 4, "models[0].servic", "unknown key"),
    ("models:\n  - name: m\n    model_path: /m\n    service: [1]\n", 4, "models[0].service",
     "must be a mapping, not a list"),
    ("models:\n  - name: m\n    model_path: /m\n    metadata: text\n", 4, "models[0].metadata",
     "must be a mapping, not a string"),
    ("models:\n  - name: m\n    model_path: /m\n    metadata: {tags: [a]}\n", 4, "models[0].metadata.tags",
     "unknown key"),
    ("models:\n  - name: m\n    model_path: /m\n    metadata:\n      title: {a: 1}\n", 5,
     "models[0].metadata.title", "must be a string, not a mapping"),
    ("models:\n  - name: m\n    model_path: /m\n    metadata:\n      label: a\n", 5,
     "models[0].metadata.label", "must be a list, not a string"),
    ("models:\n  - name: m\n    model_path: /m\n    metadata:\n      label: [a, [b]]\n", 5,
     "models[0].metadata.label[1]", "must be a string, not a list"),
    ("models:\n  - name: m\n    model_path: /m\n    metadata:\n      label: [" + ", ".join(["x"] * 65) + "]\n", 5,
     "models[0].metadata.label", "must have at most 64 entries"),
    ("models:\n  - name: m\n    model_path: /m\n    metadata:\n      min_resource: [1]\n", 5,
     "models[0].metadata.min_resource", "must be a mapping of at most 32 resource slots"),
    ("models:\n  - name: m\n    model_path: /m\n    metadata:\n      description: " + "d" * 70000 + "\n", 5,
     "models[0].metadata.description", "must be at most 65536 characters"),
]

SERVICE_CASES = [
    # (service section, line, key after "models[0].service", message start); the section's first key is line 5
    ("port: 8080\n", 5, ".start_command", "is required"),  # a missing key: where its mapping starts
    ("start_command: [a]\n", 5, ".port", "is required"),
    ("start_command: [a]\nport: 0\n", 6, ".port", "must be an integer between 1024 and 65535"),
    ("start_command: [a]\nport: 1023\n", 6, ".port", "must be an integer between 1024 and 65535"),
    ("start_command: [a]\nport: 65536\n", 6, ".port", "must be an integer between 1024 and 65535"),
    ("start_command: [a]\nport: '8000'\n", 6, ".port", "must be an integer between 1024 and 65535"),
    ("start_command: [a]\nport: 80.5\n", 6, ".port", "must be an integer between 1024 and 65535"),
    ("start_command: [a]\nport: true\n", 6, ".port", "must be an integer between 1024 and 65535"),
    ("start_command: []\nport: 8080\n", 5, ".start_command", "must not be empty"),
    ("start_command: ''\nport: 8080\n", 5, ".start_command", "must not be empty"),
    ("start_command: {a: 1}\nport: 8080\n", 5, ".start_command", "must be a list of strings or a string"),
    ("start_command: [a, [b]]\nport: 8080\n", 5, ".start_command[1]", "must be a string, not a list"),
    ("start_command: [" + ", ".join(["a"] * 65) + "]\nport: 8080\n", 5, ".start_command",
     "must have at most 64 entries"),
    ("start_command: [a, '']\nport: 8080\n", 5, ".start_command[1]", "must not be empty"),
    ("start_command: [a]\nport: 8080\nextra: 1\n", 7, ".extra", "unknown key (allowed: start_command, port, "
                                                               "pre_start_actions, health_check)"),
    ("start_command: [a]\nport: 8080\nhealth_check: {}\n", 7, ".health_check.path", "is required"),
    ("start_command: [a]\nport: 8080\nhealth_check: /health\n", 7, ".health_check", "must be a mapping"),
    ("start_command: [a]\nport: 8080\nhealth_check: {path: health}\n", 7, ".health_check.path",
     "must be a URL path starting with /"),
    ("start_command: [a]\nport: 8080\nhealth_check: {path: /a b}\n", 7, ".health_check.path",
     "must be a URL path starting with /"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  interval: 0\n", 9, ".health_check.interval",
     "must be a number greater than 0 and at most 3600"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  interval: fast\n", 9,
     ".health_check.interval", "must be a number greater than 0"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  interval: .nan\n", 9,
     ".health_check.interval", "must be a number greater than 0"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  max_retries: 0\n", 9,
     ".health_check.max_retries", "must be an integer between 1 and 1000"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  max_retries: 2.5\n", 9,
     ".health_check.max_retries", "must be an integer between 1 and 1000"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  max_wait_time: -1\n", 9,
     ".health_check.max_wait_time", "must be a number greater than 0"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  expected_status_code: 99\n", 9,
     ".health_check.expected_status_code", "must be an integer between 100 and 599"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  expected_status_code: 600\n", 9,
     ".health_check.expected_status_code", "must be an integer between 100 and 599"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  initial_delay: -1\n", 9,
     ".health_check.initial_delay", "must be a number at least 0 and at most 86400"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  initial_delay: 86401\n", 9,
     ".health_check.initial_delay", "must be a number at least 0 and at most 86400"),
    ("start_command: [a]\nport: 8080\nhealth_check:\n  path: /h\n  timeout: 1\n", 9,
     ".health_check.timeout", "unknown key"),
    ("start_command: [a]\nport: 8080\npre_start_actions: {action: log}\n", 7, ".pre_start_actions",
     "must be a list, not a mapping"),
    ("start_command: [a]\nport: 8080\npre_start_actions: [" + ", ".join(
        ["{action: log, args: {message: x}}"] * 65) + "]\n", 7, ".pre_start_actions",
     "must have at most 64 entries"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: rm\n    args: {}\n", 8,
     ".pre_start_actions[0].action", "must be one of write_file, write_tempfile, run_command, mkdir, log"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: log\n", 8,
     ".pre_start_actions[0].args", "is required"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - args: {}\n", 8,
     ".pre_start_actions[0].action", "is required"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: log\n    args: [x]\n", 9,
     ".pre_start_actions[0].args", "must be a mapping, not a list"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: log\n    args: {message: x}\n    when: 1\n",
     10, ".pre_start_actions[0].when", "unknown key (allowed: action, args)"),
    # per action: required, unknown and wrongly typed arguments
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: mkdir\n    args: {}\n", 9,
     ".pre_start_actions[0].args.path", "is required"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: mkdir\n    args: {path: rel}\n", 9,
     ".pre_start_actions[0].args.path", "must be an absolute path"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: mkdir\n    args: {path: /a, mode: '755'}\n",
     9, ".pre_start_actions[0].args.mode", "unknown key (allowed: path)"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: write_file\n    args: {body: x}\n", 9,
     ".pre_start_actions[0].args.filename", "is required"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: write_file\n    args: {filename: /a}\n", 9,
     ".pre_start_actions[0].args.body", "is required"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: write_file\n"
     "    args: {filename: /a, body: x, mode: rwx}\n", 9, ".pre_start_actions[0].args.mode",
     'must be a file mode in octal digits, like "644"'),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: write_file\n"
     "    args: {filename: /a, body: x, mode: 999}\n", 9, ".pre_start_actions[0].args.mode",
     "must be a file mode in octal digits"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: write_file\n"
     "    args: {filename: /a, body: x, append: maybe}\n", 9, ".pre_start_actions[0].args.append",
     "must be true or false, not a string"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: write_file\n"
     "    args: {filename: /a, body: {x: 1}}\n", 9, ".pre_start_actions[0].args.body",
     "must be a string, not a mapping"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: write_tempfile\n    args: {}\n", 9,
     ".pre_start_actions[0].args.body", "is required"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: write_tempfile\n"
     "    args: {body: x, filename: /a}\n", 9, ".pre_start_actions[0].args.filename",
     "unknown key (allowed: body, mode)"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: run_command\n    args: {}\n", 9,
     ".pre_start_actions[0].args.command", "is required"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: run_command\n    args: {command: []}\n", 9,
     ".pre_start_actions[0].args.command", "must not be empty"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: run_command\n"
     "    args: {command: [a], cwd: work}\n", 9, ".pre_start_actions[0].args.cwd", "must be an absolute path"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: run_command\n"
     "    args: {command: [a], echo: 1}\n", 9, ".pre_start_actions[0].args.echo",
     "must be true or false, not an integer"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: log\n    args: {}\n", 9,
     ".pre_start_actions[0].args.message", "is required"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: log\n    args: {message: x, debug: 'no'}\n",
     9, ".pre_start_actions[0].args.debug", "must be true or false, not a string"),
    ("start_command: [a]\nport: 8080\npre_start_actions:\n  - action: log\n    args: {message: x, level: 1}\n",
     9, ".pre_start_actions[0].args.level", "unknown key (allowed: message, debug)"),
]


@pytest.mark.parametrize(("text", "line", "key", "message"), CASES, ids=[c[2] or c[3][:30] for c in CASES])
def test_each_problem_names_its_line_and_key(text, line, key, message):
    got = one(text)
    assert (got[0], got[1]) == (line, key), got
    assert got[2].startswith(message), got


@pytest.mark.parametrize(("service", "line", "key", "message"), SERVICE_CASES,
                         ids=[f"{i}{c[2]}" for i, c in enumerate(SERVICE_CASES)])
def test_each_service_problem_names_its_line_and_key(service, line, key, message):
    got = one(wrap_service(service))
    assert (got[0], got[1]) == (line, "models[0].service" + key), got
    assert got[2].startswith(message), got


def test_the_message_format_and_every_problem_sorted_by_line():
    text = wrap_service("""\
        start_command: []
        port: 70000
        health_check: {path: x, interval: -1}
    """).replace("model_path: /models", "model_path: rel")
    with pytest.raises(DefinitionError) as e:
        parse_definition(text, "defs/custom.yml")
    err = e.value
    assert str(err).splitlines() == [
        "defs/custom.yml, line 3: models[0].model_path: must be an absolute path (starting with /)",
        "defs/custom.yml, line 5: models[0].service.start_command: must not be empty",
        "defs/custom.yml, line 6: models[0].service.port: must be an integer between 1024 and 65535",
        "defs/custom.yml, line 7: models[0].service.health_check.path: must be a URL path starting with / "
        "(no spaces)",
        "defs/custom.yml, line 7: models[0].service.health_check.interval: must be a number greater than 0 "
        "and at most 3600",
    ]
    assert (err.file, err.line, err.key) == ("defs/custom.yml", 3, "models[0].model_path")
    assert err.message == "must be an absolute path (starting with /)"
    assert isinstance(err, ValueError)


def test_problems_in_several_models_and_duplicates():
    text = """\
    models:
      - name: a
        model_path: /m
      - name: a
        model_path: /n
      - name: b
    """
    assert problems(text) == [(4, "models[1].name", "duplicate model name 'a' (also models[0])"),
                              (6, "models[2].model_path", "is required")]


def test_the_problem_count_is_bounded():
    text = "models:\n" + "".join(f"  - {{name: m{i}, model_path: rel}}\n" for i in range(60))
    assert len(problems(text)) == 50


# -- the document itself ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "line", "message"), [
    ("", None, "the file is empty; it needs a 'models' list"),
    ("# only a comment\n", None, "the file is empty"),
    ("models: [\n", 2, "invalid YAML: while parsing a flow node"),
    ("models:\n  - name: a\n\tmodel_path: /m\n", 3, "invalid YAML"),
    ("a: 1\n---\nb: 2\n", 2, "invalid YAML: expected a single document"),
    ("models: []\nmodels: []\n", 2, "duplicate key 'models'"),
    ("models: !!python/object/apply:os.system [echo]\n", 1, "the YAML tag 'tag:yaml.org,2002:python/object/apply"),
    ("models: !!binary aGk=\n", 1, "the YAML tag 'tag:yaml.org,2002:binary' is not allowed"),
    ("models: !custom x\n", 1, "the YAML tag '!custom' is not allowed"),
    ("models: !!set {a, b}\n", 1, "the YAML tag 'tag:yaml.org,2002:set' is not allowed"),
    ("base: &b {name: a}\nmodels:\n  - <<: *b\n    model_path: /m\n", 3, "mapping keys must be plain strings"),
    ("? [a]\n: 1\n", 1, "mapping keys must be plain strings"),
    ("a: &a [*a]\n", 1, "values are nested too deeply"),
    ("models:\n" + "  " * 1 + "- " + "[" * 20 + "]" * 20 + "\n", 2, "values are nested too deeply"),
])
def test_document_problems(text, line, message):
    got = one(text)
    assert got[0] == line and got[1] == "", got
    assert got[2].startswith(message), got


def test_alias_expansion_is_bounded():
    lines = ['l0: &l0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 7):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]")
    got = one("\n".join(lines) + "\n")
    assert got == (None, "", "the document is too large (over 50000 values once aliases are expanded)")


def test_a_few_aliases_are_fine():
    text = "common: &c {path: /h}\nmodels:\n  - name: a\n    model_path: /m\n"
    assert one(text)[1] == "common"  # unknown key, not refused for its anchor
    d = parse_definition("models:\n  - &m {name: a, model_path: /m}\n")
    assert d.models[0].name == "a"


def test_size_and_encoding():
    big = b"#" * (MAX_FILE_BYTES + 1)
    assert one(big.decode()) == (None, "", "the file is larger than 1 MiB")
    with pytest.raises(DefinitionError) as e:
        parse_definition(big)
    assert str(e.value) == "model-definition.yaml: the file is larger than 1 MiB"
    with pytest.raises(DefinitionError) as e:
        parse_definition(b"models: \xff\xfe\n")
    assert e.value.message == "the file is not UTF-8 text (byte 8)"
    # at the bound itself: parsed
    padded = FULL.encode() + b"#" * (MAX_FILE_BYTES - len(FULL.encode()))
    assert len(padded) == MAX_FILE_BYTES and parse_definition(padded).models


def test_body_and_command_bounds():
    long_body = "x" * (256 * 1024 + 1)
    got = one(wrap_service(f"start_command: [a]\nport: 8080\npre_start_actions:\n"
                           f"  - action: write_tempfile\n    args: {{body: {long_body}}}\n"))
    assert got[1] == "models[0].service.pre_start_actions[0].args.body"
    assert got[2] == "must be at most 262144 characters"
    got = one(wrap_service(f"start_command: [{'a' * 4097}]\nport: 8080\n"))
    assert got[1:] == ("models[0].service.start_command[0]", "must be at most 4096 characters")
    # multi-line text is fine where a script is expected, a NUL never
    d = parse_definition(wrap_service('start_command: "a\\nb\\tc"\nport: 8080\n'))
    assert d.models[0].service.start_command == ["/bin/sh", "-c", "a\nb\tc"]  # type: ignore[union-attr]
    got = one(wrap_service('start_command: ["a\\0b"]\nport: 8080\n'))
    assert got[2] == "must not contain U+0000 (a control character)"
