"""The Model Store page (MS-11) against a real manager and storage-proxy: cards from the model
definitions of the cloneable model folders of project ``model-store`` (with their metadata, or the
definition's error), search and task/category filters, the detail dialog, and cloning into the
user's folders with a link to the new folder; the empty state; Home's shortcuts."""

from __future__ import annotations

import asyncio
import platform
import uuid

import httpx
import pytest

from tests.integration.test_folders import new_user as api_user
from tests.integration.test_folders import upload
from tests.support.webserver import WebVisitor, new_user, running_system
from workbay.manager.models import Image

PASSWORD = "Us3r!pass-word"
LLAMA = b"""models:
  - name: tiny-llama
    model_path: /models
    service:
      start_command: ["python3", "-m", "http.server", "8000"]
      port: 8000
    metadata:
      title: Tiny Llama Chat
      author: workbay-tests
      description: A very small dialogue model.
      task: text-generation
      category: llm
      architecture: LlamaForCausalLM
      framework: transformers
      label: [chat, tiny]
      license: apache-2.0
      version: "1.1"
"""
WHISPER = LLAMA.replace(b"tiny-llama", b"whisper").replace(b"Tiny Llama Chat", b"Whisper Small") \
    .replace(b"text-generation", b"speech-recognition").replace(b"category: llm", b"category: audio") \
    .replace(b"dialogue model", b"speech model")
BROKEN = b"""models:
  - name: broken
    service:
      port: not-a-port
"""


class Browser(WebVisitor):
    @property
    def hx(self) -> dict[str, str]:
        return {"HX-Request": "true", "X-CSRF-Token": self.token}

    async def get(self, url: str, htmx: bool = False) -> httpx.Response:
        return await self.http.get(url, headers=self.hx if htmx else None)

    async def post(self, url: str, data: dict) -> httpx.Response:
        return await self.http.post(url, data=data, headers=self.hx)


async def store_folder(system, name: str, definition: bytes | None) -> str:
    """A cloneable model folder of project model-store (made by the administrator)."""
    admin = system.manager.admin()
    project = next(p for p in (await admin.get("/admin/projects", params={"q": "model-store"}))["items"]
                   if p["name"] == "model-store")
    made = await admin.post("/folders", json={"name": name, "usage_mode": "model", "group": project["id"],
                                              "cloneable": True})
    if definition is not None:
        await upload(system.manager, admin, made["id"], "model-definition.yaml", definition)
    return str(made["id"]).replace("-", "")


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-model-store")) as s:
        yield s


async def browser(system, client: httpx.AsyncClient) -> Browser:
    email = await new_user(system, PASSWORD)
    return await Browser(client).login(email, PASSWORD)


async def test_empty_store_then_cards_filters_detail_and_clone(system):
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as client:
        b = await browser(system, client)
        empty = await b.get("/model-store")
        assert empty.status_code == 200 and "The Model Store is empty." in empty.text
        assert 'href="/model-store"' in empty.text  # the nav entry

        tag = uuid.uuid4().hex[:6]
        llama = await store_folder(system, f"llama-{tag}", LLAMA)
        await store_folder(system, f"whisper-{tag}", WHISPER)
        await store_folder(system, f"broken-{tag}", BROKEN)

        page = (await b.get("/model-store")).text
        assert page.count('data-testid="model-card"') == 3
        for text in ("Tiny Llama Chat", "workbay-tests", "A very small dialogue model.", "text-generation", "llm",
                     "transformers", "apache-2.0", "v1.1", ">chat<", ">tiny<", "Whisper Small"):
            assert text in page, text
        broken = page[page.index(f'data-folder="broken-{tag}"'):]
        assert "Invalid model definition" in broken[:3000] and "port" in broken[:3000]
        assert '<option value="speech-recognition">' in page and '<option value="audio">' in page

        # filters in the query string (what the htmx form sends)
        by_task = (await b.get("/model-store?task=speech-recognition")).text
        assert "Whisper Small" in by_task and "Tiny Llama Chat" not in by_task
        by_category = (await b.get("/model-store?category=llm")).text
        assert "Tiny Llama Chat" in by_category and "Whisper Small" not in by_category
        by_search = (await b.get("/model-store?q=DIALOGUE")).text
        assert "Tiny Llama Chat" in by_search and "Whisper Small" not in by_search
        nothing = (await b.get("/model-store?q=no-such-model-here")).text
        assert "No model matches the filter." in nothing

        detail = (await b.get(f"/model-store/{llama}", htmx=True)).text
        for text in ("Tiny Llama Chat", "tiny-llama", "LlamaForCausalLM", "apache-2.0", f"llama-{tag}", "1.1"):
            assert text in detail, text
        assert f'hx-get="/model-store/{llama}/clone"' in detail
        assert (await b.get(f"/model-store/{uuid.uuid4().hex}", htmx=True)).status_code == 404

        dialog = (await b.get(f"/model-store/{llama}/clone", htmx=True)).text
        assert f'value="llama-{tag}-copy"' in dialog and "local:volume1" in dialog
        missing = await b.post(f"/model-store/{llama}/clone", {"target_name": "", "target_host": ""})
        assert "Enter a name." in missing.text
        bad = await b.post(f"/model-store/{llama}/clone", {"target_name": "a/b", "target_host": "local:volume1"})
        assert 'data-testid="model-clone-form"' in bad.text and "is-invalid" in bad.text
        done = await b.post(f"/model-store/{llama}/clone", {"target_name": f"my-llama-{tag}",
                                                             "target_host": "local:volume1"})
        assert 'data-testid="model-clone-done"' in done.text
        assert f'href="/data?tab=models&amp;q=my-llama-{tag}"' in done.text
        models_tab = (await b.get(f"/data?tab=models&q=my-llama-{tag}")).text
        assert f'data-folder="my-llama-{tag}"' in models_tab


async def test_home_shortcuts_open_the_service_form_and_the_store(system):
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as client:
        b = await browser(system, client)
        home = (await b.get("/start")).text
        assert 'href="/serving/start" data-testid="quick-model"' in home
        assert 'href="/model-store" data-testid="quick-model-store"' in home
        korean = await client.get("/model-store", headers={"Accept-Language": "ko"})
        assert "모델 스토어" in korean.text


async def test_the_inference_tab_shows_a_services_replicas(system):
    """A service's replicas are inference sessions of its owner: the Sessions page's Inference tab
    lists them (no agent here: they stay PENDING, which is enough to be listed)."""
    h = system.manager
    image = f"cr.test/serving/python-{uuid.uuid4().hex[:6]}:3.11"
    async with h.state.ctx.db.begin() as db:
        db.add(Image(name=image, image_registry="cr.test", tag="3.11", architecture=platform.machine()))
    default = next(p for p in (await h.admin().get("/admin/projects", params={"q": "default"}))["items"]
                   if p["name"] == "default")
    user, api = await api_user(h, project_ids=[default["id"]], password=PASSWORD)
    model = f"model-{uuid.uuid4().hex[:6]}"
    await api.post("/folders", json={"name": model, "usage_mode": "model"})
    await upload(h, api, model, "model-definition.yaml", LLAMA)
    name = f"svc-{uuid.uuid4().hex[:8]}"
    sid = (await api.post("/services", json={"name": name, "image": image, "desired_session_count": 1,
                                             "config": {"model": model, "resources": {"cpu": 1, "mem": "1g"}}}
                          ))["endpoint_id"]
    replica = ""
    for _ in range(150):  # the reconciler starts the replica on its next pass
        routes = (await api.get(f"/services/{sid}"))["routes"]
        if routes and routes[0].get("session_name"):
            replica = routes[0]["session_name"]
            break
        await asyncio.sleep(0.2)
    assert replica, "the reconciler started no replica"
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as client:
        b = await Browser(client).login(user["email"], PASSWORD)
        inference = (await b.get("/sessions?tab=inference")).text
        assert replica in inference
        # each replica links to its service
        assert f'href="/serving/{sid}" data-testid="session-service"' in inference
        interactive = (await b.get("/sessions?tab=interactive")).text
        assert replica not in interactive
