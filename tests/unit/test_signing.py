"""Request signing exactly as docs/backendai-api.md §1.2 describes it.

The two vectors below were computed by hand (hashlib/hmac, step by step) and by the official
``backend.ai-client`` 23.9.10 ``generate_signature``; both agree.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workbay.common import signing

SECRET = "0123456789abcdefghijABCDEFGHIJ0123456789"
ACCESS = "AKIATESTTESTTESTTEST"
DATE = "2024-01-02T03:04:05.678901+00:00"
HOST = "127.0.0.1:8091"
VECTOR_SHA256 = "fc9ef466ff156c9b0c834037d79f3f2b654e738646d222a31a29feb437cb5f80"
VECTOR_SHA512 = ("16410c9123733c33e9b8703595a3a97b8e140d13f2431124d86b8c49c3d56a82"
                 "b0d64836356cc4c2e5cd61fca4b1cbf2c071fe2f28c35f5d53923364056d5987")


def test_string_to_sign_is_seven_lines_without_trailing_newline():
    sts = signing.string_to_sign("get", "/auth/test?echo=hi%20there", DATE, HOST,
                                 "Text/Plain; charset=utf-8", "v7.20230615")
    assert sts == (
        "GET\n"
        "/auth/test?echo=hi%20there\n"
        "2024-01-02T03:04:05.678901+00:00\n"
        "host:127.0.0.1:8091\n"
        "content-type:text/plain\n"
        "x-backendai-version:v7.20230615\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert not sts.endswith("\n")


def test_empty_body_hash_follows_the_sign_hash():
    assert signing.EMPTY_BODY_HASH == hashlib.sha256(b"").hexdigest()
    assert signing.string_to_sign("GET", "/", DATE, HOST, "", "v7.20230615", "sha512").endswith(
        "\n" + hashlib.sha512(b"").hexdigest())


def test_signature_matches_the_hand_checked_vectors():
    assert signing.signature(SECRET, "GET", "/auth/test?echo=hi%20there", DATE, HOST,
                             "text/plain", "v7.20230615") == VECTOR_SHA256
    assert signing.signature(SECRET, "POST", "/auth/test", DATE, HOST, "application/json",
                             "v7.20230615", "sha512") == VECTOR_SHA512


def test_key_chain_uses_the_utc_day_then_the_host():
    # 23:30 at UTC-05:00 is already the next day in UTC: the key uses the UTC day.
    local = datetime(2024, 1, 2, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    k1 = hmac.new(SECRET.encode(), b"20240103", hashlib.sha256).digest()
    k2 = hmac.new(k1, HOST.encode(), hashlib.sha256).digest()
    assert signing.derive_key(SECRET, local, HOST) == k2
    assert signing.derive_key(SECRET, local, "other:1") != k2
    k1_512 = hmac.new(SECRET.encode(), b"20240103", hashlib.sha512).digest()
    assert signing.derive_key(SECRET, local, HOST, "sha512") == hmac.new(
        k1_512, HOST.encode(), hashlib.sha512).digest()


@pytest.mark.parametrize("change", ["method", "path", "query", "date", "host", "ctype", "version",
                                    "secret"])
def test_every_signed_part_changes_the_signature(change):
    base = dict(secret_key=SECRET, method="GET", path_and_query="/auth/test?echo=hi%20there",
                date_header=DATE, host=HOST, content_type="text/plain", api_version="v7.20230615")
    altered = dict(base)
    altered.update({
        "method": {"method": "POST"}, "path": {"path_and_query": "/auth?echo=hi%20there"},
        "query": {"path_and_query": "/auth/test?echo=hi+there"},
        "date": {"date_header": "2024-01-02T03:04:05.678902+00:00"}, "host": {"host": "127.0.0.1"},
        "ctype": {"content_type": "application/json"}, "version": {"api_version": "v6.20220615"},
        "secret": {"secret_key": SECRET[:-1] + "X"},
    }[change])
    assert signing.signature(**base) != signing.signature(**altered)


def test_signature_refuses_hashes_without_a_fixed_digest():
    with pytest.raises(ValueError):
        signing.signature(SECRET, "GET", "/", DATE, HOST, "", "v7.20230615", "shake_128")


def test_sign_headers_produce_what_the_official_client_sends():
    now = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    headers = signing.sign_headers(ACCESS, SECRET, "GET", "/auth/test?echo=hi%20there", HOST,
                                   "text/plain", "v7.20230615", now=now)
    assert headers == {
        "Date": DATE,
        "X-BackendAI-Version": "v7.20230615",
        "Content-Type": "text/plain",
        "Authorization": f"BackendAI signMethod=HMAC-SHA256, credential={ACCESS}:{VECTOR_SHA256}",
    }
    assert signing.parse_authorization(headers["Authorization"]) == ("sha256", ACCESS, VECTOR_SHA256)


def test_bare_mime():
    assert signing.bare_mime("multipart/form-data; boundary=abc") == "multipart/form-data"
    assert signing.bare_mime(" Application/JSON ") == "application/json"
    assert signing.bare_mime(None) == ""


# -- Authorization header ---------------------------------------------------------------------
@pytest.mark.parametrize("header, expected", [
    (f"BackendAI signMethod=HMAC-SHA256, credential={ACCESS}:abc", ("sha256", ACCESS, "abc")),
    (f"Sorna signMethod=HMAC-SHA256, credential={ACCESS}:abc", ("sha256", ACCESS, "abc")),
    (f"BackendAI   signmethod = hmac-sha512 ,CREDENTIAL={ACCESS}:a:b", ("sha512", ACCESS, "a:b")),
    (f"BackendAI credential={ACCESS}:abc, signMethod=HMAC-MD5", ("md5", ACCESS, "abc")),
    (f"  BackendAI signMethod=HMAC-SHA3_256, credential={ACCESS}:abc  ", ("sha3_256", ACCESS, "abc")),
])
def test_parse_authorization_accepts(header, expected):
    assert signing.parse_authorization(header) == expected


@pytest.mark.parametrize("header", [
    "",
    "BackendAI",
    "BackendAI ",
    "Bearer abc.def.ghi",
    "backendai signMethod=HMAC-SHA256, credential=AK:sig",      # the scheme is case-sensitive
    "BackendAI signMethod=HMAC-SHA256",                          # no credential
    "BackendAI credential=AK:sig",                               # no signMethod
    "BackendAI signMethod=HMAC-SHA256, credential=AKsig",        # no colon
    "BackendAI signMethod=HMAC-SHA256, credential=:sig",         # empty access key
    "BackendAI signMethod=HMAC-SHA256, credential=AK:",          # empty signature
    "BackendAI signMethod=RSA-SHA256, credential=AK:sig",        # not an HMAC
    "BackendAI signMethod=HMAC-NOPE, credential=AK:sig",         # unknown hash
    "BackendAI signMethod=HMAC-SHAKE_128, credential=AK:sig",    # no fixed digest size
    "BackendAI signMethod=HMAC, credential=AK:sig",              # no hash at all
    "BackendAI signMethod=HMAC-SHA256, credential",              # a parameter without '='
    "BackendAI signMethod=HMAC-SHA256,, credential=AK:sig",      # an empty parameter
    "BackendAI =x, signMethod=HMAC-SHA256, credential=AK:sig",   # a parameter without a name
])
def test_parse_authorization_refuses_malformed_headers(header):
    with pytest.raises(ValueError):
        signing.parse_authorization(header)


# -- clock skew -------------------------------------------------------------------------------
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("offset, ok", [
    (timedelta(0), True),
    (timedelta(minutes=14, seconds=59), True),
    (-timedelta(minutes=14, seconds=59), True),
    (timedelta(minutes=15), True),                      # the boundary itself is inside
    (-timedelta(minutes=15), True),
    (timedelta(minutes=15, microseconds=1), False),
    (-timedelta(minutes=15, microseconds=1), False),
    (timedelta(minutes=16), False),
    (-timedelta(minutes=16), False),
    (timedelta(days=1), False),
])
def test_within_skew_boundaries(offset, ok):
    assert signing.within_skew(NOW + offset, now=NOW) is ok


def test_within_skew_defaults_to_the_current_time():
    assert signing.within_skew(datetime.now(UTC) - timedelta(minutes=14))
    assert not signing.within_skew(datetime.now(UTC) - timedelta(minutes=16))


# -- Date header ------------------------------------------------------------------------------
UTC = UTC


@pytest.mark.parametrize("value, expected", [
    ("2024-01-02T03:04:05.678901+00:00", datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)),
    ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2024-01-02T12:04:05+09:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),           # naive = UTC
    ("2024-01-02 03:04:05.5", datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),  # naive = UTC
    ("Tue, 02 Jan 2024 03:04:05 GMT", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),  # RFC 1123
    ("Tue, 02 Jan 2024 05:04:05 +0200", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("Tue, 02 Jan 2024 03:04:05 -0000", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),  # naive = UTC
    (" Tue, 02 Jan 2024 03:04:05 GMT ", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
])
def test_parse_date(value, expected):
    parsed = signing.parse_date(value)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["", "yesterday", "2024-13-45T00:00:00", "Tue, 99 Foo 2024",
                                   "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_date_refuses_garbage_with_value_error(value):
    with pytest.raises(ValueError):
        signing.parse_date(value)


def test_signatures_match_never_raises():
    assert signing.signatures_match("abc", "abc")
    assert not signing.signatures_match("abc", "abd")
    assert not signing.signatures_match("abc", "ab\u00e9")      # latin-1 text in a header
    assert not signing.signatures_match("abc", "ab\udcff")      # undecodable bytes
