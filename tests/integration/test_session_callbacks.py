"""A session's callback_url (Backend.AI's, also a model service's, passed to its replicas): each
lifecycle event of the session is POSTed there, best effort, by the manager that publishes it."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from workbay.manager.models.compute import ComputeSession, Image
from workbay.manager.services.session_callbacks import SessionCallbacks

HOOK = "http://hooks.example.org/workbay"


@pytest.fixture
async def received(manager):
    """Every callback the manager sends, instead of the network."""
    got: list[tuple[str, dict]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        got.append((str(request.url), json.loads(request.content)))
        return httpx.Response(204)
    callbacks = manager.state.session_callbacks
    real = callbacks.http
    callbacks.http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    try:
        yield got
    finally:
        await callbacks.http.aclose()
        callbacks.http = real


async def test_lifecycle_events_go_to_the_callback_url(manager, received):
    image = f"cr.test/callbacks/img-{uuid.uuid4().hex[:6]}:1"
    async with manager.state.ctx.db.begin() as s:
        s.add(Image(name=image, image_registry="cr.test", tag="1",
                    architecture=__import__("platform").machine()))
    admin = manager.admin()
    created = await admin.post("/session", json={"image": image, "enqueueOnly": True, "callbackUrl": HOOK})
    plain = await admin.post("/session", json={"image": image, "enqueueOnly": True})
    await manager.state.session_callbacks.drain()
    assert [(url, body["event"]) for url, body in received] == [(HOOK, "enqueued")]
    body = received[0][1]
    assert body["type"] == "session_lifecycle" and body["session_id"] == created["sessionId"]
    assert body["when"] and body["session_name"] == created["sessionName"]
    # the events the lifecycle publishes (agents' reports, the dispatcher) go there too
    async with manager.state.ctx.db() as s:
        sess = await s.get(ComputeSession, uuid.UUID(created["sessionId"]))
        other = await s.get(ComputeSession, uuid.UUID(plain["sessionId"]))
    await manager.state.lifecycle.publish(sess, "session_started", "started")
    await manager.state.lifecycle.publish(sess, "kernel_started", "started")  # kernels' events: not sent
    await manager.state.lifecycle.publish(other, "session_started", "started")  # no callback URL
    await manager.state.session_callbacks.drain()
    assert [body["event"] for _, body in received] == ["enqueued", "started"]


async def test_a_failing_receiver_changes_nothing():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)
    callbacks = SessionCallbacks(transport=httpx.MockTransport(refuse))
    callbacks.notify(HOOK, {"name": "session_terminated", "session_id": "s", "session_name": "n"})
    callbacks.notify(None, {"name": "session_terminated"})
    await callbacks.close()  # no exception: logged only
