"""The WebUI's Serving pages against a real manager and storage-proxy (no agent, no containers):
the list and its empty state, the Start service form (model folders, runtime variants, additional
mounts, field errors from the form and from the manager), create, the detail page and its live
fragment, Edit prefilled, scale, tokens (generate, expiry choices, revoke, the example call),
autoscaling rules (add, edit, delete, errors at their fields), replica errors with "clear errors and
retry", delete with its confirmation, Validate's form problems as a failed verdict, Korean, and
other users getting nothing."""

from __future__ import annotations

import html
import json
import platform
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.integration.test_folders import PASSWORD, upload
from tests.support.webserver import WebVisitor, running_system
from workbay.manager.models import Image
from workbay.manager.models.serving import ModelService, ServiceError

DEFINITION = b"""models:
  - name: echo
    model_path: /models
    service:
      start_command: ["python3", "-m", "http.server", "8000"]
      port: 8000
      health_check:
        path: /
"""


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-serving")) as s:
        yield s


class Browser(WebVisitor):
    def hx(self, target: str | None = None) -> dict[str, str]:
        headers = {"HX-Request": "true", "X-CSRF-Token": self.token}
        if target:
            headers["HX-Target"] = target
        return headers

    async def get(self, url: str, target: str | None = None, htmx: bool = False) -> httpx.Response:
        return await self.http.get(url, headers=self.hx(target) if (htmx or target) else None)

    async def post(self, url: str, data: dict | list | None = None) -> httpx.Response:
        return await self.http.post(url, data=data or {}, headers=self.hx())


def trigger(resp: httpx.Response) -> dict:
    return json.loads(resp.headers.get("HX-Trigger") or "{}")


def toast(resp: httpx.Response) -> str:
    return trigger(resp).get("wb:toast", {}).get("message", "")


def svc_name() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


async def make_user(system) -> tuple[str, object]:
    """A user in the default project, with their manager client (keypair)."""
    h = system.manager
    email = f"sv-{uuid.uuid4().hex[:10]}@example.test"
    admin = h.admin()
    u = await admin.post("/admin/users", json={"email": email, "username": email.split("@")[0], "password": PASSWORD})
    default = next(p for p in (await admin.get("/admin/projects", params={"domain": "default"}))["items"]
                   if p["name"] == "default")
    await admin.post(f"/admin/projects/{default['id']}/members", json={"emails": [email]})
    return email, h.client(u["keypair"]["access_key"], u["keypair"]["secret_key"])


@pytest.fixture(scope="module")
async def world(system):
    h = system.manager
    image = f"cr.test/serving/python-{uuid.uuid4().hex[:6]}:3.11"
    async with h.state.ctx.db.begin() as s:
        s.add(Image(name=image, image_registry="cr.test", tag="3.11", architecture=platform.machine()))
    email, c = await make_user(system)
    model = f"model-{uuid.uuid4().hex[:6]}"
    await c.post("/folders", json={"name": model, "usage_mode": "model"})
    await upload(h, c, model, "model-definition.yaml", DEFINITION)
    data = f"data-{uuid.uuid4().hex[:6]}"
    await c.post("/folders", json={"name": data, "usage_mode": "data"})
    folders = await c.get("/folders")
    items = folders.get("items") if isinstance(folders, dict) else folders
    ids = {f["name"]: str(f["id"]) for f in items}
    return {"email": email, "c": c, "image": image, "model": model, "model_id": ids[model], "data": data,
            "data_id": ids[data]}


@pytest.fixture
async def browser(system, world):
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as client:
        yield await Browser(client).login(world["email"], PASSWORD)


def form(world, **over) -> dict:
    out = {"name": svc_name(), "open_to_public": "off", "model_folder": world["model_id"], "runtime_variant": "custom",
           "model_mount_destination": "/models", "model_definition_path": "", "replicas": "1",
           "image_manual": world["image"], "preset": "custom", "cpu": "1", "mem": "1", "shmem": "0",
           "cluster_mode": "single-node", "cluster_size": "1", "ev_k": "GREETING", "ev_v": "hello"}
    out.update(over)
    return out


async def create(b: Browser, world, **over) -> tuple[str, dict]:
    data = form(world, **over)
    resp = await b.post("/serving/start", data)
    assert resp.status_code == 200, resp.text[:2000]
    location = resp.headers.get("HX-Redirect", "")
    assert re.fullmatch(r"/serving/[0-9a-f-]{32,36}", location), (location, re.findall(r'data-field-error="[^"]+">[^<]+', resp.text))
    return location.rsplit("/", 1)[1], data


async def test_nav_entry_list_and_empty_state(system):
    email, _ = await make_user(system)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as client:
        b = await Browser(client).login(email, PASSWORD)
        page = await b.get("/serving")
    assert page.status_code == 200
    assert 'href="/serving"' in page.text  # the sidebar entry
    assert 'data-testid="serving-empty"' in page.text and 'href="/serving/start"' in page.text
    assert "Start service" in page.text
    assert 'hx-trigger="every 5s' in page.text  # the list refreshes itself
    assert 'id="serving-scope"' not in page.text  # mine/all is for admins


async def test_form_lists_model_folders_runtimes_and_mounts(browser, world):
    page = await browser.get("/serving/start")
    assert page.status_code == 200
    select = re.search(r'<select[^>]*name="model_folder".*?</select>', page.text, re.S).group(0)
    assert world["model"] in select and world["data"] not in select
    mounts = re.findall(r'name="mount" value="([^"]+)"', page.text)
    assert world["data_id"] in mounts and world["model_id"] not in mounts  # model folders are not extra mounts
    variants = re.search(r'<select[^>]*name="runtime_variant".*?</select>', page.text, re.S).group(0)
    for label in ("Custom (default)", "Predefined image command", "vLLM", "NVIDIA NIM", "llama.cpp"):
        assert label in variants
    assert 'value="/models"' in page.text
    assert 'data-sf-validate="/serving/validate"' in page.text
    assert 'data-sf-variant-panel="vllm"' in page.text and "vllm" in page.text  # the variant's defaults


async def test_form_problems_and_manager_refusals_show_at_their_fields(browser, world):
    bad = await browser.post("/serving/start", form(world, replicas="two", model_folder=""))
    assert "HX-Redirect" not in bad.headers and bad.headers.get("HX-Retarget") == "#service-form-page"
    assert re.search(r'data-field-error="replicas">[^<]+', bad.text)
    assert re.search(r'data-field-error="model_folder">[^<]+', bad.text)
    refused = await browser.post("/serving/start", form(world, name="x"))  # the manager's name rule
    assert "HX-Redirect" not in refused.headers
    assert re.search(r'data-field-error="name">[^<]+', refused.text), refused.text[:3000]
    assert 'value="x"' in refused.text  # the form keeps what was typed
    no_image = await browser.post("/serving/start", form(world, image_manual="cr.test/nope/none:1"))
    assert re.search(r'data-field-error="image">[^<]+', no_image.text)


async def test_create_list_detail_live_edit_scale_and_delete(system, browser, world):
    sid, data = await create(browser, world, mount=world["data_id"], **{f"alias:{world['data_id']}": "/data"})
    listing = await browser.get("/serving")
    row = re.search(r'<tr data-service-id="' + sid + r'".*?</tr>', listing.text, re.S).group(0)
    assert data["name"] in row and world["model"] in row and "PROVISIONING" in row
    assert re.search(r'data-testid="service-replicas">0 / 1<', row)
    frag = await browser.get("/serving?status=HEALTHY", target="serving-list")
    assert "<html" not in frag.text and sid not in frag.text  # the status filter
    detail = await browser.get(f"/serving/{sid}")
    assert detail.status_code == 200 and data["name"] in detail.text
    assert f'hx-get="/serving/{sid}/live"' in detail.text and "every 3s" in detail.text
    assert f'href="/serving/{sid}/edit"' in detail.text and f'hx-get="/serving/{sid}/delete"' in detail.text
    assert 'id="svc-scale-form"' in detail.text
    live = await browser.get(f"/serving/{sid}/live", htmx=True)
    assert "<html" not in live.text and 'data-testid="service-stats"' in live.text and "Routes" in live.text
    # Edit: the same form, prefilled
    edit = await browser.get(f"/serving/{sid}/edit")
    assert f'value="{data["name"]}"' in edit.text and 'value="GREETING"' in edit.text and 'value="hello"' in edit.text
    assert re.search(r'<option value="' + world["model_id"] + r'" selected', edit.text)
    assert re.search(r'name="mount" value="' + world["data_id"] + r'"[^>]*checked', edit.text)
    assert 'value="/data"' in edit.text
    saved = await browser.post(f"/serving/{sid}/edit", form(world, name=data["name"], replicas="2", ev_v="bye"))
    assert saved.headers.get("HX-Redirect") == f"/serving/{sid}", saved.text[:2000]
    info = await world["c"].get(f"/services/{sid}")
    assert info["desired_session_count"] == 2 and info["config"]["environ"] == {"GREETING": "bye"}
    # scale
    scaled = await browser.post(f"/serving/{sid}/scale", {"to": "3"})
    assert "3" in toast(scaled) and trigger(scaled).get("wb:changed")
    assert (await world["c"].get(f"/services/{sid}"))["desired_session_count"] == 3
    bad_scale = await browser.post(f"/serving/{sid}/scale", {"to": "many"})
    assert bad_scale.status_code == 422 and toast(bad_scale)
    # delete: the dialog names the service and asks to type it
    dialog = await browser.get(f"/serving/{sid}/delete", htmx=True)
    assert data["name"] in dialog.text and f'data-wb-confirm="{data["name"]}"' in dialog.text
    wrong = await browser.post(f"/serving/{sid}/delete", {"confirm": "nope"})
    assert "Type the service" in html.unescape(wrong.text)
    assert (await world["c"].get(f"/services/{sid}"))["status"] != "TERMINATING"
    gone = await browser.post(f"/serving/{sid}/delete", {"confirm": data["name"]})
    assert data["name"] in toast(gone) and trigger(gone).get("wb:close-modal")
    assert (await world["c"].get(f"/services/{sid}"))["status"] in ("TERMINATING", "DESTROYED")


async def test_tokens_generate_expiry_list_revoke_and_the_example_call(browser, world):
    sid, _ = await create(browser, world)
    panel = await browser.get(f"/serving/{sid}/tokens", htmx=True)
    assert "No tokens yet." in panel.text and "export API_TOKEN=&lt;token&gt;" in panel.text
    made = await browser.post(f"/serving/{sid}/tokens", {"expiry": "24h"})
    token = re.search(r'data-testid="new-token"', made.text) and re.search(
        r'id="new-token" value="([^"]+)"', made.text).group(1)
    assert token and toast(made)
    assert f"export API_TOKEN={token}" in made.text and "Authorization: BackendAI $API_TOKEN" in html.unescape(made.text)
    tokens = (await world["c"].get(f"/services/{sid}/tokens"))["items"]
    assert [t["token"] for t in tokens] == [token]
    expires = datetime.fromisoformat(tokens[0]["expires_at"])
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24, minutes=1)  # the default
    week = await browser.post(f"/serving/{sid}/tokens", {"expiry": "7d"})
    assert week.status_code == 200
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    custom = await browser.post(f"/serving/{sid}/tokens", {"expiry": "custom", "valid_until": until.isoformat()})
    assert custom.status_code == 200
    items = (await world["c"].get(f"/services/{sid}/tokens"))["items"]
    assert len(items) == 3
    assert any(abs(datetime.fromisoformat(t["expires_at"]).replace(tzinfo=UTC) - until) < timedelta(seconds=2)
               for t in items)
    past = await browser.post(f"/serving/{sid}/tokens", {"expiry": "custom",
                                                         "valid_until": (datetime.now(UTC) - timedelta(hours=1)).isoformat()})
    assert 'data-testid="token-error"' in past.text
    assert len((await world["c"].get(f"/services/{sid}/tokens"))["items"]) == 3
    first = next(t for t in items if t["token"] == token)
    revoked = await browser.post(f"/serving/{sid}/tokens/{first['id']}/revoke")
    assert re.search(r'data-token-id="' + first["id"] + r'" data-token-status="revoked"', revoked.text)
    assert "Revoked" in revoked.text


async def test_autoscaling_rules_add_edit_delete(browser, world):
    sid, _ = await create(browser, world)
    panel = await browser.get(f"/serving/{sid}/rules", htmx=True)
    assert "No auto scaling rules" in panel.text
    dialog = await browser.get(f"/serving/{sid}/rules/new", htmx=True)
    assert 'name="metric_source"' in dialog.text and "inference-framework" in dialog.text and "≥" in dialog.text
    rule = {"metric_source": "kernel", "metric_name": "cpu_util", "comparator": "gt", "threshold": "80",
            "step_size": "1", "cooldown_seconds": "300", "min_replicas": "1", "max_replicas": "4"}
    bad = await browser.post(f"/serving/{sid}/rules", {**rule, "threshold": "lots"})
    assert re.search(r'id="rule-threshold-error">[^<]+', bad.text)
    saved = await browser.post(f"/serving/{sid}/rules", rule)
    assert trigger(saved).get("wb:close-modal") and trigger(saved).get("wb:rules-changed")
    panel = await browser.get(f"/serving/{sid}/rules", htmx=True)
    assert "cpu_util &gt; 80" in panel.text and "Scale up" in panel.text and "+1" in panel.text
    rid = re.search(r'data-rule-id="([^"]+)"', panel.text).group(1)
    edit = await browser.get(f"/serving/{sid}/rules/{rid}/edit", htmx=True)
    assert 'value="cpu_util"' in edit.text and 'value="80"' in edit.text
    changed = await browser.post(f"/serving/{sid}/rules/{rid}", {**rule, "comparator": "le", "threshold": "10",
                                                                "step_size": "-1"})
    assert trigger(changed).get("wb:close-modal")
    panel = await browser.get(f"/serving/{sid}/rules", htmx=True)
    assert "cpu_util ≤ 10" in panel.text and "Scale down" in panel.text
    removed = await browser.post(f"/serving/{sid}/rules/{rid}/delete")
    assert "No auto scaling rules" in removed.text
    assert (await world["c"].get(f"/services/{sid}/auto-scaling-rules"))["items"] == []


async def test_errors_panel_and_clear_errors_and_retry(system, browser, world):
    sid, _ = await create(browser, world)
    async with system.manager.state.ctx.db.begin() as s:
        svc = await s.get(ModelService, uuid.UUID(sid))
        svc.retries = 3
        s.add(ServiceError(endpoint_id=svc.id, route_id=uuid.uuid4(), session_id=uuid.uuid4(),
                           message="The model server exited with code 1.",
                           log_tail="Traceback (most recent call last):\nImportError: no module named torch"))
    panel = await browser.get(f"/serving/{sid}/errors", htmx=True)
    assert "The model server exited with code 1." in panel.text and "ImportError: no module named torch" in panel.text
    assert "Clear errors and retry" in panel.text and "3 retries so far" in panel.text
    cleared = await browser.post(f"/serving/{sid}/errors/clear")
    assert "No replica has failed." in cleared.text and toast(cleared)
    got = await world["c"].get(f"/services/{sid}/errors")
    assert got["errors"] == [] and got["retries"] == 0


async def test_validate_answers_the_forms_problems_as_a_failed_verdict(browser, world):
    resp = await browser.post("/serving/validate", form(world, model_folder="", replicas="-1"))
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = re.findall(r"event: (\w+)\ndata: (.*)\n\n", resp.text)
    assert [e for e, _ in events] == ["fields", "verdict"]
    assert set(json.loads(events[0][1])) >= {"model_folder", "replicas"}
    verdict = json.loads(events[1][1])
    assert verdict["ok"] is False and verdict["message"]
    # the manager refuses before its stream starts: its field errors, then a failed verdict
    refused = await browser.post("/serving/validate", form(world, name="x"))
    events = re.findall(r"event: (\w+)\ndata: (.*)\n\n", refused.text)
    assert [e for e, _ in events] == ["fields", "verdict"], refused.text
    assert "name" in json.loads(events[0][1]) and json.loads(events[1][1])["ok"] is False


async def test_korean_and_other_users(system, browser, world):
    sid, data = await create(browser, world)
    browser.http.cookies.set("workbay_lang", "ko")
    email, _ = await make_user(system)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60, headers={"Accept-Language": "ko"}) as client:
        other = await Browser(client).login(email, PASSWORD)
        page = await other.get("/serving")
        assert "서비스 시작" in page.text  # Korean
        assert data["name"] not in page.text
        detail = await other.get(f"/serving/{sid}")
        assert detail.status_code == 404 and data["name"] not in detail.text
        tokens = await other.post(f"/serving/{sid}/tokens", {"expiry": "1h"})
        assert tokens.status_code == 404 and toast(tokens)
        assert (await world["c"].get(f"/services/{sid}/tokens"))["items"] == []


async def test_admins_see_every_owner_and_can_narrow_to_their_own(system, browser, world):
    from tests.support.manager import ADMIN_PASSWORD

    sid, data = await create(browser, world)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=60) as client:
        admin = await Browser(client).login("admin@workbay.local", ADMIN_PASSWORD)
        page = await admin.get("/serving")
        assert 'id="serving-scope"' in page.text and 'data-col="owner"' in page.text
        row = re.search(r'<tr data-service-id="' + sid + r'".*?</tr>', page.text, re.S).group(0)
        assert world["email"] in row
        mine = await admin.get("/serving?scope=mine", target="serving-list")
        assert sid not in mine.text and 'data-col="owner"' not in mine.text
        detail = await admin.get(f"/serving/{sid}")
        assert detail.status_code == 200 and data["name"] in detail.text
