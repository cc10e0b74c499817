"""Model Store journey (MS-11): an administrator publishes a model folder with a model definition
in project model-store; a user finds its card on the Model Store page (search and the task
filter), opens its detail, clones it into a folder of their own and follows the link to it on the
Data page.  Screenshots of the store, the detail and the clone dialog, light and dark."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import _free_port_pair
from tests.e2e.support import ADMIN_PASSWORD, USER_PASSWORD, AdminAPI, LoginPage, Shell, Workbay

DEFINITION = b"""models:
  - name: tiny-llama
    model_path: /models
    service:
      start_command: ["python3", "-m", "http.server", "8000"]
      port: 8000
    metadata:
      title: Tiny Llama Chat
      author: workbay
      description: A very small dialogue model, fine-tuned for chat on a laptop.
      task: text-generation
      category: llm
      architecture: LlamaForCausalLM
      framework: transformers
      label: [chat, tiny, llama]
      license: apache-2.0
      version: "1.1"
"""
WHISPER = DEFINITION.replace(b"Tiny Llama Chat", b"Whisper Small").replace(b"text-generation", b"speech-recognition") \
    .replace(b"category: llm", b"category: audio").replace(b"A very small dialogue model, fine-tuned for chat on a laptop.",
                                                          b"Speech to text in 99 languages.")


@pytest.fixture(scope="module")
def workbay(tmp_path_factory) -> Iterator[Workbay]:
    """The storage-proxy too: the store's cards are read from the folders' definition files."""
    from workbay.lite import lite_config, start_in_thread

    os.environ["WORKBAY_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    data_dir = tmp_path_factory.mktemp("workbay-model-store")
    base = _free_port_pair()
    handle = start_in_thread(data_dir, base, components=("manager", "webserver", "storage-proxy"),
                             config=lite_config(data_dir, base))
    try:
        yield Workbay(handle.webserver_url, handle.manager_url, AdminAPI.login(handle.manager_url))
    finally:
        handle.stop()


def publish(admin: AdminAPI, name: str, definition: bytes) -> None:
    """A cloneable model folder of project model-store with its model-definition.yaml."""
    project = next(p for p in admin.call("GET", "/admin/projects", q="model-store")["items"]
                   if p["name"] == "model-store")
    made = admin.call("POST", "/folders", {"name": name, "usage_mode": "model", "group": project["id"],
                                           "cloneable": True})
    ticket = admin.call("POST", f"/folders/{made['id']}/request-upload",
                        {"path": "model-definition.yaml", "size": len(definition)})
    resp = httpx.patch(ticket["url"], params={"token": ticket["token"]}, content=definition, headers={
        "Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert resp.status_code == 204, resp.text


async def test_a_user_finds_a_model_and_clones_it(page: Page, workbay: Workbay, shots):
    publish(workbay.admin, "tiny-llama", DEFINITION)
    publish(workbay.admin, "whisper-small", WHISPER)
    email = workbay.admin.new_user("modeler")
    await LoginPage(page).log_in(email, USER_PASSWORD, "/summary")
    shell = Shell(page)

    await page.locator("nav").get_by_role("link", name="Model Store").first.click()
    await page.wait_for_url("**/model-store")
    cards = page.get_by_test_id("model-card")
    await expect(cards).to_have_count(2)
    llama = cards.filter(has_text="Tiny Llama Chat")
    await expect(llama).to_contain_text("text-generation")
    await expect(llama.get_by_test_id("model-label")).to_have_text(["chat", "tiny", "llama"])
    await shots.take(page, "model-store")

    await page.get_by_test_id("model-store-task").select_option("speech-recognition")
    await expect(cards).to_have_count(1)
    await expect(cards.first).to_contain_text("Whisper Small")
    await expect(page).to_have_url(re.compile(r"task=speech-recognition"))
    await page.get_by_test_id("model-store-task").select_option("")
    await page.get_by_role("searchbox", name="Search models").fill("dialogue")
    await expect(cards).to_have_count(1)
    await expect(cards.first).to_contain_text("Tiny Llama Chat")

    await cards.first.get_by_test_id("model-card-open").click()
    detail = shell.dialog()
    await expect(detail.get_by_test_id("model-card-detail")).to_contain_text("LlamaForCausalLM")
    await expect(detail).to_contain_text("apache-2.0")
    await shots.take(page, "model-store-detail")
    await detail.get_by_role("button", name="Clone").click()

    clone = shell.dialog()
    await expect(clone.locator("#mcl-target_name")).to_have_value("tiny-llama-copy")
    await clone.locator("#mcl-target_name").fill("my-llama")
    await shots.take(page, "model-store-clone")
    await clone.get_by_role("button", name="Clone", exact=True).click()
    link = shell.dialog().get_by_test_id("model-clone-link")
    await expect(link).to_be_visible()
    await shots.take(page, "model-store-cloned")
    await link.click()
    await page.wait_for_url(re.compile(r"/data\?tab=models&q=my-llama"))
    await expect(page.locator('#folder-table tr[data-folder="my-llama"]')).to_be_visible()
