"""The services SDK's pure parts (the create/update body, token and rule bodies, the SSE reader)
and ``workbay service validate`` against a stand-in manager that streams a dry run (the real one
needs an agent and containers): lines print as they come, the verdict decides the exit code."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from click.testing import CliRunner

from workbay.client import cli_service, services
from workbay.client.cli import main
from workbay.client.sdk import Client


def test_service_body_has_only_the_given_fields_in_wire_names():
    assert services.service_body(services.ServiceFields()) == {}
    body = services.service_body(services.ServiceFields(
        name="svc1", model_folder="llama", runtime_variant="vllm", mount_destination="/m", definition_path="d.yaml",
        extra_mounts={"data": "/data"}, replicas=0, image="img", resource_group="rg", resources={"cpu": "2"},
        shmem="1g", environ={"A": "1"}, public=False, project="p", owner_access_key="AK", startup_command="run"))
    assert body == {"name": "svc1", "desired_session_count": 0, "image": "img", "group": "p", "owner_access_key": "AK",
                    "open_to_public": False, "runtime_variant": "vllm", "startup_command": "run",
                    "config": {"model": "llama", "model_mount_destination": "/m", "model_definition_path": "d.yaml",
                               "extra_mounts": {"data": "/data"}, "environ": {"A": "1"}, "scaling_group": "rg",
                               "resources": {"cpu": "2"}, "resource_opts": {"shmem": "1g"}}}
    assert services.service_body(services.ServiceFields(replicas=2)) == {"desired_session_count": 2}


def test_token_and_rule_bodies():
    assert services.token_body() == {}
    assert services.token_body("1h") == {"duration": "1h"}
    when = datetime(2030, 1, 2, tzinfo=UTC)
    assert services.token_body(None, when) == {"valid_until": int(when.timestamp())}
    rule = services.RuleFields("endpoint", "rps", ">=", "5", 1, max_replicas=4)
    assert services.rule_body(rule) == {"metric_source": "endpoint", "metric_name": "rps", "comparator": "ge",
                                        "threshold": "5", "step_size": 1, "max_replicas": 4}
    for written, wire in (("<", "lt"), ("≤", "le"), ("gt", "gt"), (" > ", "gt")):
        assert services.rule_body(services.RuleFields("kernel", "cpu_util", written, "1", -1))["comparator"] == wire
    with pytest.raises(ValueError, match="comparator"):
        services.rule_body(services.RuleFields("kernel", "cpu_util", "=", "1", 1))


async def _lines(*items: str):
    for item in items:
        yield item


async def test_sse_lines_parse_events_and_stop_after_the_verdict():
    got = [e async for e in services.sse_lines(_lines(
        ": keep-alive", "", "event: step", 'data: {"step": "scheduling", "status": "running"}', "",
        "event: log", 'data: {"line": "hello"}', "", "data: plain text", "",
        "event: verdict", 'data: {"ok": true, "message": "healthy"}', "",
        "event: log", 'data: {"line": "never read"}', ""))]
    assert got == [("step", {"step": "scheduling", "status": "running"}), ("log", {"line": "hello"}),
                   ("message", {"line": "plain text"}), ("verdict", {"ok": True, "message": "healthy"})]


def _stand_in(verdict: dict, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/services/_/validate":
            body = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in (
                ("step", {"step": "scheduling", "status": "done"}), ("log", {"line": "model server: loading"}),
                ("log", {"line": "model server: listening on 8000"}), ("verdict", verdict)))
            return httpx.Response(200, text=body, headers={"Content-Type": "text/event-stream"})
        return httpx.Response(404, json={"title": "not here"})
    return httpx.MockTransport(handle)


@pytest.mark.parametrize(("verdict", "code", "says"), [
    ({"ok": True, "message": "the replica answered its health check"}, 0, "✓ Healthy"),
    ({"ok": False, "step": "pre-start", "message": "start command exited with 0"}, 1, "✗ Failed at pre-start"),
])
def test_validate_streams_the_log_and_exits_by_the_verdict(monkeypatch, verdict, code, says):
    seen: list[httpx.Request] = []
    monkeypatch.setattr(cli_service, "make_client", lambda: Client("http://manager.test", "AK", "SK",
                                                                   transport=_stand_in(verdict, seen)))
    result = CliRunner().invoke(main, ["service", "validate", "--model-folder", "llama", "--image", "img",
                                       "--runtime", "custom", "-c", "cpu=1"])
    assert result.exit_code == code, result.output
    assert "model server: loading" in result.output and "model server: listening on 8000" in result.output
    assert says in result.output and verdict["message"] in " ".join(result.output.split())
    request = seen[0]
    assert request.method == "POST" and request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith("BackendAI signMethod=")
    assert json.loads(request.content) == {"name": "validate", "image": "img", "runtime_variant": "custom",
                                           "config": {"model": "llama", "resources": {"cpu": "1"}}}


def test_validate_json_collects_the_events(monkeypatch):
    seen: list[httpx.Request] = []
    monkeypatch.setattr(cli_service, "make_client", lambda: Client("http://manager.test", "AK", "SK",
                                                                   transport=_stand_in({"ok": False, "message": "x"}, seen)))
    result = CliRunner().invoke(main, ["service", "validate", "--name", "mine", "--model-folder", "m", "--image", "i",
                                       "--json"])
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert [e["event"] for e in out["events"]] == ["step", "log", "log", "verdict"]
    assert out["verdict"] == {"ok": False, "message": "x"} and json.loads(seen[0].content)["name"] == "mine"
