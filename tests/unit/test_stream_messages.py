"""The pure parts of the streaming API: pty messages, the terminado translation, execute
requests and replies, and which execute mode follows which result."""

from __future__ import annotations

import base64
import json

import pytest

from workbay.manager.services.session_stream import (
    AppStreamParams,
    PtyPing,
    PtyResize,
    PtyRestart,
    PtyStdin,
    TerminadoCodec,
    TtydCodec,
    error_message,
    execute_reply,
    next_execute_mode,
    parse_execute_request,
    parse_pty_message,
    pty_output,
    worth_sending,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_pty_stdin_is_decoded_from_base64():
    assert parse_pty_message(json.dumps({"type": "stdin", "chars": b64(b"ls -l\r")})) == PtyStdin(b"ls -l\r")
    assert parse_pty_message(json.dumps({"type": "stdin", "chars": b64(b"\x03")}).encode()) == PtyStdin(b"\x03")


def test_pty_resize_ping_restart():
    assert parse_pty_message('{"type": "resize", "rows": 30, "cols": 120}') == PtyResize(30, 120)
    assert parse_pty_message('{"type": "ping"}') == PtyPing()
    assert parse_pty_message('{"type": "restart"}') == PtyRestart()


@pytest.mark.parametrize("raw, says", [
    ("not json", "JSON object"),
    ("[1, 2]", "JSON object"),
    ('{"type": "stdin"}', "chars"),
    ('{"type": "stdin", "chars": "%%%"}', "base64"),
    ('{"type": "stdin", "chars": "é"}', "base64"),
    ('{"type": "resize", "rows": 0, "cols": 80}', "rows"),
    ('{"type": "resize", "rows": 24, "cols": "80"}', "cols"),
    ('{"type": "resize", "rows": true, "cols": 80}', "rows"),
    ('{"type": "resize", "rows": 24, "cols": 100000}', "cols"),
    ('{"type": "shell"}', "unknown pty message type 'shell'"),
    ('{}', "unknown pty message type None"),
])
def test_bad_pty_messages_say_what_is_wrong(raw, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        parse_pty_message(raw)


def test_pty_output_is_base64():
    msg = json.loads(pty_output(b"\x1b[0m42\r\n"))
    assert msg == {"type": "out", "data": b64(b"\x1b[0m42\r\n")}


def test_terminado_translation():
    codec = TerminadoCodec()
    assert json.loads(codec.stdin(b"echo hi\r")) == ["stdin", "echo hi\r"]
    assert json.loads(codec.resize(24, 80)) == ["set_size", 24, 80]
    assert codec.output('["stdout", "h\\u00e9"]') == "hé".encode()
    assert codec.output('["setup", {}]') is None
    assert codec.output('["disconnect", 1]') is None
    assert codec.output("garbage") is None


def test_terminado_stdin_keeps_characters_split_over_messages():
    codec = TerminadoCodec()
    snowman = "☃".encode()
    assert codec.stdin(snowman[:1]) is None
    assert json.loads(codec.stdin(snowman[1:] + b"!")) == ["stdin", "☃!"]


def test_ttyd_translation():
    codec = TtydCodec()
    assert json.loads(codec.hello(30, 100)) == {"AuthToken": "", "columns": 100, "rows": 30}
    assert codec.stdin(b"ls\r") == b"0ls\r"
    assert codec.stdin(b"") is None
    resize = codec.resize(24, 80)
    assert resize[:1] == b"1" and json.loads(resize[1:]) == {"columns": 80, "rows": 24}
    assert codec.output(b"0\x1b[1mhi") == b"\x1b[1mhi"
    assert codec.output("0text frame") == b"text frame"
    assert codec.output(b"1bash - work@main1") is None      # window title
    assert codec.output(b'2{"fontSize": 14}') is None       # preferences
    assert codec.output(b"0") is None


def test_execute_request():
    req = parse_execute_request('{"code": "print(1)", "mode": "query", "options": null, "extra": 1}')
    assert (req.code, req.mode, req.options) == ("print(1)", "query", None)
    batch = parse_execute_request(b'{"mode": "batch", "options": {"exec": "ls"}}')
    assert (batch.code, batch.options) == ("", {"exec": "ls"})


@pytest.mark.parametrize("raw, says", [
    ('{"code": "x"}', "mode"),
    ('{"code": "x", "mode": "continue"}', "mode"),
    ('{"code": 5, "mode": "query"}', "code"),
    ("nope", "message"),
])
def test_bad_execute_requests(raw, says):
    with pytest.raises(ValueError, match=says):
        parse_execute_request(raw)


def test_execute_reply_and_next_mode():
    result = {"status": "waiting-input", "runId": "r", "console": [["stdout", "name? "]], "exitCode": None,
              "options": {"is_password": False}, "files": []}
    assert execute_reply(result) == {"status": "waiting-input", "console": [["stdout", "name? "]],
                                     "exitCode": None, "options": {"is_password": False}, "files": []}
    assert next_execute_mode("waiting-input") == "input"
    assert next_execute_mode("continued") == "continue"
    assert next_execute_mode("build-finished") == "continue"
    assert next_execute_mode("finished") is None
    with pytest.raises(ValueError):
        next_execute_mode("exploded")


def test_only_results_with_news_are_sent():
    assert not worth_sending({"status": "continued", "console": [], "files": []})
    assert worth_sending({"status": "continued", "console": [["stdout", "x"]]})
    assert worth_sending({"status": "finished", "console": []})
    assert worth_sending({"status": "waiting-input", "console": []})


def test_error_message():
    assert json.loads(error_message("no")) == {"status": "error", "msg": "no"}


def test_app_stream_params_take_the_clients_json_strings():
    p = AppStreamParams.model_validate({"service": "sshd", "arguments": '{"-v": null}', "envs": '{"A": "1"}',
                                        "port": "2200", "owner_access_key": "AKX"})
    assert (p.app, p.arguments, p.envs, p.port, p.owner_access_key) == ("sshd", {"-v": None}, {"A": "1"}, 2200, "AKX")
    with pytest.raises(ValueError):
        AppStreamParams.model_validate({"app": "sshd", "envs": "[1]"})
    with pytest.raises(ValueError):
        AppStreamParams.model_validate({"port": "1"})
