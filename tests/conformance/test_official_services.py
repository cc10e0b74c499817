"""Model services with Backend.AI's official client (``backend.ai-client`` 23.9.10, ``.venv-bai``;
see test_backendai_client.py): its SDK creates, lists, inspects, scales, tokens and deletes a
service, and its CLI (``backend.ai service …``) scales, tokens and removes one by name.  No
replica needs to run: the manager answers (its serving reconciler may have asked for a replica,
which never starts here: there is no agent)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import uuid

import jwt

from tests.conformance.test_backendai_client import BAI_PYTHON, live, serve  # noqa: F401  (live: the fixture)
from tests.integration.test_folders import upload
from workbay.appproxy.tokens import verify_service_token
from workbay.manager.models import Image
from workbay.manager.models.serving import ModelService

PASSWORD = "Serv1ce!pass"
DEFINITION = b"""models:
  - name: echo
    model_path: /models
    service:
      start_command: ["python3", "-m", "http.server", "8000"]
      port: 8000
"""

SDK_SCRIPT = r'''
import asyncio, json, os
from ai.backend.client.config import APIConfig
from ai.backend.client.exceptions import BackendAPIError
from ai.backend.client.func.service import Service
from ai.backend.client.session import AsyncSession

EP, AK, SK, IMAGE, MODEL, NAME = (os.environ[k] for k in ("EP", "AK", "SK", "IMAGE", "MODEL", "NAME"))


async def main():
    out = {}
    config = APIConfig(endpoint=EP, endpoint_type="api", access_key=AK, secret_key=SK)
    async with AsyncSession(config=config):
        created = await Service.create(IMAGE, MODEL, 1, service_name=NAME, resources={"cpu": 1, "mem": "1g"},
                                       group_name="default", expose_to_public=False)
        out["created"] = created
        sid = created["endpoint_id"]
        out["list"] = await Service.list()
        out["list_by_name"] = await Service.list(name=NAME)
        svc = Service(sid)
        out["info"] = await svc.info()
        out["scale"] = await svc.scale(2)
        out["token"] = await svc.generate_api_token("2h")
        out["sync"] = await svc.sync()
        try:
            await svc.scale(1000)
        except BackendAPIError as e:
            out["too_many"] = [e.status, e.data]
        try:
            await Service.create(IMAGE, MODEL, 1, service_name=NAME, resources={"cpu": 1, "mem": "1g"},
                                 group_name="default")
        except BackendAPIError as e:
            out["clash"] = [e.status, e.data]
        out["delete"] = await svc.delete()
    print(json.dumps(out))


asyncio.run(main())
'''


async def _run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_official_client_manages_a_service(live, tmp_path):  # noqa: F811
    assert BAI_PYTHON.exists(), f"{BAI_PYTHON} is missing (make setup installs the official client)"
    h = live
    image = f"cr.test/serving/python-{uuid.uuid4().hex[:6]}:3.11"
    async with h.state.ctx.db.begin() as s:
        s.add(Image(name=image, image_registry="cr.test", tag="3.11", architecture=platform.machine()))
    email = f"svc-{uuid.uuid4().hex[:6]}@example.test"
    user = await h.admin().post("/admin/users", json={"email": email, "username": email.split("@")[0],
                                                      "password": PASSWORD})
    default = next(p for p in (await h.admin().get("/admin/projects", params={"domain": "default"}))["items"]
                   if p["name"] == "default")
    await h.admin().post(f"/admin/projects/{default['id']}/members", json={"emails": [email]})
    ak, sk = user["keypair"]["access_key"], user["keypair"]["secret_key"]
    c = h.client(ak, sk)
    model = f"model-{uuid.uuid4().hex[:6]}"
    await c.post("/folders", json={"name": model, "usage_mode": "model"})
    await upload(h, c, model, "model-definition.yaml", DEFINITION)
    name = f"conf-{uuid.uuid4().hex[:8]}"
    async with serve(h.app) as endpoint:
        base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
        env = base | {"EP": endpoint, "AK": ak, "SK": sk, "IMAGE": image, "MODEL": model, "NAME": name}
        rc, out, err = await _run([str(BAI_PYTHON), "-c", SDK_SCRIPT], env)
        assert rc == 0, err[-3000:]
        got = json.loads(out.strip().splitlines()[-1])
        # the CLI, by service name, on a second service
        cli_name = f"cli-{uuid.uuid4().hex[:8]}"
        cli_id = (await c.post("/services", json={"name": cli_name, "image": image, "group": "default",
                                                  "desired_session_count": 1,
                                                  "config": {"model": model, "resources": {"cpu": 1}}}))["endpoint_id"]
        cli_env = base | {"BACKEND_ENDPOINT": endpoint, "BACKEND_ENDPOINT_TYPE": "api",
                          "BACKEND_ACCESS_KEY": ak, "BACKEND_SECRET_KEY": sk}
        cli = str(BAI_PYTHON.parent / "backend.ai")
        scaled = await _run([cli, "service", "scale", cli_name, "3"], cli_env)
        token = await _run([cli, "service", "generate-token", "-q", cli_name, "1d"], cli_env)
        removed = await _run([cli, "service", "rm", cli_name], cli_env)

    sid = got["created"]["endpoint_id"]
    assert uuid.UUID(sid)
    listed = {i["id"]: i for i in got["list"]}
    port = h.state.ctx.config.appproxy.inference_port
    assert listed[sid]["name"] == name and listed[sid]["desired_session_count"] == 1
    assert listed[sid]["active_route_count"] in (0, 1) and listed[sid]["is_public"] is False
    assert listed[sid]["service_endpoint"].endswith(f":{port}/{name}/")
    assert [i["id"] for i in got["list_by_name"]] == [sid]
    info = got["info"]
    assert info["endpoint_id"] == sid and info["name"] == name
    assert all(set(r) >= {"route_id", "session_id", "traffic_ratio"} for r in info["active_routes"])
    assert info["desired_session_count"] == 1 and info["is_public"] is False
    assert got["scale"]["target_count"] == 2 and got["scale"]["current_route_count"] in (0, 1)
    claims = verify_service_token(h.state.ctx.config.secrets.appproxy, got["token"]["token"], sid)
    assert 7000 < claims["exp"] - claims["iat"] <= 7200
    assert got["sync"] == {"success": True}
    assert got["too_many"][0] == 400 and "max_session_count_per_model_session" in got["too_many"][1]["msg"]
    assert got["clash"][0] == 409
    assert got["delete"] == {"success": True}
    async with h.state.ctx.db() as s:
        row = await s.get(ModelService, uuid.UUID(sid))
        assert row.status in ("TERMINATING", "DESTROYED") and row.desired_replicas == 2
        assert row.image == image and row.model_mount_destination == "/models"

    assert scaled[0] == 0, scaled
    assert token[0] == 0, token
    exp = jwt.decode(token[1].strip().splitlines()[-1], options={"verify_signature": False})
    assert exp["sid"] == cli_id and 86000 < exp["exp"] - exp["iat"] <= 86400
    assert removed[0] == 0, removed
    async with h.state.ctx.db() as s:
        row = await s.get(ModelService, uuid.UUID(cli_id))
        assert row.desired_replicas == 3 and row.status in ("TERMINATING", "DESTROYED")
