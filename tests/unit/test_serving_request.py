"""The model-service requests (services/serving_request.py): Backend.AI's aliases and nulls, the
name rule, durations and token lifetimes, autoscaling rule fields, replica bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from workbay.manager.services.serving_info import ServiceStats, TokenInfo, service_actions
from workbay.manager.services.serving_request import (
    CreateService,
    NewRule,
    RuleFields,
    TokenRequest,
    UpdateService,
    normalize_comparator,
    parse_duration,
    rule_bounds_problem,
    service_name_problem,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_backendai_body_nulls_mean_default():
    req = CreateService.model_validate({
        "name": "my-svc", "desired_session_count": 2, "image": "img", "arch": None, "group": None,
        "domain": None, "cluster_size": None, "cluster_mode": None, "tag": None, "startup_command": None,
        "bootstrap_script": None, "owner_access_key": None, "open_to_public": None,
        "config": {"model": "m", "model_version": None, "model_mount_destination": None, "environ": None,
                   "scaling_group": "rg", "resources": None, "resource_opts": None}})
    assert req.desired_replicas == 2 and req.cluster_size == 1 and req.open_to_public is False
    assert req.config.model_mount_destination == "/models" and req.config.environ == {}
    assert req.config.resource_group == "rg" and req.config.resource_opts == {}
    assert req.runtime_variant == "custom"
    aliased = CreateService.model_validate({"service_name": "abcd", "lang": "img", "config": {"model": "m"}})
    assert aliased.name == "abcd" and aliased.image == "img" and aliased.desired_replicas == 1


@pytest.mark.parametrize("name,ok", [("abcd", True), ("a" * 24, True), ("a_b-c1", True), ("abc", False),
                                     ("a" * 25, False), ("bad name", False), ("ünï-code", False), ("a/bc", False)])
def test_name_rule(name, ok):
    assert (service_name_problem(name) is None) is ok
    if not ok:
        with pytest.raises(ValidationError):
            CreateService.model_validate({"name": name, "image": "i", "config": {"model": "m"}})


@pytest.mark.parametrize("body", [
    {"config": {"model": "m", "model_mount_destination": "relative"}},
    {"config": {"model": "m", "model_mount_destination": "/a/../etc"}},
    {"config": {"model": "m", "environ": {"WORKBAY_X": "1"}}},
    {"config": {"model": ""}},
    {"config": {}},
    {"desired_session_count": -1, "config": {"model": "m"}},
    {"runtime_variant": "tgi", "config": {"model": "m"}},
    {"callback_url": "http://127.0.0.1/x", "config": {"model": "m"}},
])
def test_bad_create_bodies(body):
    with pytest.raises(ValidationError):
        CreateService.model_validate({"name": "good", "image": "i", **body})


def test_update_keeps_what_is_not_sent():
    patch = UpdateService.model_validate({"desired_session_count": 3, "config": {"environ": {"A": "1"}},
                                          "image": None})
    assert patch.model_dump(exclude_unset=True, exclude_none=True, exclude={"config"}) == {"desired_replicas": 3}
    assert patch.config.model_dump(exclude_unset=True, exclude_none=True) == {"environ": {"A": "1"}}


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800),
                                          ("1w", 604800), (" 3h ", 10800)])
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0", "1y", "h", "-1h", "1.5h", "9" * 12])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_token_lifetimes():
    assert TokenRequest().expires_at(NOW) == NOW + timedelta(hours=24)
    assert TokenRequest(duration="2h").expires_at(NOW) == NOW + timedelta(hours=2)
    until = NOW + timedelta(days=3)
    assert TokenRequest(valid_until=until.timestamp()).expires_at(NOW) == until
    for req, field in ((TokenRequest(duration="400d"), "duration"),
                       (TokenRequest(valid_until=(NOW - timedelta(seconds=1)).timestamp()), "valid_until"),
                       (TokenRequest(valid_until=1e20), "valid_until")):
        with pytest.raises(ValueError, match=f"^{field}:"):
            req.expires_at(NOW)
    with pytest.raises(ValidationError):
        TokenRequest(duration="soon")


@pytest.mark.parametrize("given,want", [("<", "lt"), ("<=", "le"), (">", "gt"), (">=", "ge"), ("LESS_THAN", "lt"),
                                        ("greater_than_or_equal", "ge"), ("GE", "ge"), ("lt", "lt")])
def test_comparators(given, want):
    assert normalize_comparator(given) == want


def test_rules():
    rule = NewRule.model_validate({"metricSource": "INFERENCE_FRAMEWORK", "metric_name": "rps", "comparator": ">",
                                   "threshold": 1.50, "step_size": -2})
    assert (rule.metric_source, rule.comparator, rule.threshold, rule.cooldown_seconds) == (
        "inference-framework", "gt", "1.5", 300)
    base = {"metric_source": "kernel", "metric_name": "cpu", "comparator": "lt", "threshold": "1", "step_size": 1}
    for field, value in (("metric_source", "gpu"), ("metric_name", " "), ("metric_name", "x" * 257),
                         ("comparator", "=="), ("threshold", "NaN"), ("threshold", "ten"), ("step_size", 0),
                         ("cooldown_seconds", -1), ("min_replicas", -1), ("unknown", 1)):
        with pytest.raises(ValidationError) as e:
            NewRule.model_validate({**base, field: value})
        assert e.value.errors()[0]["loc"][0] in (field, "metricName"), field
    with pytest.raises(ValidationError):
        NewRule.model_validate({k: v for k, v in base.items() if k != "threshold"})
    assert RuleFields.model_validate({"threshold": "2"}).model_dump(exclude_unset=True) == {"threshold": "2"}


def test_rule_bounds():
    assert rule_bounds_problem(1, 3, 10) is None and rule_bounds_problem(None, None, 0) is None
    assert rule_bounds_problem(4, 3, 10)[0] == "min_replicas"
    assert rule_bounds_problem(1, 11, 10)[0] == "max_replicas"
    assert rule_bounds_problem(11, None, 10)[0] == "min_replicas"


def test_stats_and_actions_and_token_status():
    assert ServiceStats.of({"rps": 1, "requests": "x", "p95_ms": 2.5}).as_json() == {
        "rps": 1.0, "in_flight": 0, "requests": 0, "errors": 0, "p50_ms": 0.0, "p95_ms": 2.5}
    assert "delete" in service_actions("HEALTHY") and service_actions("TERMINATING") == ("logs",)

    class Row:
        id, token, created_at, revoked_at = None, "t", NOW, None
        expires_at = NOW + timedelta(hours=1)
    assert TokenInfo.of(Row(), NOW).status == "valid"
    assert TokenInfo.of(Row(), NOW + timedelta(hours=2)).status == "expired"
    Row.revoked_at = NOW
    assert TokenInfo.of(Row(), NOW).status == "revoked"
