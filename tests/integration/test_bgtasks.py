"""Background tasks: progress events on the SSE stream Backend.AI's client reads, then the result."""

from __future__ import annotations

import asyncio
import json

from workbay.client.sessions import sse_events


async def test_recalculate_usage_in_the_background_reports_progress(manager):
    sa = manager.admin()
    started = await sa.post("/resource/recalculate-usage", json={"background": True})
    task_id = started["task_id"]
    seen = []

    async def watch():
        async for event, data, _ in sse_events(sa, "/events/background-task", {"task_id": task_id}, reconnect=False):
            seen.append((event, json.loads(data)))
    await asyncio.wait_for(watch(), 30)
    names = [e for e, _ in seen]
    assert names[-1] == "server_close" and names[-2] == "bgtask_done", seen
    assert all(d.get("task_id") == task_id for e, d in seen if e.startswith("bgtask_"))
    task = await sa.get(f"/background-tasks/{task_id}")
    assert task["status"] == "done" and task["kind"] == "recalculate-usage" and "agents" in task["message"]
    assert task_id in {t["task_id"] for t in (await sa.get("/background-tasks"))["items"]}


async def test_a_failed_clone_is_reported_and_leaves_nothing(manager):
    sa = manager.admin()
    await sa.post("/folders", json={"name": "bg-src", "cloneable": True})
    info = await sa.get("/folders/bg-src")
    # the source vanishes from disk behind the manager's back: the copy fails
    import shutil

    from tests.integration.test_folders import folder_dir
    shutil.rmtree(folder_dir(manager, info))
    clone = await sa.post("/folders/bg-src/clone", json={"target_name": "bg-dst"})
    for _ in range(200):
        task = await sa.get(f"/background-tasks/{clone['bgtask_id']}")
        if task["status"] != "running":
            break
        await asyncio.sleep(0.05)
    assert task["status"] == "failed" and task["message"], task
    assert "bg-dst" not in {f["name"] for f in await sa.get("/folders")}
