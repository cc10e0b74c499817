"""The NEO session launcher (CS-2…CS-11) against a real manager (no agent: sessions stay PENDING):
each step renders from the query string, review shows validation errors on the card that has
them, the no-mount warning comes first, and the POST /session body built from the form carries
mounts, mount_map, environ, resources, shared memory, cluster, batch and owner settings."""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import select

from tests.support.webserver import WebVisitor, running_system
from workbay.manager.models.compute import ComputeSession, Image

PASSWORD = "Us3r!pass-word"
IMAGE = "localhost/workbay/python:3.11"
OTHER = "localhost/workbay/python:3.9"


@pytest.fixture(scope="module")
async def system(tmp_path_factory):
    async with running_system(tmp_path_factory.mktemp("web-launcher")) as s:
        async with s.manager.state.ctx.db.begin() as db:
            for name, tag in ((IMAGE, "3.11"), (OTHER, "3.9")):
                db.add(Image(name=name, tag=tag, architecture="x86_64", installed_on=["agent-x"],
                             labels={"org.workbay.display-name": f"Python {tag} (Debian 12)"},
                             min_slots={"cpu": "1", "mem": "268435456"}))
        await s.manager.admin().patch("/admin/resource-policies/keypair/default",
                                      json={"max_containers_per_session": 4})
        yield s


class Browser(WebVisitor):
    @property
    def hx(self) -> dict[str, str]:
        return {"HX-Request": "true", "X-CSRF-Token": self.token}

    async def page(self, **params) -> httpx.Response:
        return await self.http.get("/session/start", params=params)

    async def launch(self, data: dict | list) -> httpx.Response:
        fields: dict[str, list[str]] = {}
        for k, v in (data.items() if isinstance(data, dict) else data):
            fields.setdefault(k, []).append(v)
        resp = await self.http.post("/session/start", data=fields, headers=self.hx)
        return resp


async def new_user(system, prefix: str = "l", project: bool = True) -> str:
    email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
    admin = system.manager.admin()
    projects = (await admin.get("/admin/projects"))["items"]
    default = [p["id"] for p in projects if p["name"] == "default"]
    await admin.post("/admin/users", json={
        "email": email, "username": email.split("@")[0], "password": PASSWORD,
        "project_ids": default if project else []})
    return email


@pytest.fixture
async def user(system):
    email = await new_user(system)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        yield email, await Browser(client).login(email, PASSWORD)


@pytest.fixture
async def admin(system):
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        yield await Browser(client).login("admin@workbay.local", "Adm1n!pass-word")


def section(html: str, step: int) -> str:
    m = re.search(rf'<section id="step-{step}"[^>]*>', html)
    assert m, f"step {step} missing"
    return m.group(0)


async def created_session(system, name: str) -> ComputeSession:
    async with system.manager.state.ctx.db() as db:
        rows = (await db.execute(select(ComputeSession).where(ComputeSession.name == name))).scalars().all()
    assert len(rows) == 1, f"{name}: {rows}"
    return rows[0]


async def test_each_step_renders_and_only_the_chosen_one_is_shown(user):
    email, b = user
    first = await b.page()
    assert first.status_code == 200
    assert "Start new session" in first.text and 'href="/sessions"' in first.text
    assert "hidden" not in section(first.text, 1) and "hidden" in section(first.text, 2)
    # the environment and version selectors come from the image catalog
    assert f'value="{IMAGE}"' in first.text and f'value="{OTHER}"' in first.text
    assert "Python 3.11 (Debian 12)" in first.text
    # step rail: five steps, the current one marked
    assert first.text.count('class="btn wb-rail-btn"') == 5 and 'aria-current="step"' in first.text
    # admin-only parts are hidden from users
    assert "Assign the session to another user" not in first.text and 'id="l-agent"' not in first.text
    for step in (2, 3, 4, 5):
        page = await b.page(step=step)
        assert page.status_code == 200
        assert "hidden" not in section(page.text, step), step
        assert "hidden" in section(page.text, 1)
    step2 = await b.page(step=2)
    assert "Resource group" in step2.text and 'id="l-cpu-range"' in step2.text and "Policy limit" in step2.text
    assert "OMP_NUM_THREADS" in step2.text and "This resource group has no AI accelerators." in step2.text
    step3 = await b.page(step=3)
    assert "You have no folders to mount yet." in step3.text and 'hx-get="/data/new"' in step3.text
    step4 = await b.page(step=4)
    assert "Preopen ports" in step4.text


async def test_the_query_string_keeps_the_form(user, system):
    email, b = user
    client = await system.manager.login(email, PASSWORD)
    await client.post("/folders", json={"name": "keepme"})
    page = await b.page(step=3, type="batch", name="my-job", cmd="echo hi", mount="keepme",
                        **{"alias:keepme": "/data/keep", "ev_k": "FOO", "ev_v": "bar", "ports": "8080"})
    html = page.text
    assert 'value="batch" checked' in html and 'value="my-job"' in html and "echo hi" in html
    assert 'value="keepme" id="l-mount-1" checked' in html and 'value="/data/keep"' in html
    assert 'name="ev_k" value="FOO"' in html and 'name="ev_v" value="bar"' in html
    assert 'id="batch-config" class="wb-subsection">' in html  # shown for batch
    # the Next button carries the whole form to the next step (hx-push-url keeps it in the URL)
    assert 'hx-push-url="true"' in html and 'name="step" value="4"' in html


def cards(html: str) -> dict[int, str]:
    """The review's cards, by step (each from its opening tag)."""
    parts = re.split(r'(<div class="card[^"]*" data-testid="review-\d")', html)[1:]
    return {int(tag[-2]): tag + text for tag, text in zip(parts[::2], parts[1::2], strict=True)}


async def test_review_shows_errors_on_the_card_that_has_them(user):
    """The manager's field errors (its dry run, POST /session/_/validate) on the card of their step."""
    email, b = user
    page = await b.page(step=5, type="batch", name="a b", cmd="", cpu="1", mem="1",
                        ports="80, 8080", **{"ev_k": "1BAD", "ev_v": "x"})
    html = page.text
    one, two, three, four = (cards(html)[n] for n in (1, 2, 3, 4))
    assert "4 to 64 characters" in one and "startupCommand is required" in one and "border-danger" in one
    assert "a variable name is letters" in two
    assert "border-danger" not in three.split(">")[0]
    assert "No folder is mounted" in three
    assert "ports must be between 1024 and 65535" in four
    # the Launch button waits until the problems are fixed; the rail marks the steps with problems
    assert re.search(r'id="l-launch"[^>]*disabled', html)
    assert html.count("wb-rail-step") and "has-error" in html
    # in place on their step too
    assert 'id="l-name-error"' in html and 'id="l-ports-error"' in html
    # the checks against the database come once the request reads well
    zero = cards((await b.page(step=5, version=IMAGE, cpu="0", mem="1")).text)[2]
    assert "cpu must be more than 0" in zero and "border-danger" in zero
    shm = cards((await b.page(step=5, version=IMAGE, cpu="1", mem="1", shmem="2")).text)[2]
    assert "Shared memory cannot exceed the memory size." in shm
    # what the form cannot read is the webserver's to say
    unread = await b.page(step=5, version=IMAGE, cpu="one", ports="eighty")
    assert "Enter a whole number of cores." in cards(unread.text)[2]
    assert "Ports are numbers: eighty" in cards(unread.text)[4]
    # launching anyway answers the review again, with the same errors
    resp = await b.launch({"type": "batch", "name": "a b", "cmd": "", "cpu": "1", "mem": "1"})
    assert resp.status_code == 200 and resp.headers["HX-Retarget"] == "#launcher"
    assert "startupCommand is required" in resp.text


async def test_launch_warns_without_a_folder_then_builds_the_request(user, system):
    email, b = user
    client = await system.manager.login(email, PASSWORD)
    await client.post("/folders", json={"name": "data1"})
    await client.post("/folders", json={"name": "data2"})
    form = {"type": "interactive", "name": "launch-one", "version": IMAGE, "cpu": "1", "mem": "0.25",
            "shmem": "0.0625", "cluster_mode": "single-node", "cluster_size": "1", "count": "1",
            "ports": "8080 8081"}
    warn = await b.launch(form)
    assert warn.status_code == 200 and "No folder is mounted" in warn.text and 'id="l-launch-anyway"' in warn.text
    assert "HX-Redirect" not in warn.headers
    pairs = [*form.items(), ("mount", "data1"), ("mount", "data2"), ("alias:data2", "inputs"),
             ("ev_k", "GREETING"), ("ev_v", "hello world"), ("hpc", "on"), ("omp", "2"), ("openblas", "1")]
    done = await b.launch(pairs)
    assert done.status_code == 200, done.text
    assert done.headers["HX-Redirect"] == "/sessions"
    launched = json.loads(done.headers["HX-Trigger"])["wb:session-launched"]
    assert launched["sessions"][0]["name"] == "launch-one"
    assert launched["summary"]["mounts"] == ["data1", "data2"]
    query = parse_qs(launched["query"])
    assert query["mount"] == ["data1", "data2"] and query["alias:data2"] == ["inputs"] and "step" not in query
    sess = await created_session(system, "launch-one")
    assert sess.status == "PENDING" and sess.session_type == "interactive" and sess.image == IMAGE
    assert sess.environ == {"GREETING": "hello world", "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}
    assert sess.requested_slots["cpu"] == "1" and sess.requested_slots["mem"] == str(256 << 20)
    assert sess.resource_opts == {"shmem": str(64 << 20)}
    assert sess.preopen_ports == [8080, 8081]
    targets = {m["name"]: m["target"] for m in sess.mounts}
    assert targets == {"data1": "/home/work/data1", "data2": "/home/work/inputs"}


async def test_batch_cluster_count_and_the_nomount_confirmation(user, system):
    email, b = user
    form = [("type", "batch"), ("name", "batchy"), ("cmd", "echo done"), ("sched", "on"),
            ("starts_at", "2099-01-01T00:00:00.000Z"), ("timeout_on", "on"), ("timeout", "2"),
            ("timeout_unit", "m"), ("version", OTHER), ("image_manual", IMAGE), ("cpu", "1"), ("mem", "0.5"),
            ("cluster_mode", "multi-node"), ("cluster_size", "2"), ("count", "2"), ("nomount_ok", "on")]
    done = await b.launch(form)
    assert done.headers.get("HX-Redirect") == "/sessions", done.text
    names = [s["name"] for s in json.loads(done.headers["HX-Trigger"])["wb:session-launched"]["sessions"]]
    assert names == ["batchy-1", "batchy-2"]
    sess = await created_session(system, "batchy-1")
    assert sess.session_type == "batch" and sess.startup_command == "echo done"
    assert sess.batch_timeout == 120 and sess.starts_at.year == 2099
    assert sess.cluster_mode == "multi-node" and sess.cluster_size == 2
    assert sess.image == IMAGE  # the typed image name wins over the chosen version
    assert sess.mounts == []


async def test_manager_errors_show_on_the_review(user):
    email, b = user
    resp = await b.launch({"type": "interactive", "image_manual": "localhost/none/such:1", "cpu": "1",
                           "mem": "0.5", "nomount_ok": "on"})
    assert resp.headers["HX-Retarget"] == "#launcher"
    # the manager names the field: the message shows on the card of its step, and in place
    assert "No such environment image" in cards(resp.text)[2] and 'id="l-image-error"' in resp.text


async def test_admin_assigns_the_owner_and_chooses_the_agent(admin, system):
    b = admin
    owner = await new_user(system, "owner")
    page = await b.page(step=1)
    assert "Assign the session to another user" in page.text
    step2 = await b.page(step=2)
    assert 'id="l-agent"' in step2.text and "Automatic (the scheduler chooses)" in step2.text
    missing = await b.http.get("/session/start/owner", params={"owner_email": "nobody@example.com"},
                               headers=b.hx)
    assert "No user has the e-mail address nobody@example.com." in missing.text
    found = await b.http.get("/session/start/owner", params={"owner_email": owner}, headers=b.hx)
    assert 'data-testid="owner-found"' in found.text
    ak = re.search(r'name="owner_ak"[^>]*>\s*<option value="([^"]+)"', found.text).group(1)
    project = re.search(r'name="owner_project"[^>]*>\s*<option value="([^"]+)"', found.text).group(1)
    no_key = await b.launch({"owner": "on", "owner_email": owner, "version": IMAGE, "nomount_ok": "on"})
    assert "Look up the owner" in no_key.text
    done = await b.launch({"owner": "on", "owner_email": owner, "owner_ak": ak, "owner_project": project,
                           "owner_rg": "default", "name": "for-owner", "version": IMAGE, "cpu": "1",
                           "mem": "0.25", "nomount_ok": "on"})
    assert done.headers.get("HX-Redirect") == "/sessions", done.text
    sess = await created_session(system, "for-owner")
    assert sess.access_key == ak and str(sess.project_id) == project


async def test_users_cannot_choose_agents_or_owners(user, system):
    email, b = user
    resp = await b.launch({"agent": "someone", "version": IMAGE, "nomount_ok": "on"})
    assert "Only a superadmin may choose agents" in resp.text  # the manager's refusal
    lookup = await b.http.get("/session/start/owner", params={"owner_email": email}, headers=b.hx)
    assert lookup.status_code == 403
    owner = await b.launch({"owner": "on", "owner_ak": "AKIAXXXX", "version": IMAGE, "name": "not-mine",
                            "nomount_ok": "on", "cpu": "1", "mem": "0.25"})
    assert owner.headers.get("HX-Redirect") == "/sessions"  # the switch is ignored for users
    sess = await created_session(system, "not-mine")
    assert sess.user_id is not None and sess.access_key != "AKIAXXXX"


async def test_a_user_without_a_project_is_told_so(system):
    email = await new_user(system, project=False)
    async with httpx.AsyncClient(base_url=system.web_url, timeout=30) as client:
        b = await Browser(client).login(email, PASSWORD)
        page = await b.page(step=5, version=IMAGE)
        assert "You are not a member of any project" in page.text


async def test_korean_launcher(user):
    email, b = user
    b.http.cookies.set("workbay_lang", "ko")
    await b.http.post("/preferences", data={"language": "ko"}, headers=b.hx)
    page = await b.page(step=5)
    assert "새 세션 시작" in page.text and "검토 및 시작" in page.text


def test_query_round_trip():
    from starlette.datastructures import MultiDict

    from workbay.web.routes.launcher import LaunchForm

    data = MultiDict([("step", "3"), ("type", "batch"), ("cpu", "2"), ("ev_k", "A"), ("ev_v", "1"),
                      ("mount", "x"), ("alias:x", "/y"), ("mount", "z"), ("csrf_token", "t")])
    form = LaunchForm.parse(data)
    assert form.step == 3 and form.env_vars == [("A", "1")] and form.mounts == ["x", "z"]
    again = LaunchForm.parse(MultiDict([(k, v) for k, vs in parse_qs(form.query()).items() for v in vs]))
    assert again.values["cpu"] == "2" and again.mounts == ["x", "z"] and again.aliases == {"x": "/y"}
    assert "csrf_token" not in form.query() and "cluster_mode" not in form.query()  # defaults stay out


async def test_presets_that_do_not_fit_are_hidden_and_refused(user, system):
    email, b = user
    admin = system.manager.admin()
    await admin.post("/admin/resource-presets", json={
        "name": "it-small", "resource_slots": {"cpu": "1", "mem": "512m"}, "shared_memory": "128m"})
    try:
        page = await b.page(step=2)
        assert page.status_code == 200
        assert 'value="it-small"' not in page.text  # no agent here: nothing is free
        refused = await b.launch({"preset": "it-small", "version": IMAGE, "nomount_ok": "on"})
        assert "The preset it-small needs more than what is free." in refused.text
        unknown = await b.launch({"preset": "nope", "version": IMAGE, "nomount_ok": "on"})
        assert "The preset nope does not exist." in unknown.text
    finally:
        await admin.delete("/admin/resource-presets/it-small")


def test_the_managers_field_paths_show_at_their_fields():
    from workbay.client.sdk import APIError
    from workbay.web.routes.launcher import field_place, manager_problems

    assert field_place("name") == (1, "name") and field_place("startupCommand") == (1, "cmd")
    assert field_place("config.resources.cpu") == (2, "cpu") and field_place("config.resources.mem") == (2, "mem")
    assert field_place("config.resources.cuda.shares") == (2, "acc")  # any other slot: the accelerator
    assert field_place("config.environ.FOO") == (2, "environ") and field_place("config.preopen_ports.0") == (4, "ports")
    assert field_place("config.scaling_group") == field_place("config.scalingGroup") == (2, "rg")
    assert field_place("dependencies") is None
    err = APIError(400, {"title": "Invalid", "msg": "two problems", "field_errors": {
        "name": "A session name has …", "dependencies": "no such session"}})
    problems, general = manager_problems(err)
    assert problems == {1: {"name": "A session name has …"}}
    assert general == ("Invalid", "dependencies: no such session")  # a field the form does not have
    problems, general = manager_problems(APIError(403, {"title": "Forbidden", "msg": "Your keypair is inactive."}))
    assert problems == {} and general == ("Forbidden", "Your keypair is inactive.")
