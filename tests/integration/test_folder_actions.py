"""What the manager tells the WebUI about folders (docs/api.md, "For the WebUI"): each folder's
``allowed_actions`` for the caller, checked against what the routes then allow or refuse; the
``field_errors`` of create, clone and rename errors, keyed by the request's wire fields; and a
declared response schema on every /folders route."""

from __future__ import annotations

from tests.integration.test_folders import expect_error, new_user, unique
from tests.support.manager import ManagerHarness
from workbay.common.config import load_config
from workbay.manager.app import create_app

OWNER = ["clone", "delete", "delete_files", "download", "invite", "mkdir", "move_file", "rename", "rename_file",
         "unshare", "update_options", "upload"]
RW_INVITEE = ["delete_files", "download", "leave", "mkdir", "move_file", "rename_file", "upload"]
RO_INVITEE = ["download", "leave"]


async def actions(c, name: str) -> list[str]:
    """The folder's ``allowed_actions`` in the caller's list, checked equal to those of its info."""
    listed = {f["name"]: f for f in await c.get("/folders")}[name]["allowed_actions"]
    assert (await c.get(f"/folders/{name}"))["allowed_actions"] == listed
    return listed


async def share(h: ManagerHarness, oc, name: str, perm: str):
    user, c = await new_user(h)
    await oc.post(f"/folders/{name}/invite", json={"perm": perm, "user_ids": [user["email"]]})
    inv = (await c.get("/folders/invitations/list"))["invitations"][0]
    await c.post("/folders/invitations/accept", json={"inv_id": inv["id"]})
    return user, c


async def test_allowed_actions_match_what_the_routes_allow(manager):
    h = manager
    owner, oc = await new_user(h)
    name = unique("acts")
    await oc.post("/folders", json={"name": name})
    _, rwc = await share(h, oc, name, "rw")
    _, roc = await share(h, oc, name, "ro")
    assert await actions(oc, name) == OWNER
    assert await actions(rwc, name) == RW_INVITEE
    assert await actions(roc, name) == RO_INVITEE

    # Each one offered is taken, each one withheld is refused.
    for c in (rwc, roc):
        await expect_error(403, c.post(f"/folders/{name}/rename", json={"new_name": unique()}))
        await expect_error(403, c.post(f"/folders/{name}/update-options", json={"cloneable": True}))
        await expect_error(403, c.delete(f"/folders/{name}"))
        await expect_error(403, c.post(f"/folders/{name}/invite", json={"perm": "ro", "user_ids": [owner["email"]]}))
        await expect_error(403, c.post(f"/folders/{name}/clone", json={"target_name": unique()}))  # not cloneable
    await expect_error(403, roc.post(f"/folders/{name}/mkdir", json={"path": "ro"}))
    await expect_error(403, roc.post(f"/folders/{name}/request-upload", json={"path": "ro", "size": 1}))
    await rwc.post(f"/folders/{name}/mkdir", json={"path": "rw"})
    await rwc.post(f"/folders/{name}/request-upload", json={"path": "rw/x", "size": 1})
    await rwc.delete(f"/folders/{name}/delete-files", json={"files": ["rw"], "recursive": True})
    await roc.post(f"/folders/{name}/request-download", json={"archive": True})
    await oc.post(f"/folders/{name}/update-options", json={"cloneable": True})
    assert "clone" in await actions(roc, name)
    await roc.post(f"/folders/{name}/clone", json={"target_name": unique("cl")})
    await roc.post(f"/folders/{name}/leave", json={})

    # In the trash: its owner restores or purges; nothing else.
    await oc.delete(f"/folders/{name}")
    assert await actions(oc, name) == ["purge", "restore"]
    await oc.post(f"/folders/{name}/restore")
    assert await actions(oc, name) == OWNER


async def test_allowed_actions_of_project_folders(manager):
    h = manager
    sa = h.admin()
    project = await sa.post("/admin/projects", json={"name": unique("proj")})
    member, mc = await new_user(h)
    _, ac = await new_user(h, role="admin")
    await sa.post(f"/admin/projects/{project['id']}/members", json={"emails": [member["email"]]})
    name = unique("pf")
    await ac.post("/folders", json={"name": name, "group": project["id"], "permission": "ro"})
    assert await actions(mc, name) == ["download"]
    assert await actions(ac, name) == ["clone", "delete", "delete_files", "download", "mkdir", "move_file",
                                       "rename", "rename_file", "share", "unshare", "update_options", "upload"]
    await expect_error(403, mc.post(f"/folders/{name}/share", json={"permission": "rw", "emails": [member["email"]]}))
    await ac.post(f"/folders/{name}/share", json={"permission": "rw", "emails": [member["email"]]})
    assert await actions(mc, name) == RW_INVITEE
    await mc.post(f"/folders/{name}/mkdir", json={"path": "shared"})


def field_errors(e) -> dict[str, str]:
    found = e.body.get("field_errors")
    assert isinstance(found, dict) and found, e.body
    for msg in found.values():
        assert isinstance(msg, str) and msg
    return found


async def test_folder_form_errors_name_their_wire_field(manager):
    h = manager
    _, c = await new_user(h)
    name = unique("fe")
    await c.post("/folders", json={"name": name})
    cases = [
        ({"name": "a/b"}, 400, "name"),
        ({"name": "x" * 65}, 400, "name"),
        ({"name": name}, 400, "name"),                          # taken
        ({"name": unique(), "usage_mode": "pipeline"}, 400, "usage_mode"),
        ({"name": unique(), "permission": "xx"}, 400, "permission"),
        ({"name": unique(), "host": "local:nope"}, 400, "host"),
        ({"name": unique(), "group": "no-such-project"}, 403, "group"),   # users make no project folders
        ({"host": "local:volume1"}, 400, "name"),              # missing
    ]
    for body, status, wire_field in cases:
        e = await expect_error(status, c.post("/folders", json=body))
        assert list(field_errors(e)) == [wire_field], (body, e.body)
        if "name" in body:  # the service's sentence (a validation error's is shorter than msg)
            assert field_errors(e)[wire_field] == e.msg
    e = await expect_error(404, h.admin().post("/folders", json={"name": unique(), "group": "no-such-project"}))
    assert list(field_errors(e)) == ["group"]

    # clone and rename name their own fields
    await c.post(f"/folders/{name}/update-options", json={"cloneable": True})
    e = await expect_error(400, c.post(f"/folders/{name}/clone", json={"target_name": name}))
    assert list(field_errors(e)) == ["target_name"]
    e = await expect_error(400, c.post(f"/folders/{name}/clone", json={"target_name": unique(),
                                                                       "target_host": "local:nope"}))
    assert list(field_errors(e)) == ["target_host"]
    e = await expect_error(400, c.post(f"/folders/{name}/rename", json={"new_name": ".."}))
    assert list(field_errors(e)) == ["new_name"]
    e = await expect_error(400, c.post(f"/folders/{name}/rename", json={}))
    assert list(field_errors(e)) == ["new_name"]
    # an error that belongs to no field has none
    e = await expect_error(404, c.post("/folders/no-such-folder/rename", json={"new_name": unique()}))
    assert "field_errors" not in e.body


def test_every_folder_route_declares_its_answer():
    spec = create_app(load_config()).openapi()
    checked = 0
    for path, ops in spec["paths"].items():
        if not path.startswith("/folders"):
            continue
        for method, op in ops.items():
            ok = [code for code in op["responses"] if code.startswith("2")]
            assert ok, (method, path)
            for code in ok:
                answer = op["responses"][code]
                if code in ("201", "204") and "content" not in answer:
                    continue  # no body, said so
                schema = answer["content"]["application/json"]["schema"]
                assert schema and schema != {}, (method, path, code)
            checked += 1
    assert checked >= 40


async def test_quota_scope_takes_backendais_group_prefix(manager):
    sa = manager.admin()
    project = await sa.post("/admin/projects", json={"name": unique("qproj")})
    wire = await sa.get("/folders/_/quota", params={"host": "local:volume1", "quota_scope_id": f"group:{project['id']}"})
    assert wire["quota_scope_id"] == f"project:{project['id']}"
    await expect_error(400, sa.get("/folders/_/quota", params={"host": "local:volume1",
                                                                 "quota_scope_id": f"team:{project['id']}"}))
