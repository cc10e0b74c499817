"""web.serving_form: the service form, token expiry, rule dialog and example call read into the
manager's request bodies; the manager's field_errors placed at the form's fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workbay.web import serving_form as sf
from workbay.web.routes.serving import filter_services, runtime_list, service_row, status_tone


def _(message: str, **values) -> str:
    return message % values if values else message


def getter(values: dict[str, str]):
    return lambda name: values.get(name, "")


BASE = {"name": "my-svc", "model_folder": "f1", "runtime_variant": "custom", "replicas": "2",
        "model_mount_destination": "/models", "cluster_mode": "single-node", "cluster_size": "1", "rg": "default",
        "open_to_public": "on"}


def test_service_body_reads_every_field():
    problems, body = sf.service_body(getter(BASE), [("A", "1"), ("B", "")], ["f1", "d1"], {"d1": "/data"},
                                     "img:1", {"cpu": 1, "mem": "1024m"}, "64m", "proj", _)
    assert problems == {}
    assert body == {
        "name": "my-svc", "open_to_public": True, "runtime_variant": "custom", "desired_session_count": 2,
        "image": "img:1", "group": "proj", "cluster_mode": "single-node", "cluster_size": 1,
        "config": {"model": "f1", "model_mount_destination": "/models", "extra_mounts": {"d1": "/data"},
                   "environ": {"A": "1", "B": ""}, "scaling_group": "default",
                   "resources": {"cpu": 1, "mem": "1024m"}, "resource_opts": {"shmem": "64m"}}}


def test_service_body_defaults_and_the_command_variant():
    values = {**BASE, "model_mount_destination": "", "runtime_variant": "command", "startup_command": "serve --x",
              "model_definition_path": "defs/m.yaml", "open_to_public": "off"}
    problems, body = sf.service_body(getter(values), [], ["d2"], {}, "", {}, None, None, _)
    assert problems == {}
    assert body["startup_command"] == "serve --x" and body["open_to_public"] is False
    assert body["config"]["model_mount_destination"] == "/models"
    assert body["config"]["model_definition_path"] == "defs/m.yaml"
    assert body["config"]["extra_mounts"] == {"d2": "/home/work/d2"}
    assert "image" not in body and "group" not in body and "resource_opts" not in body["config"]
    custom = sf.service_body(getter({**BASE, "startup_command": "x"}), [], [], {}, "i", {}, None, None, _)[1]
    assert "startup_command" not in custom  # only the command variant takes one


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("replicas", "two", "replicas"), ("replicas", "-1", "replicas"), ("replicas", "1.5", "replicas"),
    ("cluster_size", "0", "cluster_size"), ("model_folder", "", "model_folder"),
    ("runtime_variant", "tgi", "runtime_variant"),
])
def test_service_body_problems_name_their_field(field, value, problem):
    problems, _body = sf.service_body(getter({**BASE, field: value}), [], [], {}, "i", {}, None, None, _)
    assert set(problems) == {problem}


def test_a_variable_set_twice_is_a_problem_and_the_model_folder_is_no_extra_mount():
    problems, body = sf.service_body(getter(BASE), [("A", "1"), ("A", "2")], ["f1"], {}, "i", {}, None, None, _)
    assert set(problems) == {"environ"} and "extra_mounts" not in body["config"]


@pytest.mark.parametrize(("path", "field"), [
    ("name", "name"), ("desired_session_count", "replicas"), ("config.model", "model_folder"),
    ("config.extra_mounts.abc", "mounts"), ("config.environ.FOO", "environ"), ("config.scaling_group", "rg"),
    ("config.resources.cpu", "cpu"), ("config.resources.cuda.shares", "acc"), ("group", "rg"),
    ("config.model_definition_path", "model_definition_path"), ("nothing", None),
])
def test_field_of(path, field):
    assert sf.field_of(path) == field


def test_split_field_errors():
    placed, unplaced = sf.split_field_errors({"field_errors": {"name": "too short", "config.model": "no folder",
                                                               "weird": "hm"}})
    assert placed == {"name": "too short", "model_folder": "no folder"} and unplaced == ["weird: hm"]
    assert sf.split_field_errors({"title": "x"}) == ({}, [])
    assert sf.split_field_errors(None) == ({}, [])


def test_form_values_of_a_service():
    service = {"name": "s", "is_public": True, "runtime_variant": "vllm", "desired_session_count": 3,
               "image": "img:2", "cluster_mode": "single-node", "cluster_size": 1,
               "model_folder": {"id": "f1", "name": "m"},
               "config": {"model": "f1", "model_mount_destination": "/m", "model_definition_path": None,
                          "extra_mounts": {"d1": "/data", "d2": ""}, "environ": {"A": "1"},
                          "resource_group": "rg1", "resources": {"cpu": "2", "mem": "2147483648", "cuda.shares": "0.5"},
                          "resource_opts": {"shmem": "64m"}}}
    values, env, mounts, aliases = sf.form_values(service)
    assert values["open_to_public"] == "on" and values["model_folder"] == "f1" and values["replicas"] == "3"
    assert values["model_mount_destination"] == "/m" and values["model_definition_path"] == ""
    assert values["image_manual"] == "img:2" and values["rg"] == "rg1"
    assert values["cpu"] == "2" and values["mem"] == "2" and values["shmem"] == "0.0625"
    assert (values["acc_slot"], values["acc"]) == ("cuda.shares", "0.5")
    assert env == [("A", "1")] and mounts == ["d1", "d2"] and aliases == {"d1": "/data"}
    legacy = sf.form_values({"config": {"extra_mounts": [{"folder_id": "x", "mount_destination": "/x"}]}})
    assert legacy[2] == ["x"] and legacy[3] == {"x": "/x"}


def test_token_request():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert sf.token_request("24h", "", now, _) == ({"duration": "24h"}, None)
    assert sf.token_request("1h", "", now, _) == ({"duration": "1h"}, None)
    assert sf.token_request("7d", "", now, _) == ({"duration": "7d"}, None)
    later = now + timedelta(days=2)
    assert sf.token_request("custom", later.isoformat(), now, _) == ({"valid_until": int(later.timestamp())}, None)
    assert sf.token_request("custom", "2026-01-03T00:00", now, _)[0] == {
        "valid_until": int(datetime(2026, 1, 3, tzinfo=UTC).timestamp())}  # no zone: UTC
    assert sf.token_request("custom", (now - timedelta(seconds=1)).isoformat(), now, _)[0] is None
    assert sf.token_request("custom", "soon", now, _)[0] is None
    assert sf.token_request("forever", "", now, _)[0] is None


def test_rule_body():
    good = {"metric_source": "kernel", "metric_name": "cpu_util", "comparator": "ge", "threshold": "80.50",
            "step_size": "-2", "cooldown_seconds": "60", "min_replicas": "", "max_replicas": "5"}
    assert sf.rule_body(getter(good), _) == ({}, {
        "metric_source": "kernel", "metric_name": "cpu_util", "comparator": "ge", "threshold": "80.5",
        "step_size": -2, "cooldown_seconds": 60, "min_replicas": None, "max_replicas": 5})
    bad = {"metric_source": "disk", "metric_name": "", "comparator": "==", "threshold": "inf",
           "step_size": "x", "cooldown_seconds": "", "min_replicas": "1.5", "max_replicas": "z"}
    problems, _body = sf.rule_body(getter(bad), _)
    assert set(problems) == set(bad)
    assert sf.rule_values({"metric_name": "m", "min_replicas": None, "threshold": "1"})["min_replicas"] == ""


def test_curl_example_works_as_shown():
    private = sf.curl_example("http://h:1/svc/", "tok", False)
    assert private.splitlines()[0] == "export API_TOKEN=tok"
    assert '-H "Authorization: BackendAI $API_TOKEN"' in private and private.rstrip().endswith("http://h:1/svc/")
    assert "<token>" in sf.curl_example("http://h:1/svc/", None, False)
    public = sf.curl_example("http://h:1/svc/", None, True)
    assert "API_TOKEN" not in public and "Authorization" not in public


def test_list_helpers():
    items = [{"status": s} for s in ("PROVISIONING", "HEALTHY", "DEGRADED", "UNHEALTHY", "TERMINATING", "DESTROYED")]
    assert [i["status"] for i in filter_services(items, "")] == [
        "PROVISIONING", "HEALTHY", "DEGRADED", "UNHEALTHY", "TERMINATING"]
    assert filter_services(items, "all") == items
    assert filter_services(items, "HEALTHY") == [{"status": "HEALTHY"}]
    assert [status_tone(s) for s in ("HEALTHY", "UNHEALTHY", "DEGRADED", "PROVISIONING", "DESTROYED")] == [
        "ok", "error", "busy", "busy", "off"]
    row = service_row({"endpoint_id": "e", "service_endpoint": "http://x/", "is_public": True,
                       "desired_session_count": 2, "healthy_route_count": 1, "model_folder": {"name": "m"},
                       "image": "r/ns/img:1", "allowed_actions": ["delete"]})
    assert (row["id"], row["url"], row["public"], row["desired"], row["healthy"]) == ("e", "http://x/", True, 2, 1)
    assert row["model_name"] == "m" and row["image_short"] == "img:1" and row["actions"] == {"delete"}


def test_runtime_list_keeps_every_variant_in_order():
    got = runtime_list({"runtimes": [{"name": "vllm", "label": "vLLM", "port": 8000, "health_path": "/health",
                                      "start_command": ["vllm", "serve"], "needs_definition": False}]})
    assert [r["name"] for r in got] == list(sf.RUNTIME_VARIANTS)
    vllm = next(r for r in got if r["name"] == "vllm")
    assert vllm["defaults"] == {"start_command": ["vllm", "serve"], "port": 8000, "health_path": "/health"}
    assert runtime_list([])[0]["name"] == "custom"
