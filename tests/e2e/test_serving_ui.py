"""The model-serving journey through the WebUI with real containers and the real app-proxy
(MS-2…MS-8): a user creates a Model folder and uploads a model definition and the stdlib model
server, opens Start service, Validate shows the container log and a healthy verdict, starts the
service and watches it turn HEALTHY, generates a token and calls the endpoint exactly as the page's
example shows, scales to 2 and sees two routes, then deletes the service.  Screenshots (light and
dark) of the list, the form, the validation and the detail page."""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.support import LoginPage, Shell, Workbay, container_system, workbay_of
from tests.support.sessions import DEMO_PASSWORD, IMAGE, System

pytestmark = pytest.mark.timeout(600)
USER = "user@workbay.local"
MODEL_SERVER = Path(__file__).resolve().parents[1] / "support" / "model_server.py"
DEFINITION = """models:
  - name: e2e-model
    model_path: /models
    service:
      start_command: ["python3", "/models/model_server.py", "--port", "8000", "--host", "0.0.0.0"]
      port: 8000
      health_check:
        path: /health
        interval: 2.0
        max_retries: 5
        max_wait_time: 5.0
        initial_delay: 1.0
"""
HEALTHY_WAIT = 240_000  # ms: a replica's container starting on a busy machine


@pytest.fixture(scope="module")
async def system(tmp_path_factory) -> AsyncIterator[System]:
    async with container_system(tmp_path_factory.mktemp("e2e-serving"), "serving journeys", cpu="3",
                                appproxy=True) as sysm:
        yield sysm


@pytest.fixture(scope="module")
def workbay(system: System) -> Workbay:
    return workbay_of(system)


def curl_parts(example: str) -> tuple[str | None, str]:
    """The token and the URL of the page's example call (``export API_TOKEN=…`` then curl)."""
    token = re.search(r"^export API_TOKEN=(\S+)$", example, re.M)
    words = shlex.split(example.split("\n", 1)[1] if token else example)
    return (token.group(1) if token else None), words[-1]


async def test_serving_journey(page: Page, shots, tmp_path):
    shell = Shell(page)
    await LoginPage(page).log_in(USER, DEMO_PASSWORD, "/summary")

    # the sidebar entry; the empty list says what to do
    await page.locator("nav").get_by_role("link", name="Serving").first.click()
    await page.wait_for_url("**/serving")
    await expect(page.get_by_test_id("serving-empty")).to_be_visible()
    await shots.take(page, "70-serving-empty")

    # a Model folder with the model definition and the model server
    folder = f"e2e-model-{uuid.uuid4().hex[:5]}"
    await page.goto("/data")
    await page.locator(".wb-tabs").get_by_role("link", name=re.compile("^Models")).click()
    await page.get_by_role("button", name="Create folder").first.click()
    dialog = shell.dialog()
    await dialog.locator("#fc-name").fill(folder)
    await dialog.locator("#fc-mode-model").check()
    await dialog.get_by_role("button", name="Create", exact=True).click()
    await shell.toast(f"Folder {folder} was created.")
    (tmp_path / "model-definition.yaml").write_text(DEFINITION)
    (tmp_path / "model_server.py").write_bytes(MODEL_SERVER.read_bytes())
    row = page.locator(f'#folder-table tr[data-folder="{folder}"]')
    await row.get_by_role("button", name=f"Open {folder}", exact=True).first.click()
    explorer = shell.dialog()
    await expect(explorer.locator("#explorer-files")).to_be_visible()
    await explorer.locator("#explorer-upload-files").set_input_files(
        [str(tmp_path / "model-definition.yaml"), str(tmp_path / "model_server.py")])
    await expect(explorer.locator("#explorer-uploads .wb-upload-done")).to_have_count(2, timeout=30_000)
    await expect(explorer.locator("#explorer-files")).to_contain_text("model_server.py")
    await page.keyboard.press("Escape")
    await shell.dialog_closed()

    # Start service: the form (MS-2)
    await page.goto("/serving")
    await page.get_by_test_id("start-service").click()
    await page.wait_for_url("**/serving/start")
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    await page.fill("#sf-name", name)
    await page.select_option("#sf-model-folder", label=folder)
    await expect(page.locator('[data-sf-variant-panel="custom"]')).to_be_visible()
    await page.select_option("#sf-variant", "vllm")
    await expect(page.locator('[data-sf-variant-panel="vllm"]')).to_be_visible()
    await expect(page.locator('[data-sf-variant-panel="custom"]')).to_be_hidden()
    await page.select_option("#sf-variant", "custom")
    await page.fill("#sf-image-manual", IMAGE)
    await page.fill("#sf-cpu", "1")
    await page.fill("#sf-mem", "0.5")
    await page.locator("#sf-env-vars input[name=ev_k]").first.fill("MODEL_ID")
    await page.locator("#sf-env-vars input[name=ev_v]").first.fill("e2e-model")
    await page.evaluate("window.scrollTo(0, 0)")
    await shots.take(page, "71-serving-form")

    # Validate with a definition file that is not there: a failed verdict naming the problem
    await page.fill("#sf-def-path", "missing-definition.yaml")
    await page.locator("#sf-validate").click()
    verdict = page.locator("#sf-verdict")
    await expect(verdict).to_have_attribute("data-verdict", "failed", timeout=HEALTHY_WAIT)
    await expect(verdict).to_contain_text("Validation failed")
    await expect(page.locator("#sf-log")).to_contain_text("missing-definition.yaml")
    await page.locator("#sf-validate-modal").get_by_role("button", name="Close").first.click()
    await expect(page.locator("#sf-validate-modal")).to_be_hidden()
    await page.fill("#sf-def-path", "")

    # Validate: the log live, then a clear verdict
    await page.locator("#sf-validate").click()
    verdict = page.locator("#sf-verdict")
    await expect(verdict).to_have_attribute("data-verdict", re.compile("ok|failed"), timeout=HEALTHY_WAIT)
    await expect(page.locator("#sf-log")).not_to_be_empty()
    await shots.take(page, "72-serving-validate")
    assert await verdict.get_attribute("data-verdict") == "ok", await verdict.text_content()
    await page.locator("#sf-validate-modal").get_by_role("button", name="Close").first.click()
    await expect(page.locator("#sf-validate-modal")).to_be_hidden()

    # create; the detail page follows the service until it is HEALTHY
    await page.locator("#sf-submit").click()
    await page.wait_for_url(re.compile(r".*/serving/[0-9a-f-]{32,36}$"))
    status = page.locator("#service-live").get_by_test_id("service-status")
    await expect(status).to_have_text("HEALTHY", timeout=HEALTHY_WAIT)
    await expect(page.locator("#service-routes tbody tr")).to_have_count(1)
    await expect(page.locator("#service-routes").get_by_test_id("route-status")).to_have_text("HEALTHY")
    endpoint = (await page.get_by_test_id("service-endpoint").text_content() or "").strip()
    assert endpoint.rstrip("/").endswith(f"/{name}")

    # a token, and the page's example call works as shown
    await page.locator("#token-form").get_by_role("button", name="Generate token").click()
    await shell.toast("A new token was generated.")
    token = await page.get_by_test_id("new-token").input_value()
    example = await page.get_by_test_id("service-curl").text_content() or ""
    shown_token, url = curl_parts(example)
    assert shown_token == token and url == endpoint
    async with httpx.AsyncClient(timeout=30) as http:
        models = await http.get(url.rstrip("/") + "/v1/models", headers={
            "Content-Type": "application/json", "Authorization": f"BackendAI {shown_token}"})
        assert models.status_code == 200, models.text
        assert models.json()["data"][0]["id"] == "e2e-model"
        refused = await http.get(url.rstrip("/") + "/v1/models")
        assert refused.status_code in (401, 403)
    await expect(page.locator('#service-token-table tr[data-token-status="valid"]')).to_have_count(1)

    # the live figures count the call
    await expect(page.locator('[data-stat="requests"]')).not_to_have_text("0", timeout=30_000)

    # scale to 2: two routes
    await page.fill("#svc-scale", "2")
    await page.locator("#svc-scale-form").get_by_role("button", name="Scale").click()
    await shell.toast("Scaling to 2 replicas.")
    await expect(page.locator("#service-routes tbody tr")).to_have_count(2, timeout=HEALTHY_WAIT)
    await expect(page.locator('#service-routes tr[data-route-status="HEALTHY"]')).to_have_count(2,
                                                                                                timeout=HEALTHY_WAIT)
    await expect(page.get_by_test_id("service-replicas")).to_have_text("2 / 2")
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await shots.take(page, "73-serving-detail")
    await page.locator("#service-rules").scroll_into_view_if_needed()
    await shots.take(page, "75-serving-detail-panels")

    # the list: status, endpoint, replicas
    await page.goto("/serving")
    list_row = page.locator(f'#serving-table tr[data-service-name="{name}"]')
    await expect(list_row.get_by_test_id("service-status")).to_have_text("HEALTHY")
    await expect(list_row.get_by_test_id("service-replicas")).to_have_text("2 / 2")
    await shots.take(page, "74-serving-list")

    # delete, confirmed by typing the name
    await list_row.get_by_role("button", name=f"Delete {name}").click()
    dialog = shell.dialog()
    await expect(dialog).to_contain_text(name)
    await dialog.locator("#confirm-input").fill(name)
    await dialog.get_by_role("button", name="Delete", exact=True).click()
    await shell.toast(f"The service {name} is being deleted.")
    await expect(page.locator(f'#serving-table tr[data-service-name="{name}"]')).to_have_count(0, timeout=120_000)
