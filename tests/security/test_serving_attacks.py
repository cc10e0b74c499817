"""An ordinary user attacking model serving through /services: another user's model folder (by
name or by id), a definition path or mount destination that climbs out of its folder, another
service's token.  Each is refused with a 4xx and leaves nothing behind.  (The inference listener's
token and gate checks: tests/integration/test_inference_proxy.py; other users' services answering
404 on every route: the authorization matrix.)"""

from __future__ import annotations

import pytest

from tests.integration.test_folders import expect_error, new_user, unique, upload
from tests.integration.test_services_api import DEFINITION, body, create, field_errors, join_default_project
from tests.integration.test_services_api import world as world  # noqa: F401 - the module's fixture
from workbay.appproxy.tokens import TokenError, verify_service_token


@pytest.fixture(scope="module")
async def victim(world):  # noqa: F811
    h = world["h"]
    user, c = await new_user(h)
    await join_default_project(h, user)
    model = unique("secret-model")
    created = await c.post("/folders", json={"name": model, "usage_mode": "model"})
    await upload(h, c, model, "model-definition.yaml", DEFINITION)
    return {"c": c, "model": model, "model_id": created["id"]}


async def test_another_users_model_folder_is_not_servable(world, victim):  # noqa: F811
    c = world["c"]
    for ref in (victim["model"], victim["model_id"]):
        err = await expect_error(400, c.post("/services", json=body(world, config={"model": ref})))
        assert "config.model" in field_errors(err)
        err = await expect_error(400, c.post("/services", json=body(world, config={
            "extra_mounts": {ref: "/stolen"}})))
        assert field_errors(err)
    assert not await c.get("/services", params={"name": "stolen"})


@pytest.mark.parametrize("path", ["../x/model-definition.yaml", "../../etc/passwd", "/../../model-definition.yaml"])
async def test_a_definition_path_cannot_climb_out_of_the_folder(world, path):  # noqa: F811
    err = await expect_error(400, world["c"].post("/services", json=body(world, config={
        "model_definition_path": path})))
    assert "config.model_definition_path" in field_errors(err)


@pytest.mark.parametrize("dest", ["models", "/models/../../etc", "/home/work/../../root"])
async def test_a_mount_destination_cannot_climb(world, dest):  # noqa: F811
    err = await expect_error(400, world["c"].post("/services", json=body(world, config={
        "model_mount_destination": dest})))
    assert "config.model_mount_destination" in field_errors(err)


async def test_a_token_opens_only_its_own_service(world):  # noqa: F811
    c = world["c"]
    first, _ = await create(world)
    second, _ = await create(world)
    token = (await c.post(f"/services/{first}/token", json={"duration": "1h"}))["token"]
    secret = world["h"].state.ctx.config.secrets.appproxy
    assert verify_service_token(secret, token, first)["sid"] == first
    with pytest.raises(TokenError):
        verify_service_token(secret, token, second)
    # and a token signed with anything but the installation's key is no token
    with pytest.raises(TokenError):
        verify_service_token(secret + "x", token, first)
