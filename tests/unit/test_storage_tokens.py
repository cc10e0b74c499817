"""Storage-proxy: file-transfer tokens and quota arithmetic."""

from __future__ import annotations

import jwt
import pytest

from workbay.common.errors import InvalidAPIParameters
from workbay.storage.errors import InvalidToken, TokenScopeMismatch
from workbay.storage.quota import parse_scope, parse_vfid, percentage, would_exceed
from workbay.storage.tokens import issue_token, verify_token

SECRET = "s3cret-" + "x" * 32
VFID = "0123456789abcdef0123456789abcdef"


def test_claims_round_trip():
    tok = issue_token(SECRET, "upload", "local:volume1", VFID, "a/b.txt", 60, size=10, session="x")
    claims = verify_token(SECRET, tok, "upload")
    assert claims["op"] == "upload" and claims["volume"] == "local:volume1"
    assert claims["vfid"] == VFID and claims["relpath"] == "a/b.txt" and claims["size"] == 10
    raw = jwt.decode(tok, SECRET, algorithms=["HS256"])
    assert jwt.get_unverified_header(tok)["alg"] == "HS256" and raw["exp"] > 0


def test_refusals():
    tok = issue_token(SECRET, "download", "v", VFID, "f", 60)
    with pytest.raises(TokenScopeMismatch):
        verify_token(SECRET, tok, "upload")
    with pytest.raises(InvalidToken):
        verify_token("other" * 8, tok, "download")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, issue_token(SECRET, "download", "v", VFID, "f", -5), "download")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, None, "download")
    with pytest.raises(InvalidToken):  # upload without size
        verify_token(SECRET, issue_token(SECRET, "upload", "v", VFID, "f", 60), "upload")
    with pytest.raises(InvalidToken):  # alg none
        verify_token(SECRET, jwt.encode({"op": "files", "volume": "v", "vfid": VFID, "relpath": "",
                                         "exp": 2**40}, None, algorithm="none"), "files")
    with pytest.raises(ValueError):
        issue_token(SECRET, "admin", "v", VFID, "f", 60)
    with pytest.raises(ValueError):
        issue_token("", "files", "v", VFID, "", 60)
    with pytest.raises(InvalidToken):  # a proxy without a secret accepts nothing
        verify_token("", issue_token(SECRET, "files", "v", VFID, "", 60), "files")


def test_quota_arithmetic():
    assert not would_exceed(None, 10**12, 10**12)
    assert not would_exceed(100, 60, 40)
    assert would_exceed(100, 60, 41)
    assert would_exceed(0, 0, 1) and not would_exceed(0, 0, 0)
    assert percentage(25, 100) == 25.0 and percentage(1, 0) == 0.0


def test_scope_and_folder_ids():
    s = parse_scope("user:8d6f7a3e-0000-4000-8000-000000000001")
    assert (s.type, str(s)) == ("user", "user:8d6f7a3e-0000-4000-8000-000000000001")
    assert parse_scope("group:8d6f7a3e-0000-4000-8000-000000000001").type == "project"
    assert parse_vfid("01234567-89ab-cdef-0123-456789abcdef") == VFID
    for bad in ("user:nope", "team:8d6f7a3e-0000-4000-8000-000000000001", "x"):
        with pytest.raises(InvalidAPIParameters):
            parse_scope(bad)
    with pytest.raises(InvalidAPIParameters):
        parse_vfid("../etc")


def test_range_parsing():
    from workbay.storage.download import content_disposition, parse_range

    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=95-200", 100) == (95, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=-200", 100) == (0, 99)
    assert parse_range("items=0-1", 100) is None and parse_range("bytes=0-1,5-6", 100) is None
    for bad in ("bytes=100-", "bytes=5-4", "bytes=-0"):
        with pytest.raises(ValueError):
            parse_range(bad, 100)
    assert content_disposition('a"b é.txt') == \
        "attachment;filename=\"a_b ?.txt\"; filename*=UTF-8''a%22b%20%C3%A9.txt"


def test_files_tokens_are_short_lived_and_bound_to_one_action():
    import time

    from workbay.storage.tokens import FILES_TOKEN_TTL, files_action

    tok = issue_token(SECRET, "files", "v", VFID, "", 1800, action="delete")
    claims = verify_token(SECRET, tok, "files", "delete")
    assert claims["exp"] <= time.time() + FILES_TOKEN_TTL + 1  # not the transfer ttl
    for other in ("list", "mkdir", "rename", "move", None):
        with pytest.raises(TokenScopeMismatch):
            verify_token(SECRET, tok, "files", other)
    # without an action a files token only lists
    tok = issue_token(SECRET, "files", "v", VFID, "", 60)
    assert verify_token(SECRET, tok, "files", "list")["action"] == "list"
    with pytest.raises(TokenScopeMismatch):
        verify_token(SECRET, tok, "files", "delete")
    many = issue_token(SECRET, "files", "v", VFID, "", 60, action=["list", "mkdir"])
    assert verify_token(SECRET, many, "files", "mkdir")
    for bad in ("admin", [], ["list", "chmod"]):
        with pytest.raises(ValueError):
            issue_token(SECRET, "files", "v", VFID, "", 60, action=bad)
    # transfer tokens keep the configured ttl
    up = issue_token(SECRET, "download", "v", VFID, "f", 1800)
    assert verify_token(SECRET, up, "download")["exp"] > time.time() + 1700
    assert [files_action(e) for e in ("/files", "/files/mkdir", "/files/delete")] == ["list", "mkdir", "delete"]
    with pytest.raises(ValueError):
        files_action("/files/chmod")


def test_bearer_tokens():
    from workbay.storage.tokens import bearer_token

    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token(None) is None and bearer_token("Basic abc") is None and bearer_token("Bearer ") is None
