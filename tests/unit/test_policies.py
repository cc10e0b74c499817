"""Resource-policy validation (AD-1): parse_policy and slot maps."""

from __future__ import annotations

import pytest

from workbay.common.errors import InvalidAPIParameters
from workbay.manager.services.policies import parse_policy
from workbay.manager.services.slots import check_slots

KEYPAIR_FIELDS = {"total_resource_slots", "max_containers_per_session", "max_session_lifetime",
                  "max_concurrent_sessions", "max_concurrent_sftp_sessions",
                  "max_pending_session_count", "idle_timeout", "allowed_folder_hosts"}
USER_FIELDS = {"max_folder_count", "max_quota_scope_size", "max_session_count_per_model_session",
               "max_customized_image_count"}
PROJECT_FIELDS = {"max_folder_count", "max_quota_scope_size", "max_network_count"}


@pytest.mark.parametrize("kind, fields", [
    ("keypair", KEYPAIR_FIELDS), ("user", USER_FIELDS), ("project", PROJECT_FIELDS)])
def test_defaults_cover_every_ad1_field(kind, fields):
    name, out = parse_policy(kind, {"name": "p1"}, partial=False)
    assert name == "p1" and set(out) == fields


def test_keypair_policy_full():
    name, out = parse_policy("keypair", {
        "name": "gpu.team-1", "total_resource_slots": {"cpu": 8, "mem": "34359738368",
                                                       "cuda.shares": "2.5", "cuda.device": "Infinity"},
        "max_containers_per_session": 4, "max_session_lifetime": 86400,
        "max_concurrent_sessions": 3, "max_concurrent_sftp_sessions": 2,
        "max_pending_session_count": 5, "idle_timeout": 1800,
        "allowed_folder_hosts": {"local:volume1": ["create-vfolder", "mount-in-session"]},
    }, partial=False)
    assert name == "gpu.team-1"
    assert out["total_resource_slots"] == {"cpu": "8", "mem": "34359738368", "cuda.shares": "2.5",
                                           "cuda.device": "Infinity"}
    assert out["max_pending_session_count"] == 5
    assert out["allowed_folder_hosts"] == {"local:volume1": ["create-vfolder", "mount-in-session"]}


@pytest.mark.parametrize("kind, body, field", [
    ("keypair", {"name": "", "idle_timeout": 1}, "name"),
    ("keypair", {"idle_timeout": 1}, "name"),
    ("keypair", {"name": "has space"}, "name"),
    ("keypair", {"name": "-leading"}, "name"),
    ("keypair", {"name": "x" * 257}, "name"),
    ("keypair", {"name": "p", "max_containers_per_session": 0}, "max_containers_per_session"),
    ("keypair", {"name": "p", "max_session_lifetime": -1}, "max_session_lifetime"),
    ("keypair", {"name": "p", "max_concurrent_sessions": 2**31}, "max_concurrent_sessions"),
    ("keypair", {"name": "p", "idle_timeout": "soon"}, "idle_timeout"),
    ("keypair", {"name": "p", "total_resource_slots": {"cpu": -1}}, "total_resource_slots"),
    ("keypair", {"name": "p", "allowed_folder_hosts": {"h": ["fly"]}}, "allowed_folder_hosts"),
    ("keypair", {"name": "p", "bogus": 1}, "bogus"),
    ("user", {"name": "p", "max_quota_scope_size": -2}, "max_quota_scope_size"),
    ("user", {"name": "p", "max_quota_scope_size": 2**63}, "max_quota_scope_size"),
    ("user", {"name": "p", "max_network_count": 1}, "max_network_count"),       # a project field
    ("project", {"name": "p", "max_network_count": -1}, "max_network_count"),
])
def test_invalid_policies_name_the_field(kind, body, field):
    with pytest.raises(InvalidAPIParameters) as e:
        parse_policy(kind, body, partial=False)
    assert e.value.status == 400 and field in e.value.data


def test_partial_returns_only_the_given_fields_and_keeps_the_name():
    name, out = parse_policy("keypair", {"idle_timeout": 60, "max_pending_session_count": None},
                             partial=True, current_name="p")
    assert name is None and out == {"idle_timeout": 60, "max_pending_session_count": None}
    assert parse_policy("user", {"name": "p", "max_folder_count": 3}, partial=True,
                        current_name="p")[1] == {"max_folder_count": 3}
    with pytest.raises(InvalidAPIParameters) as e:
        parse_policy("user", {"name": "renamed"}, partial=True, current_name="p")
    assert e.value.data == {"name": "read-only"}
    with pytest.raises(InvalidAPIParameters):
        parse_policy("keypair", {"idle_timeout": None}, partial=True, current_name="p")


@pytest.mark.parametrize("slots, expected", [
    ({}, {}),
    ({"cpu": 1, "mem": "1073741824"}, {"cpu": "1", "mem": "1073741824"}),
    ({"cuda.shares": 0.5}, {"cuda.shares": "0.5"}),
    ({"cuda.device": "inf"}, {"cuda.device": "Infinity"}),
    ({"cpu": " 2 "}, {"cpu": "2"}),
])
def test_check_slots_normalizes(slots, expected):
    assert check_slots(slots) == expected


@pytest.mark.parametrize("slots", [
    {"cpu": -1}, {"cpu": "NaN"}, {"cpu": "-Infinity"}, {"cpu": "lots"}, {"cpu": True},
    {"cpu": None}, {"cpu": [1]}, {"": 1}, {"CPU": 1}, {"cuda..shares": 1}, {"x" * 65: 1},
])
def test_check_slots_refuses(slots):
    with pytest.raises(ValueError):
        check_slots(slots)
