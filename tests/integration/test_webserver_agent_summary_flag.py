"""``webserver.agent_summary_enabled = false``: the Agent Summary leaves the sidebar and the Summary
page, and /agent-summary answers 404 like any address that names no page (on by default)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.manager import ADMIN_PASSWORD
from tests.support.webserver import WebVisitor, running_system
from workbay.common.config import load_config

ADMIN = "admin@workbay.local"
PASSWORD = "Us3r!pass-word"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-no-agent-summary"),
                              agent_summary_enabled=False) as s:
        yield s


def test_the_agent_summary_is_on_unless_switched_off(tmp_path):
    assert load_config(data_dir=tmp_path).webserver.agent_summary_enabled is True
    assert load_config(data_dir=tmp_path, webserver={"agent_summary_enabled": False}
                       ).webserver.agent_summary_enabled is False


async def test_switched_off_agent_summary_is_neither_linked_nor_served(system):
    email = f"u-{uuid.uuid4().hex[:10]}@example.com"
    await system.manager.admin().post("/admin/users", json={
        "email": email, "username": email.split("@")[0], "password": PASSWORD})
    for login, password in ((email, PASSWORD), (ADMIN, ADMIN_PASSWORD)):
        async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
            visitor = await WebVisitor(client).login(login, password)
            summary = await visitor.http.get("/summary")
            assert summary.status_code == 200
            assert 'href="/data"' in summary.text  # the rest of the sidebar is there
            assert 'href="/agent-summary"' not in summary.text and "Agent Summary" not in summary.text
            cards = await visitor.http.get("/summary/resources", headers={"HX-Request": "true"})
            assert cards.status_code == 200 and "System resources" in cards.text
            assert 'href="/agent-summary"' not in cards.text
            page = await visitor.http.get("/agent-summary")
            assert page.status_code == 404 and "Page not found." in page.text
            partial = await visitor.http.get("/agent-summary", headers={"HX-Request": "true"})
            assert partial.status_code == 404
    # not logged in: the login page first, as for every page
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        anonymous = await client.get("/agent-summary")
        assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["location"]
