"""The shared request-body parsing: the JSON depth scanner, strict JSON, HTTPException types."""

from __future__ import annotations

import pytest

from workbay.common.errors import InvalidAPIParameters
from workbay.common.http import MAX_JSON_DEPTH, http_exception_error, json_too_deep, loads_object


@pytest.mark.parametrize("body,deep", [
    (b"[" * 50_000, True),
    (b"[" * (MAX_JSON_DEPTH + 1), True),
    (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, False),
    (b"[]" * 100_000, False),
    (b"[]" * 100_000 + b"{" * (MAX_JSON_DEPTH + 1), True),
    (b'["' + b"[" * 500 + b'"]', False),                 # brackets inside a string
    (b'["\\"' + b"[" * 500 + b'"]', False),              # ... after an escaped quote
    (b'["\\\\"' + b"[" * 500, True),                     # the string ended at \\"
    (b'"' + b"[" * 500, False),                          # an unterminated string runs to the end
    ('{"ü": "' + "[" * 500 + '"}', False),               # text, not bytes
])
def test_json_too_deep(body, deep):
    assert json_too_deep(body) is deep


@pytest.mark.parametrize("body,says", [
    (b"[" * 50_000, "nested too deeply"), (b'{"a": NaN}', "Malformed"), (b'{"a": Infinity}', "Malformed"),
    (b'{"a": -Infinity}', "Malformed"), (b'{"a": 1e400}', "out of range"), (b'{"a": -1e999}', "out of range"), (b"[1]", "must be an object"), (b'{"a": "\\ud800"}', "not valid Unicode"),
])
def test_loads_object_refuses(body, says):
    with pytest.raises(InvalidAPIParameters, match=says):
        loads_object(body)


def test_framework_http_errors_keep_a_4xx_type():
    assert http_exception_error(400, "There was an error parsing the body").kind == "invalid-api-params"
    assert http_exception_error(413, None).kind == "request-too-large"
    assert http_exception_error(404, None).kind == "url-not-found"
    err = http_exception_error(409, "busy")
    assert err.status == 409 and err.kind == "generic-bad-request"
    assert http_exception_error(502, "x").kind == "internal-server-error"
