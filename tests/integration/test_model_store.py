"""The Model Store (MS-11) and reading a model folder's definition through the storage-proxy, on
a manager with a real storage-proxy on real directories (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from tests.integration.test_folders import download, expect_error, new_user, unique, upload
from tests.support.manager import ManagerHarness
from workbay.common.errors import InvalidAPIParameters
from workbay.manager.models import Folder, Image
from workbay.manager.models.serving import ModelService

DEFINITION = b"""models:
  - name: tiny-llm
    model_path: /models
    service:
      pre_start_actions:
        - action: mkdir
          args: {path: /home/work/cache}
      start_command: ["python3", "/models/server.py"]
      port: 8000
      health_check: {path: /health, max_retries: 3}
    metadata:
      title: Tiny LLM
      author: Workbay
      description: A small model for tests.
      task: text-generation
      category: LLM
      architecture: transformer
      framework: [pytorch]
      label: [small, demo]
      license: MIT
      version: 1.0
      created: 2024-05-01
      last_modified: 2024-06-01
"""
BROKEN = b"""models:
  - name: broken
    model_path: /models
    service:
      start_command: serve
      port: 99999
"""


async def _store_project(h: ManagerHarness) -> str:
    projects = (await h.admin().get("/admin/projects", params={"domain": "default"}))["items"]
    return next(p["id"] for p in projects if p["name"] == "model-store")


async def _store_folder(h: ManagerHarness, project: str, *, usage_mode: str = "model", cloneable: bool = True,
                        files: dict[str, bytes] | None = None) -> dict:
    sa = h.admin()
    name = unique("ms")
    created = await sa.post("/folders", json={"name": name, "group": project, "usage_mode": usage_mode,
                                              "cloneable": cloneable})
    for path, data in (files or {}).items():
        await upload(h, sa, created["id"], path, data)
    return created


async def _wait(c, task_id: str) -> dict:
    for _ in range(400):
        task = await c.get(f"/background-tasks/{task_id}")
        if task["status"] != "running":
            return task
        await asyncio.sleep(0.05)
    raise AssertionError("the clone did not finish")


async def _folder_row(h: ManagerHarness, folder_id: str) -> Folder:
    async with h.state.ctx.db() as s:
        f = await s.get(Folder, uuid.UUID(folder_id))
        assert f is not None
        return f


async def test_cards_and_clone(manager):
    h = manager
    project = await _store_project(h)
    good = await _store_folder(h, project, files={"model-definition.yaml": DEFINITION,
                                                  "server.py": b"print('hi')\n"})
    broken = await _store_folder(h, project, files={"model-definition.yml": BROKEN})
    bare = await _store_folder(h, project)
    hidden = await _store_folder(h, project, cloneable=False, files={"model-definition.yaml": DEFINITION})
    general = await _store_folder(h, project, usage_mode="general", files={"model-definition.yaml": DEFINITION})
    user, c = await new_user(h)  # not a member of model-store: the store is shown to everyone

    cards = {card["folder_id"]: card for card in (await c.get("/model-store"))["items"]}
    assert good["id"] in cards and broken["id"] in cards and bare["id"] in cards
    assert hidden["id"] not in cards and general["id"] not in cards
    card = cards[good["id"]]
    assert card["name"] == good["name"] and card["host"] == good["host"]
    assert card["model_name"] == "tiny-llm" and card["title"] == "Tiny LLM" and card["author"] == "Workbay"
    assert card["task"] == "text-generation" and card["category"] == "LLM" and card["framework"] == "pytorch"
    assert card["label"] == ["small", "demo"] and card["license"] == "MIT" and card["version"] == "1.0"
    assert card["created"] == "2024-05-01" and card["last_modified"] == "2024-06-01"
    assert card["definition_file"] == "model-definition.yaml" and card["definition_error"] is None
    # a folder with a wrong or no definition still shows, saying why
    err = cards[broken["id"]]["definition_error"]
    assert err.startswith("model-definition.yml, line 6: models[0].service.port: must be an integer"), err
    assert cards[bare["id"]]["definition_error"] == "model-definition.yaml not found in the folder"
    assert cards[bare["id"]]["title"] is None

    # cloning: a model folder of the caller's own, with the same files
    name = unique("mine")
    cloned = await c.post(f"/model-store/{good['id']}/clone", json={"name": name})
    assert cloned["name"] == name and cloned["usage_mode"] == "model" and cloned["bgtask_id"]
    assert cloned["user"] == user["uuid"] and cloned["group"] is None
    assert (await _wait(c, cloned["bgtask_id"]))["status"] == "done"
    mine = {f["name"]: f for f in await c.get("/folders")}
    assert mine[name]["status"] == "ready" and mine[name]["usage_mode"] == "model"
    assert await download(h, c, name, path="model-definition.yaml") == DEFINITION
    assert await download(h, c, name, path="server.py") == b"print('hi')\n"
    # the store's folder itself stays out of the user's reach
    await expect_error(404, c.get(f"/folders/{good['id']}"))
    # a name already taken, a bad name: 400 naming the field
    e = await expect_error(400, c.post(f"/model-store/{good['id']}/clone", json={"name": name}))
    assert "name" in (e.body or {}).get("field_errors", {}), e.body
    await expect_error(400, c.post(f"/model-store/{good['id']}/clone", json={"name": "a/b"}))
    await expect_error(400, c.post(f"/model-store/{good['id']}/clone", json={}))
    # not in the store: not cloneable, not a model folder, an unknown or malformed id
    for fid in (hidden["id"], general["id"], uuid.uuid4().hex, "nope"):
        await expect_error(404, c.post(f"/model-store/{fid}/clone", json={"name": unique("x")}))

    # another domain has its own store (none here): nothing of the default domain's shows or clones
    await h.admin().post("/admin/domains", json={"name": "store-other"})
    _, oc = await new_user(h, domain_name="store-other")
    assert (await oc.get("/model-store"))["items"] == []
    await expect_error(404, oc.post(f"/model-store/{good['id']}/clone", json={"name": unique("x")}))


async def test_reading_definitions_and_replica_specs(manager):
    h = manager
    project = await _store_project(h)
    defs = h.state.model_store.definitions
    yaml_folder = await _folder_row(h, (await _store_folder(h, project, files={
        "model-definition.yaml": DEFINITION, "sub/other.yaml": BROKEN}))["id"])
    yml_folder = await _folder_row(h, (await _store_folder(h, project, files={
        "model-definition.yml": DEFINITION}))["id"])
    empty = await _folder_row(h, (await _store_folder(h, project, files={"model.gguf": b"GGUF"}))["id"])
    big = await _folder_row(h, (await _store_folder(h, project, files={
        "model-definition.yaml": b"#" * ((1 << 20) + 1)}))["id"])

    definition, filename = await defs.read(yaml_folder)
    assert filename == "model-definition.yaml" and definition.models[0].name == "tiny-llm"
    assert definition.models[0].metadata.framework == "pytorch"  # a list, joined
    _, filename = await defs.read(yml_folder)
    assert filename == "model-definition.yml"
    # missing: the default file, then a given path
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.read(empty)
    assert e.value.msg == f"model-definition.yaml not found in folder {empty.name}"
    assert e.value.extra["field_errors"] == {"config.model_definition_path": e.value.msg}
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.read(yaml_folder, "nope.yaml")
    assert e.value.msg == f"nope.yaml not found in folder {yaml_folder.name}"
    # a given path, with every problem and its line; escapes and oversized files refused
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.read(yaml_folder, "/sub/other.yaml")
    assert e.value.msg == "sub/other.yaml, line 6: models[0].service.port: must be an integer between 1024 and 65535"
    assert e.value.data == {"problems": [{"line": 6, "key": "models[0].service.port",
                                          "message": "must be an integer between 1024 and 65535"}]}
    for bad in ("../x.yaml", "..", "a/../../x"):
        with pytest.raises(InvalidAPIParameters):
            await defs.read(yaml_folder, bad)
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.read(big)
    assert "larger than 1 MiB" in e.value.msg
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.read(yaml_folder, "sub")
    assert e.value.extra["field_errors"].keys() == {"config.model_definition_path"}

    # replica specs: custom from the definition, llama-cpp finds the .gguf, command needs a command
    spec = await defs.replica_spec(yaml_folder, "custom", None, "/models", {}, None)
    assert spec.launch() == {
        "start_command": ["python3", "/models/server.py"], "port": 8000,
        "pre_start_actions": [{"action": "mkdir", "args": {"path": "/home/work/cache"}}],
        "model_path": "/models", "definition_name": "tiny-llm", "runtime_variant": "custom",
        "health_check": {"path": "/health", "interval": 10.0, "max_retries": 3, "max_wait_time": 15.0,
                         "expected_status_code": 200, "initial_delay": 60.0}}
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.replica_spec(yaml_folder, "custom", None, "/models", {}, None, model_name="other")
    assert e.value.extra["field_errors"].keys() == {"config.model"}
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.replica_spec(empty, "custom", None, "/models", {}, None)
    assert e.value.msg == f"model-definition.yaml not found in folder {empty.name}"
    spec = await defs.replica_spec(empty, "llama-cpp", None, "/models", {}, None)
    assert spec.start_command[:5] == ["python3", "-m", "llama_cpp.server", "--model", "/models/model.gguf"]
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.replica_spec(yaml_folder, "llama-cpp", None, "/models", {}, None)
    assert "no .gguf file" in e.value.msg and e.value.extra["field_errors"].keys() == {"config.model"}
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.replica_spec(empty, "command", None, "/models", {}, None)
    assert e.value.extra["field_errors"].keys() == {"startup_command"}
    with pytest.raises(InvalidAPIParameters) as e:
        await defs.replica_spec(empty, "tgi", None, "/models", {}, None)
    assert e.value.extra["field_errors"].keys() == {"runtime_variant"}

    # a service row: its folder, its image's labels
    image = f"cr.test/store/cmd-{uuid.uuid4().hex[:6]}:1"
    async with h.state.ctx.db.begin() as s:
        s.add(Image(name=image, image_registry="cr.test", tag="1", architecture="x86_64",
                    labels={"workbay.model.start-command": '["serve", "--port", "9000"]',
                            "workbay.model.port": "9000", "workbay.model.health-path": "/ready"}))
    svc = ModelService(model_folder_id=empty.id, runtime_variant="command", image=image, architecture="x86_64",
                       model_mount_destination="/models", model_definition_path=None, startup_command=None)
    spec = await defs.replica_spec(svc)
    assert (spec.start_command, spec.port, spec.health_check.path) == (["serve", "--port", "9000"], 9000, "/ready")
    svc.runtime_variant, svc.model_folder_id = "custom", yml_folder.id
    assert (await defs.replica_spec(svc)).definition_name == "tiny-llm"
    async with h.state.ctx.db() as s:
        assert (await s.execute(select(Image.id).where(Image.name == image))).scalar() is not None
