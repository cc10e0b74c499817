"""``model-definition.yaml`` (MS-1, docs/serving.md "Model definition"): parse and validate (pure).

The YAML is composed into nodes (``yaml.compose`` with the safe loader), never constructed into
Python objects first: every node keeps its line, so every problem names the file, the line and the
key path (``models[0].service.port``).  All problems of a file are collected and raised together
in one ``DefinitionError``, sorted by line.

Bounded on purpose: the file (1 MiB), the node count and nesting depth (alias expansion: a
"billion laughs" document is refused, not expanded), models, actions, strings and lists.  Only the
YAML core tags are accepted (no ``!!python/…``, ``!!binary``, ``!!set``, merge keys ``<<``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from workbay.common.text import TEXT_REFUSED, first_refused

DEFINITION_FILENAMES = ("model-definition.yaml", "model-definition.yml")
MAX_FILE_BYTES = 1 << 20
MAX_NODES = 50_000          # nodes visited, aliases counted each time they are used
MAX_DEPTH = 16
MAX_MODELS = 64
MAX_ACTIONS = 64
MAX_PROBLEMS = 50           # a file this broken needs no more to be fixed
MAX_NAME = 128
MAX_PATH = 1024
MAX_STRING = 4096           # one command argument, a shell command line, a log message, a metadata field
MAX_TEXT = 64 * 1024        # a description, a log message
MAX_BODY = 256 * 1024       # a file body of write_file / write_tempfile
MAX_ARGS = 64               # arguments of a command (the agent's bound)
MIN_PORT = 1024             # replicas run as a normal user: no privileged ports (the agent's bound)
MAX_LABELS = 64
MAX_SECONDS = 86_400.0
MODE_RE = re.compile(r"^[0-7]{3,4}\Z")
SHELL = ("/bin/sh", "-c")

HEALTH_DEFAULTS: dict[str, float | int] = {"interval": 10.0, "max_retries": 10, "max_wait_time": 15.0,
                                           "expected_status_code": 200, "initial_delay": 60.0}
ACTIONS = ("write_file", "write_tempfile", "run_command", "mkdir", "log")
_STR, _INT, _FLOAT, _BOOL, _NULL, _TIME = (f"tag:yaml.org,2002:{t}" for t in
                                           ("str", "int", "float", "bool", "null", "timestamp"))
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_SCALARS = yaml.constructor.SafeConstructor()  # scalar conversions only (stateless for scalars)
_CORE_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIME, _MAP, _SEQ})


# -- the result ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HealthCheck:
    path: str
    interval: float = 10.0            # seconds between checks
    max_retries: int = 10             # consecutive failures before the replica leaves rotation
    max_wait_time: float = 15.0       # seconds one check may take
    expected_status_code: int = 200
    initial_delay: float = 60.0       # seconds after start before the first check

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "interval": self.interval, "max_retries": self.max_retries,
                "max_wait_time": self.max_wait_time, "expected_status_code": self.expected_status_code,
                "initial_delay": self.initial_delay}


@dataclass(frozen=True)
class PreStartAction:
    """One action, its arguments validated and completed with their defaults (``body`` a string,
    ``command`` a list: a string command becomes ``["/bin/sh", "-c", s]``)."""

    action: str
    args: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "args": dict(self.args)}


@dataclass(frozen=True)
class ServiceConfig:
    start_command: list[str]
    port: int
    pre_start_actions: list[PreStartAction] = field(default_factory=list)
    health_check: HealthCheck | None = None


@dataclass(frozen=True)
class ModelMetadata:
    title: str | None = None
    author: str | None = None
    description: str | None = None
    task: str | None = None
    category: str | None = None
    architecture: str | None = None
    framework: str | None = None
    label: list[str] = field(default_factory=list)
    license: str | None = None
    version: str | None = None
    created: str | None = None
    last_modified: str | None = None
    min_resource: dict[str, str] = field(default_factory=dict)  # Backend.AI's; shown, not enforced


@dataclass(frozen=True)
class ModelConfig:
    name: str
    model_path: str
    service: ServiceConfig | None = None
    metadata: ModelMetadata = field(default_factory=ModelMetadata)


@dataclass(frozen=True)
class ModelDefinition:
    models: list[ModelConfig]

    def model(self, name: str | None = None) -> ModelConfig:
        """The named model, or the first.  KeyError when no model has that name."""
        if name is None:
            return self.models[0]
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)


# -- problems -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DefinitionProblem:
    line: int | None   # 1-based; None: the file as a whole
    key: str           # the key path, "" for the document
    message: str


def _format(file: str, p: DefinitionProblem) -> str:
    where = file if p.line is None else f"{file}, line {p.line}"
    return f"{where}: {p.key}: {p.message}" if p.key else f"{where}: {p.message}"


class DefinitionError(ValueError):
    """Every problem of one definition file.  ``file``, ``line``, ``key``, ``message``: the first
    (lowest line); ``problems``: all of them, sorted by line; ``str()``: one line per problem."""

    def __init__(self, file: str, line: int | None, key: str, message: str,
                 problems: list[DefinitionProblem] | None = None) -> None:
        self.file, self.line, self.key, self.message = file, line, key, message
        self.problems = problems or [DefinitionProblem(line, key, message)]
        super().__init__("\n".join(_format(file, p) for p in self.problems))


class _Abort(Exception):
    """Too many problems or a document too big to walk: stop at once."""


class _Checker:
    def __init__(self) -> None:
        self.problems: list[DefinitionProblem] = []

    def add(self, node: Node | None, key: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.problems.append(DefinitionProblem(line, key, message))
        if len(self.problems) >= MAX_PROBLEMS:
            raise _Abort


# -- the document's shape -----------------------------------------------------------------------------
def _guard(root: Node, c: _Checker) -> None:
    """Refuse tags beyond the core schema, merge keys, duplicate keys; bound nodes and depth (an
    alias is walked each time it is used, so a document that expands beyond the bound stops here)."""
    seen = 0
    stack: list[tuple[Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            c.add(None, "", f"the document is too large (over {MAX_NODES} values once aliases are expanded)")
            raise _Abort
        if depth > MAX_DEPTH:
            c.add(node, "", f"values are nested too deeply (at most {MAX_DEPTH} levels)")
            raise _Abort
        if node.tag not in _CORE_TAGS:
            c.add(node, "", f"the YAML tag {node.tag!r} is not allowed (plain values, lists and mappings only)")
            raise _Abort
        if isinstance(node, MappingNode):
            keys: set[str] = set()
            for k, v in node.value:
                if not isinstance(k, ScalarNode) or k.tag not in (_STR, _INT, _BOOL, _NULL, _FLOAT):
                    c.add(k, "", "mapping keys must be plain strings (merge keys '<<' are not allowed)")
                    raise _Abort
                if k.value in keys:
                    c.add(k, "", f"duplicate key {k.value!r}")
                keys.add(k.value)
                stack.append((v, depth + 1))
        elif isinstance(node, SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {_INT: "an integer", _FLOAT: "a number", _BOOL: "a boolean", _NULL: "null",
            _TIME: "a date"}.get(node.tag, "a string")


def _fields(c: _Checker, node: Node, key: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
            ) -> dict[str, Node] | None:
    """A mapping's values by key; unknown keys and missing required keys are problems."""
    if not isinstance(node, MappingNode):
        c.add(node, key, f"must be a mapping, not {_kind(node)}")
        return None
    out: dict[str, Node] = {}
    for k, v in node.value:
        name = str(k.value)
        path = f"{key}.{name}" if key else name
        if name not in allowed:
            c.add(k, path, f"unknown key (allowed: {', '.join(allowed)})")
            continue
        out[name] = v
    for name in required:
        if name not in out:
            c.add(node, f"{key}.{name}" if key else name, "is required")
    return out


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _string(c: _Checker, node: Node, key: str, *, limit: int = MAX_STRING, multiline: bool = False,
            empty: bool = False, scalar: bool = False) -> str | None:
    """A string.  ``scalar``: numbers and dates are taken as written (``version: 1.0``)."""
    ok_tags = (_STR, _INT, _FLOAT, _TIME) if scalar else (_STR,)
    if not isinstance(node, ScalarNode) or node.tag not in ok_tags:
        c.add(node, key, f"must be a string, not {_kind(node)}")
        return None
    value = str(node.value)
    if not value and not empty:
        c.add(node, key, "must not be empty")
        return None
    if len(value) > limit:
        c.add(node, key, f"must be at most {limit} characters")
        return None
    bad = first_refused(value, TEXT_REFUSED, "\t\n\r" if multiline else "\t")
    if bad:
        c.add(node, key, f"must not contain {bad}")
        return None
    return value


def _int(c: _Checker, node: Node, key: str, low: int, high: int) -> int | None:
    if isinstance(node, ScalarNode) and node.tag == _INT:
        try:
            value = _SCALARS.construct_yaml_int(node)
        except (ValueError, yaml.YAMLError):
            value = None
        if isinstance(value, int) and low <= value <= high:
            return value
    c.add(node, key, f"must be an integer between {low} and {high}")
    return None


def _number(c: _Checker, node: Node, key: str, low: float, high: float, *, positive: bool = False) -> float | None:
    if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT):
        try:
            raw = _SCALARS.construct_yaml_int(node) if node.tag == _INT else _SCALARS.construct_yaml_float(node)
            value: float | None = float(raw)
        except (ValueError, yaml.YAMLError):
            value = None
        if value is not None and low <= value <= high and (value > 0 or not positive):
            return value
    bound = "greater than 0" if positive else f"at least {low:g}"
    c.add(node, key, f"must be a number {bound} and at most {high:g}")
    return None


def _bool(c: _Checker, node: Node, key: str) -> bool | None:
    if isinstance(node, ScalarNode) and node.tag == _BOOL:
        return bool(_SCALARS.construct_yaml_bool(node))
    c.add(node, key, f"must be true or false, not {_kind(node)}")
    return None


def _absolute_path(c: _Checker, node: Node, key: str) -> str | None:
    value = _string(c, node, key, limit=MAX_PATH)
    if value is not None and not value.startswith("/"):
        c.add(node, key, "must be an absolute path (starting with /)")
        return None
    return value


def _items(c: _Checker, node: Node, key: str, limit: int, *, empty: bool = True) -> Iterator[tuple[str, Node]]:
    if not isinstance(node, SequenceNode):
        c.add(node, key, f"must be a list, not {_kind(node)}")
        return
    if len(node.value) > limit:
        c.add(node, key, f"must have at most {limit} entries")
        return
    if not node.value and not empty:
        c.add(node, key, "must not be empty")
        return
    for i, item in enumerate(node.value):
        yield f"{key}[{i}]", item


def _command(c: _Checker, node: Node, key: str) -> list[str] | None:
    """A list of strings, or one string run by the shell."""
    if isinstance(node, ScalarNode) and node.tag == _STR:
        text = _string(c, node, key, limit=MAX_STRING, multiline=True)
        return [*SHELL, text] if text is not None else None
    if not isinstance(node, SequenceNode):
        c.add(node, key, f"must be a list of strings or a string, not {_kind(node)}")
        return None
    out: list[str] = []
    ok = True
    for path, item in _items(c, node, key, MAX_ARGS, empty=False):
        arg = _string(c, item, path, multiline=True, scalar=True)
        ok = ok and arg is not None
        out.append(arg or "")
    return out if ok and out else None


def _body(c: _Checker, node: Node, key: str) -> str | None:
    """A file's body: a string, or a list of lines (Backend.AI's form; joined with newlines)."""
    text: str | None
    if isinstance(node, SequenceNode):
        lines = [_string(c, item, path, limit=MAX_BODY, multiline=True, empty=True, scalar=True)
                 for path, item in _items(c, node, key, 65_536)]
        if any(line is None for line in lines):
            return None
        text = "".join(f"{line}\n" for line in lines)
    else:
        text = _string(c, node, key, limit=MAX_BODY, multiline=True, empty=True, scalar=True)
    if text is not None and len(text) > MAX_BODY:
        c.add(node, key, f"must be at most {MAX_BODY} characters")
        return None
    return text


def _mode(c: _Checker, node: Node, key: str) -> str | None:
    """File mode in octal digits: ``"644"`` (an unquoted 644 reads as the same digits)."""
    if isinstance(node, ScalarNode) and node.tag in (_STR, _INT) and MODE_RE.match(node.value):
        return str(node.value)
    c.add(node, key, "must be a file mode in octal digits, like \"644\"")
    return None


# -- actions ------------------------------------------------------------------------------------------
_ActionArgs = Callable[[_Checker, dict[str, Node], str], dict[str, Any]]
_ACTION_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # (allowed, required)
    "write_file": (("filename", "body", "mode", "append"), ("filename", "body")),
    "write_tempfile": (("body", "mode"), ("body",)),
    "run_command": (("command", "cwd", "echo"), ("command",)),
    "mkdir": (("path",), ("path",)),
    "log": (("message", "debug"), ("message",)),
}


def _action_args(c: _Checker, action: str, f: dict[str, Node], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if action == "write_file":
        out = {"filename": None, "body": None, "mode": "644", "append": False}
        if "filename" in f:
            out["filename"] = _absolute_path(c, f["filename"], f"{key}.filename")
        if "append" in f:
            out["append"] = _bool(c, f["append"], f"{key}.append")
    elif action == "write_tempfile":
        out = {"body": None, "mode": "600"}
    elif action == "run_command":
        out = {"command": None, "cwd": None}
        if "command" in f:
            out["command"] = _command(c, f["command"], f"{key}.command")
        if "cwd" in f and not _is_null(f["cwd"]):
            out["cwd"] = _absolute_path(c, f["cwd"], f"{key}.cwd")
        if "echo" in f:  # Backend.AI's; the command's output always goes to the container log
            _bool(c, f["echo"], f"{key}.echo")
    elif action == "mkdir":
        out = {"path": _absolute_path(c, f["path"], f"{key}.path") if "path" in f else None}
    elif action == "log":
        out = {"message": None, "debug": False}
        if "message" in f:
            out["message"] = _string(c, f["message"], f"{key}.message", limit=MAX_STRING, multiline=True,
                                     empty=True, scalar=True)
        if "debug" in f:
            out["debug"] = _bool(c, f["debug"], f"{key}.debug")
    if "body" in f:
        out["body"] = _body(c, f["body"], f"{key}.body")
    if "mode" in f:
        out["mode"] = _mode(c, f["mode"], f"{key}.mode")
    return out


def _action(c: _Checker, node: Node, key: str) -> PreStartAction | None:
    f = _fields(c, node, key, ("action", "args"), ("action", "args"))
    if f is None or "action" not in f:
        return None
    name = _string(c, f["action"], f"{key}.action", limit=64)
    if name is None:
        return None
    if name not in ACTIONS:
        c.add(f["action"], f"{key}.action", f"must be one of {', '.join(ACTIONS)}")
        return None
    if "args" not in f:
        return None
    allowed, required = _ACTION_KEYS[name]
    before = len(c.problems)
    args_node = f["args"]
    af = _fields(c, args_node, f"{key}.args", allowed, required)
    if af is None:
        return None
    args = _action_args(c, name, af, f"{key}.args")
    return PreStartAction(name, args) if len(c.problems) == before else None


# -- sections -----------------------------------------------------------------------------------------
def _health_check(c: _Checker, node: Node, key: str) -> HealthCheck | None:
    f = _fields(c, node, key, ("path", *HEALTH_DEFAULTS), ("path",))
    if f is None:
        return None
    before = len(c.problems)
    path = None
    if "path" in f:
        path = _string(c, f["path"], f"{key}.path", limit=2048)
        if path is not None and (not path.startswith("/") or any(ch.isspace() for ch in path)):
            c.add(f["path"], f"{key}.path", "must be a URL path starting with / (no spaces)")
    values: dict[str, Any] = dict(HEALTH_DEFAULTS)
    checks: dict[str, Callable[[Node, str], Any]] = {
        "interval": lambda n, k: _number(c, n, k, 0, 3600, positive=True),
        "max_retries": lambda n, k: _int(c, n, k, 1, 1000),
        "max_wait_time": lambda n, k: _number(c, n, k, 0, 3600, positive=True),
        "expected_status_code": lambda n, k: _int(c, n, k, 100, 599),
        "initial_delay": lambda n, k: _number(c, n, k, 0, MAX_SECONDS),
    }
    for name, check in checks.items():
        if name in f and not _is_null(f[name]):  # null: the default (Backend.AI's files write it)
            values[name] = check(f[name], f"{key}.{name}")
    if len(c.problems) != before or path is None:
        return None
    return HealthCheck(path=path, **values)


def _service(c: _Checker, node: Node, key: str) -> ServiceConfig | None:
    f = _fields(c, node, key, ("start_command", "port", "pre_start_actions", "health_check"),
                ("start_command", "port"))
    if f is None:
        return None
    before = len(c.problems)
    command = _command(c, f["start_command"], f"{key}.start_command") if "start_command" in f else None
    port = _int(c, f["port"], f"{key}.port", MIN_PORT, 65535) if "port" in f else None
    actions: list[PreStartAction] = []
    if "pre_start_actions" in f and not _is_null(f["pre_start_actions"]):
        for path, item in _items(c, f["pre_start_actions"], f"{key}.pre_start_actions", MAX_ACTIONS):
            action = _action(c, item, path)
            if action is not None:
                actions.append(action)
    health = None
    if "health_check" in f and not _is_null(f["health_check"]):
        health = _health_check(c, f["health_check"], f"{key}.health_check")
    if len(c.problems) != before or command is None or port is None:
        return None
    return ServiceConfig(start_command=command, port=port, pre_start_actions=actions, health_check=health)


_META_TEXT = ("title", "author", "task", "category", "architecture", "framework", "license", "version",
              "created", "last_modified")


def _metadata(c: _Checker, node: Node, key: str) -> ModelMetadata:
    f = _fields(c, node, key, (*_META_TEXT, "description", "label", "min_resource"))
    if f is None:
        return ModelMetadata()
    values: dict[str, Any] = {}
    for name in _META_TEXT:
        if name == "framework" and name in f and isinstance(f[name], SequenceNode):
            # a list of frameworks (some definitions write one): shown joined
            parts = [_string(c, item, path, limit=MAX_NAME, scalar=True)
                     for path, item in _items(c, f[name], f"{key}.{name}", MAX_LABELS)]
            values[name] = ", ".join(p for p in parts if p is not None)
        elif name in f and not _is_null(f[name]):
            values[name] = _string(c, f[name], f"{key}.{name}", limit=MAX_NAME * 4, empty=True, scalar=True)
    if "description" in f and not _is_null(f["description"]):
        values["description"] = _string(c, f["description"], f"{key}.description", limit=MAX_TEXT,
                                        multiline=True, empty=True)
    if "label" in f and not _is_null(f["label"]):
        labels = [_string(c, item, path, limit=MAX_NAME, scalar=True)
                  for path, item in _items(c, f["label"], f"{key}.label", MAX_LABELS)]
        values["label"] = [x for x in labels if x is not None]
    if "min_resource" in f and not _is_null(f["min_resource"]):
        slots: dict[str, str] = {}
        mr = f["min_resource"]
        if not isinstance(mr, MappingNode) or len(mr.value) > 32:
            c.add(mr, f"{key}.min_resource", "must be a mapping of at most 32 resource slots")
        else:
            for k, v in mr.value:
                amount = _string(c, v, f"{key}.min_resource.{k.value}", limit=64, scalar=True)
                if amount is not None:
                    slots[str(k.value)[:MAX_NAME]] = amount
        values["min_resource"] = slots
    return ModelMetadata(**values)


def _model(c: _Checker, node: Node, key: str) -> ModelConfig | None:
    f = _fields(c, node, key, ("name", "model_path", "service", "metadata"), ("name", "model_path"))
    if f is None:
        return None
    before = len(c.problems)
    name = _string(c, f["name"], f"{key}.name", limit=MAX_NAME) if "name" in f else None
    if name is not None and first_refused(name, frozenset({"Cf", "Co", "Cn", "Zl", "Zp"})):
        c.add(f["name"], f"{key}.name", "must not contain invisible or unassigned characters")
    model_path = _absolute_path(c, f["model_path"], f"{key}.model_path") if "model_path" in f else None
    service = None
    if "service" in f and not _is_null(f["service"]):
        service = _service(c, f["service"], f"{key}.service")
    metadata = ModelMetadata()
    if "metadata" in f and not _is_null(f["metadata"]):
        metadata = _metadata(c, f["metadata"], f"{key}.metadata")
    if len(c.problems) != before or name is None or model_path is None:
        return None
    return ModelConfig(name=name, model_path=model_path, service=service, metadata=metadata)


def _definition(c: _Checker, root: Node) -> ModelDefinition | None:
    if not isinstance(root, MappingNode):
        c.add(root, "", f"the file must be a mapping with a 'models' list, not {_kind(root)}")
        return None
    f = _fields(c, root, "", ("models",), ("models",))
    if not f or "models" not in f:
        return None
    models: list[ModelConfig] = []
    names: dict[str, int] = {}
    for path, item in _items(c, f["models"], "models", MAX_MODELS, empty=False):
        model = _model(c, item, path)
        if model is None:
            continue
        if model.name in names:
            c.add(item, f"{path}.name", f"duplicate model name {model.name!r} (also models[{names[model.name]}])")
        names.setdefault(model.name, len(models))
        models.append(model)
    return ModelDefinition(models=models) if models else None


# -- entry point --------------------------------------------------------------------------------------
def parse_definition(source: str | bytes, filename: str = "model-definition.yaml") -> ModelDefinition:
    """The definition in ``source`` (the file's bytes or text); ``filename`` names it in errors.
    Raises ``DefinitionError`` with every problem found."""
    c = _Checker()
    try:
        if isinstance(source, bytes):
            if len(source) > MAX_FILE_BYTES:
                c.add(None, "", f"the file is larger than {MAX_FILE_BYTES // (1 << 20)} MiB")
                raise _Abort
            try:
                source = source.decode("utf-8")
            except UnicodeDecodeError as e:
                c.add(None, "", f"the file is not UTF-8 text (byte {e.start})")
                raise _Abort from None
        elif len(source.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
            c.add(None, "", f"the file is larger than {MAX_FILE_BYTES // (1 << 20)} MiB")
            raise _Abort
        try:
            root = yaml.compose(source, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            problem = " ".join(str(x) for x in (e.context, e.problem) if x) or "invalid YAML"
            c.problems.append(DefinitionProblem(mark.line + 1 if mark else None, "", f"invalid YAML: {problem}"))
            raise _Abort from None
        except yaml.YAMLError as e:
            c.add(None, "", f"invalid YAML: {e}")
            raise _Abort from None
        if root is None:
            c.add(None, "", "the file is empty; it needs a 'models' list")
            raise _Abort
        _guard(root, c)
        if c.problems:
            raise _Abort
        result = _definition(c, root)
    except _Abort:
        result = None
    if c.problems or result is None:
        problems = sorted(c.problems, key=lambda p: (p.line or 0))
        first = problems[0] if problems else DefinitionProblem(None, "models", "no valid model")
        raise DefinitionError(filename, first.line, first.key, first.message, problems or [first])
    return result
