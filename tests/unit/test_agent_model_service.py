"""CreateKernels.model_service: a model service's replica as the agent takes it (strict), and
what it puts into the kernel's environment and kernel.json."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from workbay.agent.kernel import kernel_environ, runner_config
from workbay.agent.models import MAX_ACTIONS, MAX_COMMAND_ITEMS, CreateKernels


def spec(**kw):
    base = {"start_command": ["python3", "-m", "http.server", "8000"], "port": 8000,
            "pre_start_actions": [
                {"action": "mkdir", "args": {"path": "cache"}},
                {"action": "write_file", "args": {"filename": "cfg.json", "body": "{}"}},
                {"action": "write_tempfile", "args": {"body": "secret"}},
                {"action": "run_command", "args": {"command": ["true"], "cwd": "/tmp"}},
                {"action": "run_command", "args": {"command": "echo hi"}},
                {"action": "log", "args": {"message": "starting", "debug": True}}],
            "model_path": "/models", "definition_name": "my-model"}
    base.update(kw)
    return base


def request(model_service=None, **kw):
    base = {"session_id": "sess", "session_type": "inference", "image": "img:1", "preopen_ports": [8000],
            "kernels": [{"kernel_id": "k1", "resource_slots": {"cpu": "1", "mem": "1g"}}],
            "model_service": spec() if model_service is None else model_service}
    base.update(kw)
    return CreateKernels.model_validate(base)


def test_a_replica_request_is_accepted_with_defaults_filled_in():
    req = request()
    ms = req.model_service
    assert ms is not None and ms.port == 8000 and ms.start_command[0] == "python3"
    dumped = ms.model_dump(mode="json")
    assert dumped["pre_start_actions"][1] == {"action": "write_file", "args": {
        "filename": "cfg.json", "body": "{}", "mode": "644", "append": False}}
    assert dumped["pre_start_actions"][2]["args"] == {"body": "secret", "mode": "600"}
    assert dumped["pre_start_actions"][4]["args"] == {"command": "echo hi", "cwd": None}
    # what the agent saves and restarts from survives the round trip
    assert CreateKernels.model_validate(req.model_dump(mode="json")) == req


def test_other_sessions_have_no_model_service():
    req = CreateKernels.model_validate({"session_id": "s", "image": "i", "kernels": [
        {"kernel_id": "k1", "resource_slots": {"cpu": "1"}}]})
    assert req.model_service is None
    with pytest.raises(ValidationError, match="inference sessions only"):
        request(session_type="interactive")


@pytest.mark.parametrize("bad, where", [
    ({"port": 80}, "port"),
    ({"port": 70000}, "port"),
    ({"port": 9000}, "must be one of preopen_ports"),
    ({"start_command": []}, "start_command"),
    ({"start_command": "python3 server.py"}, "start_command"),
    ({"start_command": ["x"] * (MAX_COMMAND_ITEMS + 1)}, "start_command"),
    ({"start_command": ["a" * 5000]}, "start_command"),
    ({"start_command": ["a\x00b"]}, "start_command"),
    ({"pre_start_actions": [{"action": "rm", "args": {"path": "/"}}]}, "pre_start_actions"),
    ({"pre_start_actions": [{"action": "mkdir", "args": {}}]}, "path"),
    ({"pre_start_actions": [{"action": "mkdir", "args": {"path": "x", "mode": "777"}}]}, "mode"),
    ({"pre_start_actions": [{"action": "write_file", "args": {"filename": "f", "mode": "rw"}}]}, "mode"),
    ({"pre_start_actions": [{"action": "run_command", "args": {"command": []}}]}, "command"),
    ({"pre_start_actions": [{"action": "log", "args": {"message": "x"}}] * (MAX_ACTIONS + 1)},
     "pre_start_actions"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_replica_specs_are_refused(bad, where):
    with pytest.raises(ValidationError, match=where):
        request(model_service=spec(**bad))


def test_the_replica_reaches_the_runner_and_the_environment():
    req = request()
    k = req.kernels[0]
    ports = [{"name": "8000", "protocol": "preopen", "container_ports": [8000]}]
    env = kernel_environ(req, k, D(1), {}, ports)
    assert env["WORKBAY_MODEL_SERVICE_PORT"] == "8000" and env["WORKBAY_MODEL_PATH"] == "/models"
    assert env["BACKENDAI_PREOPEN_PORTS"] == "8000"
    cfg = runner_config(req, k, env, ports, {}, {"private_key": "p", "public_key": "q"})
    assert cfg["model_service"] == req.model_service.model_dump(mode="json")
    assert cfg["session_type"] == "inference"
    plain = CreateKernels.model_validate({**req.model_dump(mode="json"), "model_service": None})
    assert runner_config(plain, k, env, ports, {}, {})["model_service"] is None
    assert "WORKBAY_MODEL_SERVICE_PORT" not in kernel_environ(plain, k, D(1), {}, ports)
