"""TensorBoard and MLflow UI of the pytorch image, opened through the app-proxy."""

from __future__ import annotations

import subprocess
import uuid

import httpx
import pytest

from tests.support.sessions import running_system

pytestmark = pytest.mark.timeout(300)
PYTORCH = "localhost/workbay/pytorch:1.13-cpu"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    if subprocess.run(["podman", "image", "exists", PYTORCH], capture_output=True).returncode != 0:
        pytest.fail(f"{PYTORCH} is not built (make setup builds it)")
    async with running_system(tmp_path_factory.mktemp("apps-pytorch"), appproxy=True) as sysm:
        yield sysm


async def test_tensorboard_and_mlflow(system):
    user = await system.login("user@workbay.local")
    created = await user.post("/session", json={"image": PYTORCH, "name": f"torch-{uuid.uuid4().hex[:6]}",
                                                "config": {"resources": {"cpu": 1, "mem": "2g"}}})
    assert created["status"] == "RUNNING", created
    sid = created["sessionId"]
    apps = {a["name"] for a in await user.get(f"/stream/session/{sid}/apps")}
    assert {"tensorboard", "mlflow-ui", "jupyter"} <= apps
    for app, marker in (("tensorboard", "TensorBoard"), ("mlflow-ui", "MLflow")):
        opened = await user.post(f"/session/{sid}/start-service", json={"app": app})
        async with httpx.AsyncClient(follow_redirects=True, timeout=120) as browser:
            page = await browser.get(opened["url"])
            assert page.status_code == 200 and marker.lower() in page.text.lower(), (app, page.text[:300])
    await user.delete(f"/session/{sid}")
