"""Backend.AI-style service definitions: prestart actions become commands."""

from __future__ import annotations

import json

from workbay.runner.prepare import ContainerUser
from workbay.runner.services import Context, from_file


def test_prestart_actions_and_lists(tmp_path):
    (tmp_path / "tb.json").write_text(json.dumps({
        "prestart": [{"action": "mkdir", "args": {"path": "/home/work/logs"}},
                     {"action": "run_command", "args": {"command": ["echo", "{ports[0]}"]}},
                     ["touch", "/tmp/x"], {"action": "unknown"}],
        "command": ["tensorboard", "--port", "{ports[0]}"]}))
    ctx = Context(ContainerUser("work", 1000, 1000, "/home/work", []), [6006])
    sdef = from_file("tb", ctx, dirs=[str(tmp_path)])
    assert sdef.command == ["tensorboard", "--port", "6006"]
    assert sdef.prestart == [["mkdir", "-p", "/home/work/logs"], ["echo", "6006"], ["touch", "/tmp/x"]]
