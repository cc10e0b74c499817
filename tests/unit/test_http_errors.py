"""Problem-details bodies and JSON-body parsing shared by every service."""

from __future__ import annotations

import json

import pytest

from workbay.common import errors
from workbay.common.http import loads_object, problem_response, validation_error


def test_problem_body_has_type_title_and_optional_members():
    err = errors.ObjectNotFound("no such thing", object_name="session", data={"id": 1})
    assert err.body() == {"type": "https://api.backend.ai/probs/object-not-found",
                          "title": "No such session.", "msg": "no such thing", "data": {"id": 1}}
    assert errors.AuthFailed().body() == {"type": "https://api.backend.ai/probs/auth-failed",
                                          "title": "Credential/signature mismatch."}
    # extension members sit at the top level, the standard members cannot be overridden
    extra = errors.GenericBadRequest("m", extra={"error_msg": "m", "type": "x"}).body()
    assert extra["error_msg"] == "m" and extra["type"].endswith("/generic-bad-request")


@pytest.mark.parametrize("cls, status, kind", [
    (errors.AuthFailed, 401, "auth-failed"), (errors.PasswordExpired, 401, "password-expired"),
    (errors.InvalidAuthParameters, 400, "invalid-auth-params"),
    (errors.InvalidAPIParameters, 400, "invalid-api-params"),
    (errors.GenericBadRequest, 400, "generic-bad-request"),
    (errors.AlreadyExists, 400, "generic-bad-request"),
    (errors.GenericForbidden, 403, "generic-forbidden"),
    (errors.InsufficientPrivilege, 403, "insufficient-privilege"),
    (errors.URLNotFound, 404, "url-not-found"), (errors.ObjectNotFound, 404, "object-not-found"),
    (errors.MethodNotAllowed, 405, "method-not-allowed"),
    (errors.RateLimitExceeded, 429, "rate-limit-exceeded"),
    (errors.ServiceUnavailable, 503, "service-unavailable"),
    (errors.InternalServerError, 500, "internal-server-error"),
])
def test_error_kinds_and_statuses(cls, status, kind):
    err = cls()
    assert err.status == status and err.body()["type"] == errors.PROBLEM_BASE + kind
    assert err.body()["title"]


def test_problem_response_is_problem_json_and_survives_odd_text():
    resp = problem_response(errors.InvalidAPIParameters("bad \ud800 input", headers={"X-A": "1"}))
    assert resp.status_code == 400 and resp.headers["x-a"] == "1"
    assert resp.headers["content-type"] == "application/problem+json"
    assert json.loads(resp.body)["msg"] == "bad \ud800 input"


def test_validation_error_names_fields():
    err = validation_error([{"loc": ("body", "email"), "msg": "bad"}, {"loc": ("query",), "msg": "x"}])
    assert err.data == {"email": "bad", "_": "x"} and err.msg == "email: bad; _: x"


@pytest.mark.parametrize("body, msg", [
    (b"{", "Malformed JSON body."), (b"[1]", "The JSON body must be an object."),
    (b'"x"', "The JSON body must be an object."),
    (b'{"a": "\\ud800"}', "The JSON body holds text that is not valid Unicode."),
])
def test_loads_object_refuses(body, msg):
    with pytest.raises(errors.InvalidAPIParameters) as e:
        loads_object(body)
    assert e.value.msg == msg


def test_loads_object_accepts_objects():
    assert loads_object(b'{"a": [1, "\\u00e9"]}') == {"a": [1, "é"]}
