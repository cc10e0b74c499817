"""The runner's side of a model service's replica: the pre-start actions (run directly, as the
current user, in a temporary home) and the child process that runs them."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from workbay.runner import model_service as ms


def run(actions, home, env=None):
    lines: list[str] = []
    exported = ms.run_actions(actions, str(home), {"PATH": os.environ["PATH"], **(env or {})}, lines.append)
    return exported, lines


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_file_relative_to_home_with_mode_and_append(tmp_path):
    run([{"action": "write_file", "args": {"filename": "conf/a.json", "body": '{"a": 1}'}},
         {"action": "write_file", "args": {"filename": str(tmp_path / "b.txt"), "body": "one\n", "mode": "600"}},
         {"action": "write_file", "args": {"filename": "b.txt", "body": "two\n", "mode": "640", "append": True}}],
        tmp_path)
    assert (tmp_path / "conf" / "a.json").read_text() == '{"a": 1}'
    assert mode_of(tmp_path / "conf" / "a.json") == 0o644
    assert (tmp_path / "b.txt").read_text() == "one\ntwo\n" and mode_of(tmp_path / "b.txt") == 0o640
    run([{"action": "write_file", "args": {"filename": "b.txt", "body": "new"}}], tmp_path)
    assert (tmp_path / "b.txt").read_text() == "new"  # append false: replaced


def test_tempfiles_are_exported_to_later_actions(tmp_path):
    exported, _ = run([
        {"action": "write_tempfile", "args": {"body": "first"}},
        {"action": "write_tempfile", "args": {"body": "second", "mode": "640"}},
        {"action": "run_command", "args": {"command": 'cat "$WORKBAY_TEMPFILE_1" "$WORKBAY_TEMPFILE_2" > both'}}],
        tmp_path)
    try:
        assert sorted(exported) == ["WORKBAY_TEMPFILE_1", "WORKBAY_TEMPFILE_2"]
        assert open(exported["WORKBAY_TEMPFILE_1"]).read() == "first"
        assert mode_of(exported["WORKBAY_TEMPFILE_1"]) == 0o600
        assert mode_of(exported["WORKBAY_TEMPFILE_2"]) == 0o640
        assert (tmp_path / "both").read_text() == "firstsecond"
    finally:
        for path in exported.values():
            os.unlink(path)


def test_run_command_list_string_cwd_and_environment(tmp_path):
    (tmp_path / "sub").mkdir()
    run([{"action": "run_command", "args": {"command": ["sh", "-c", "pwd > where; echo $GREETING > env"],
                                             "cwd": "sub"}},
         {"action": "run_command", "args": {"command": "echo shell > from-shell"}}],
        tmp_path, {"GREETING": "hello"})
    assert (tmp_path / "sub" / "where").read_text().strip() == str(tmp_path / "sub")
    assert (tmp_path / "sub" / "env").read_text().strip() == "hello"
    assert (tmp_path / "from-shell").read_text().strip() == "shell"


def test_mkdir_makes_parents_and_accepts_an_existing_directory(tmp_path):
    run([{"action": "mkdir", "args": {"path": "a/b/c"}}, {"action": "mkdir", "args": {"path": "a/b/c"}},
         {"action": "mkdir", "args": {"path": str(tmp_path / "abs")}}], tmp_path)
    assert (tmp_path / "a" / "b" / "c").is_dir() and (tmp_path / "abs").is_dir()


def test_every_action_is_logged_in_order(tmp_path):
    _, lines = run([{"action": "log", "args": {"message": "loading the model"}},
                    {"action": "log", "args": {"message": "details", "debug": True}},
                    {"action": "mkdir", "args": {"path": "x"}}], tmp_path)
    assert lines == ["pre-start action #1 (log): starting", "loading the model", "pre-start action #1 (log): done",
                     "pre-start action #2 (log): starting", "debug: details", "pre-start action #2 (log): done",
                     "pre-start action #3 (mkdir): starting", "pre-start action #3 (mkdir): done"]


@pytest.mark.parametrize("action, reason", [
    ({"action": "run_command", "args": {"command": ["sh", "-c", "exit 3"]}}, "sh exited with code 3"),
    ({"action": "run_command", "args": {"command": ["/no/such/program"]}}, "No such file"),
    ({"action": "run_command", "args": {"command": []}}, "command must be"),
    ({"action": "write_file", "args": {"filename": "f", "mode": "rwx"}}, "octal mode"),
    ({"action": "write_file", "args": {"body": "no name"}}, "path must be"),
    ({"action": "mkdir", "args": {"path": "file-in-the-way/sub"}}, "Not a directory"),
    ({"action": "rm", "args": {}}, "unknown action"),
    ({"action": "log", "args": None}, "args must be a mapping"),
])
def test_a_failing_action_stops_the_rest_and_names_itself(tmp_path, action, reason):
    (tmp_path / "file-in-the-way").write_text("")
    actions = [{"action": "mkdir", "args": {"path": "first"}}, action, {"action": "mkdir", "args": {"path": "never"}}]
    with pytest.raises(ms.ActionFailed) as failed:
        run(actions, tmp_path)
    assert failed.value.index == 2 and failed.value.name == action["action"]
    assert str(failed.value).startswith(f"pre-start action #2 ({action['action']}) failed: ")
    assert reason in str(failed.value)
    assert (tmp_path / "first").is_dir() and not (tmp_path / "never").exists()


def test_command_argv():
    assert ms.command_argv(["python3", "-m", "x"]) == ["python3", "-m", "x"]
    assert ms.command_argv("vllm serve /models") == ["/bin/sh", "-c", "vllm serve /models"]
    for bad in ("", "  ", [], [1], None, {"a": 1}):
        with pytest.raises(ValueError):
            ms.command_argv(bad)


async def test_the_child_process_runs_the_actions_and_reports_the_exports(tmp_path):
    env = {"PATH": os.environ["PATH"], "GREETING": "hi"}
    exported = await ms.run_pre_start(
        [{"action": "write_tempfile", "args": {"body": "t"}},
         {"action": "run_command", "args": {"command": 'echo "$GREETING" > out; cat "$WORKBAY_TEMPFILE_1" >> out'}}],
        str(tmp_path), env, {"cwd": str(tmp_path)})
    try:
        assert list(exported) == ["WORKBAY_TEMPFILE_1"]
        assert (tmp_path / "out").read_text() == "hi\nt"
    finally:
        os.unlink(exported["WORKBAY_TEMPFILE_1"])
    assert await ms.run_pre_start([], str(tmp_path), env, {}) == {}


async def test_the_child_process_reports_the_failing_action(tmp_path):
    with pytest.raises(RuntimeError, match=r"pre-start action #2 \(run_command\) failed: false exited with code 1"):
        await ms.run_pre_start([{"action": "mkdir", "args": {"path": "d"}},
                                {"action": "run_command", "args": {"command": ["false"]}}],
                               str(tmp_path), {"PATH": os.environ["PATH"]}, {"cwd": str(tmp_path)})
    assert (tmp_path / "d").is_dir()


async def test_stopping_ends_the_actions(tmp_path):
    stop = asyncio.Event()
    task = asyncio.ensure_future(ms.run_pre_start(
        [{"action": "run_command", "args": {"command": ["sleep", "60"]}}], str(tmp_path),
        {"PATH": os.environ["PATH"]}, {"cwd": str(tmp_path)}, stop))
    await asyncio.sleep(0.5)
    stop.set()
    with pytest.raises(RuntimeError, match="stopped"):
        await asyncio.wait_for(task, 10)


def test_the_child_imports_this_module_from_where_its_top_package_lies():
    code = ms.child_command()[-1]
    root = code.split("sys.path.insert(0, ")[1].split(")")[0].strip("'\"")
    assert os.path.isfile(os.path.join(root, *ms.__name__.split(".")) + ".py")
