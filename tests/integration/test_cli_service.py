"""`workbay service …` against a real manager and storage-proxy over HTTP (no agent: a service
stays PROVISIONING, which every command but validate is fine with).  The CLI runs as a
subprocess, exactly as a user runs it, with keypair credentials in the environment: create with
every kind of option, ls, info, update, scale, tokens (issue, ls, revoke), autoscaling rules,
errors (and --clear), rm with and without confirmation, and another user's view (nothing)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import uuid
from datetime import datetime, timedelta

import pytest

from tests.integration.test_folders import new_user, unique, upload
from tests.support.webserver import running_system
from workbay.manager.models import Image
from workbay.manager.models.serving import ServiceError

WORKBAY = [sys.executable, "-m", "workbay.client.cli_entry"]
DEFINITION = b"""models:
  - name: echo
    model_path: /models
    service:
      start_command: ["python3", "-m", "http.server", "8000"]
      port: 8000
      health_check:
        path: /
"""


class CLI:
    """The `workbay` command with one user's keypair."""

    def __init__(self, endpoint: str, keypair: dict, config_dir: str) -> None:
        self.env = {**os.environ, "WORKBAY_ACCESS_KEY": keypair["access_key"],
                    "WORKBAY_SECRET_KEY": keypair["secret_key"], "WORKBAY_ENDPOINT": endpoint,
                    "COLUMNS": "250", "WORKBAY_CONFIG_DIR": config_dir}

    async def run(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(*WORKBAY, *args, env=self.env, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 120)
        return proc.returncode or 0, out.decode(), err.decode()

    async def ok(self, *args: str, stdin: str = "") -> str:
        code, out, err = await self.run(*args, stdin=stdin)
        assert code == 0, f"workbay {' '.join(args)} → {code}\n{out}\n{err}"
        return out

    async def json(self, *args: str):
        return json.loads(await self.ok(*args, "--json"))


def flat(text: str) -> str:
    """Rich's tables and wrapping: compare words with the box lines and runs of space removed."""
    return " ".join(text.replace("│", " ").replace("┃", " ").split())


@pytest.fixture(scope="module")
async def world(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("cli-service")) as s:
        h = s.manager
        image = f"cr.test/serving/python-{uuid.uuid4().hex[:6]}:3.11"
        async with h.state.ctx.db.begin() as db:
            db.add(Image(name=image, image_registry="cr.test", tag="3.11", architecture=platform.machine()))
        admin = h.admin()
        default = next(p for p in (await admin.get("/admin/projects", params={"q": "default"}))["items"]
                       if p["name"] == "default")
        user, c = await new_user(h, project_ids=[default["id"]])
        model, data = unique("model"), unique("data")
        await c.post("/folders", json={"name": model, "usage_mode": "model"})
        await upload(h, c, model, "model-definition.yaml", DEFINITION)
        await c.post("/folders", json={"name": data, "usage_mode": "data"})
        empty = unique("nodef")
        await c.post("/folders", json={"name": empty, "usage_mode": "model"})
        other, _ = await new_user(h, project_ids=[default["id"]])
        config = str(tmp_path_factory.mktemp("cli-config"))
        yield {"h": h, "image": image, "model": model, "data": data, "empty": empty, "user": user,
               "cli": CLI(s.manager_url, user["keypair"], config), "other": CLI(s.manager_url, other["keypair"], config)}


async def test_service_lifecycle_through_the_cli(world):
    w, cli = world, world["cli"]
    name = f"svc-{uuid.uuid4().hex[:8]}"
    created = await cli.json("service", "create", "--name", name, "--model-folder", w["model"], "--image", w["image"],
                             "--runtime", "custom", "--mount-destination", "/models", "--definition-path",
                             "model-definition.yaml", "--extra-mount", f"{w['data']}=/data", "--replicas", "1",
                             "-c", "cpu=1", "-c", "mem=1g", "--env", "A=1", "--env", "B=x=y", "--private")
    sid = created["endpoint_id"]
    assert uuid.UUID(sid) and created["name"] == name and created["status"] == "PROVISIONING"
    assert created["service_endpoint"].endswith(f"/{name}/")

    # ls: the table's columns, and JSON
    listed = flat(await cli.ok("service", "ls"))
    assert name in listed and "PROVISIONING" in listed and "0/1" in listed and w["model"] in listed
    assert w["user"]["email"] in listed and f"/{name}/" in listed
    assert sid in {s["id"] for s in await cli.json("service", "ls")}

    # info by name and by id: settings, replicas, tokens count
    info = flat(await cli.ok("service", "info", name))
    for text in (sid, "PROVISIONING", w["model"], "/models", "custom", "A=1", "B=x=y", "→ /data",
                 "Tokens 0"):
        assert text in info, text
    assert (await cli.json("service", "info", sid))["name"] == name

    # logs: the newest replica's (none has run: empty); an unknown route is named
    await cli.ok("service", "logs", name)
    code, _, err = await cli.run("service", "logs", name, "--route", str(uuid.uuid4()))
    assert code == 1 and "route" in err.lower()

    # update (PATCH) and scale
    await cli.ok("service", "update", name, "--replicas", "2", "--env", "A=2")
    detail = await cli.json("service", "info", name)
    assert detail["desired_session_count"] == 2 and detail["config"]["environ"] == {"A": "2"}
    assert detail["config"]["extra_mounts"]  # not sent: unchanged
    assert "3 replicas" in flat(await cli.ok("service", "scale", name, "3"))
    assert (await cli.json("service", "info", name))["desired_session_count"] == 3
    code, _, err = await cli.run("service", "scale", name, "11")
    assert code == 1 and "max_session_count_per_model_session" in flat(err)
    code, _, err = await cli.run("service", "update", name)
    assert code == 2 and "Nothing to change" in err

    # tokens: issue (printed), list, revoke
    token = (await cli.ok("service", "token", name, "--duration", "1h")).strip()
    assert token.count(".") == 2  # a JWT
    tokens = await cli.json("service", "token", "ls", name)
    assert [t["status"] for t in tokens] == ["valid"] and tokens[0]["token"] == token
    assert "valid" in flat(await cli.ok("service", "token", "ls", name))
    await cli.ok("service", "token", "revoke", name, tokens[0]["id"])
    assert [t["status"] for t in await cli.json("service", "token", "ls", name)] == ["revoked"]
    until = (datetime.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    later = (await cli.ok("service", "token", name, "--valid-until", until)).strip()
    assert later.count(".") == 2 and later != token
    code, _, err = await cli.run("service", "token", name, "--valid-until", "2099-01-01T00:00")
    assert code == 1 and "valid_until" in err
    assert (await cli.json("service", "info", name))["tokens_count"] == 2

    # autoscaling rules
    added = await cli.json("service", "autoscale", "add", name, "--source", "endpoint", "--metric", "rps",
                           "--comparator", ">=", "--threshold", "5", "--step", "1", "--max", "4", "--cooldown", "60")
    rules = await cli.json("service", "autoscale", "ls", name)
    assert [(r["id"], r["comparator"], r["threshold"], r["max_replicas"]) for r in rules] == \
        [(added["id"], "ge", "5", 4)]
    shown = flat(await cli.ok("service", "autoscale", "ls", name))
    assert "rps" in shown and "≥ 5" in shown and "+1" in shown
    code, _, err = await cli.run("service", "autoscale", "add", name, "--source", "endpoint", "--metric", "rps",
                                 "--comparator", "~", "--threshold", "5", "--step", "1")
    assert code == 2 and "comparator" in err
    await cli.ok("service", "autoscale", "rm", name, added["id"])
    assert await cli.json("service", "autoscale", "ls", name) == []

    # errors, and clearing them
    assert "No errors." in await cli.ok("service", "errors", name)
    async with w["h"].state.ctx.db.begin() as db:
        db.add(ServiceError(endpoint_id=uuid.UUID(sid), message="start command exited with 3",
                            log_tail="Traceback: boom\n"))
    errors = flat(await cli.ok("service", "errors", name))
    assert "start command exited with 3" in errors and "Traceback: boom" in errors
    await cli.ok("service", "errors", name, "--clear")
    assert (await cli.json("service", "errors", name))["errors"] == []

    # another user sees nothing
    code, _, err = await world["other"].run("service", "info", name)
    assert code == 1 and "No model service named" in err
    assert sid not in {s["id"] for s in await world["other"].json("service", "ls")}

    # rm: asks first (answering no keeps it), --yes does not ask
    code, _, _ = await cli.run("service", "rm", name, stdin="n\n")
    assert code == 1 and (await cli.json("service", "info", name))["status"] == "PROVISIONING"
    await cli.ok("service", "rm", name, "--yes")
    assert (await cli.json("service", "info", sid))["status"] in ("TERMINATING", "DESTROYED")


async def test_create_needs_its_fields_and_names_a_bad_one(world):
    cli = world["cli"]
    code, _, err = await cli.run("service", "create", "--name", "svc-missing")
    assert code == 2 and "--model-folder" in err and "--image" in err
    code, _, err = await cli.run("service", "create", "--name", "svc-nofolder", "--model-folder", "no-such-folder",
                                 "--image", world["image"])
    assert code == 1 and "no-such-folder" in flat(err)
    # --wait: until HEALTHY (no replica wanted: at once), or it gives up after --max-wait (no agent: a
    # replica never becomes healthy) with the status shown and exit 1
    common = ["--model-folder", world["model"], "--image", world["image"], "-c", "cpu=1", "-c", "mem=1g", "--wait"]
    out = await cli.ok("service", "create", "--name", f"svc-{uuid.uuid4().hex[:8]}", "--replicas", "0", *common)
    assert "is HEALTHY, replicas 0/0" in flat(out)
    code, out, err = await cli.run("service", "create", "--name", f"svc-{uuid.uuid4().hex[:8]}", "--replicas", "1",
                                   "--max-wait", "2", *common)
    assert code == 1 and "PROVISIONING replicas 0/1" in flat(err) and "is PROVISIONING" in flat(out)
    code, _, err = await cli.run("service", "info", "no-such-service")
    assert code == 1 and "No model service named 'no-such-service'" in err


async def test_validate_refused_before_the_stream_names_the_problem(world):
    """A body the manager refuses never starts a dry run: its 400 is the message, exit 1 (the
    streamed runs need containers: tests/integration/test_cli_service_validate.py)."""
    code, out, err = await world["cli"].run("service", "validate", "--model-folder", world["empty"], "--image",
                                            world["image"])
    assert code == 1 and "model-definition.yaml not found" in flat(err) and "Healthy" not in out
