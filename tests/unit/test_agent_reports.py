"""What the agent reports: its heartbeat always names its architecture and resource group; in its
image list an image whose architecture the engine does not tell is an error that names it, never
the engine's architecture taken as a guess."""

from __future__ import annotations

from typing import Any

import pytest
from aiodocker.exceptions import DockerError

from workbay.agent import errors
from workbay.agent.agent import NodeAgent, image_architecture
from workbay.common.config import load_config

KERNEL_LABELS = {"ai.backend.kernelspec": "1"}


class FakeEngine:
    kind, url, arch = "podman", "unix:///fake.sock", "x86_64"

    def __init__(self, images: list[dict[str, Any]], details: dict[str, Any]) -> None:
        self.images = images
        self.details = details

    async def list_images(self) -> list[dict[str, Any]]:
        return self.images

    async def inspect_image(self, name: str) -> dict[str, Any] | None:
        detail = self.details.get(name)
        if isinstance(detail, Exception):
            raise detail
        return detail


def agent_with(tmp_path, images, details, **agent_config: Any) -> NodeAgent:
    config = load_config(data_dir=tmp_path, secrets={"cluster": "s"},
                         agent={"slots": {"cpu": "1", "mem": "1g"}, "container_ulimits": {"nofile": 1024},
                                **agent_config})
    agent = NodeAgent(config)
    agent.engine = FakeEngine(images, details)  # type: ignore[assignment]
    agent.engine_ready = True
    return agent


def image(id_: str, *tags: str) -> dict[str, Any]:
    return {"Id": id_, "RepoTags": list(tags), "Labels": KERNEL_LABELS, "Size": 10}


def test_image_architecture_is_normalised_or_refused_by_name():
    assert image_architecture("img:1", {"Architecture": "amd64"}) == "x86_64"
    assert image_architecture("img:1", {"Architecture": "arm64"}) == "aarch64"
    for detail in ({}, {"Architecture": ""}, {"Architecture": None}, {"Architecture": "  "}):
        with pytest.raises(errors.ImageUnreadable, match=r"image img:1: the engine reports no architecture"):
            image_architecture("img:1", detail)


async def test_scan_reports_each_tag_with_its_own_architecture(tmp_path):
    agent = agent_with(tmp_path, [image("sha256:a", "a:1", "a:latest"), image("sha256:b", "b:1"),
                                  {"Id": "sha256:c", "RepoTags": ["plain:1"], "Labels": {}}],
                       {"sha256:a": {"Architecture": "arm64"}, "sha256:b": {"Architecture": "amd64"}})
    listed = await agent.scan_images()
    assert [(i["name"], i["architecture"]) for i in listed] == [
        ("a:1", "aarch64"), ("a:latest", "aarch64"), ("b:1", "x86_64")]


async def test_an_image_without_architecture_fails_the_scan_naming_it(tmp_path):
    agent = agent_with(tmp_path, [image("sha256:a", "good:1")], {"sha256:a": {"Architecture": "amd64"}})
    before = await agent.scan_images()
    agent.engine = FakeEngine([image("sha256:a", "good:1"), image("sha256:b", "mystery:2")],  # type: ignore[assignment]
                              {"sha256:a": {"Architecture": "amd64"}, "sha256:b": {"Os": "linux"}})
    with pytest.raises(errors.ImageUnreadable, match="mystery:2") as caught:
        await agent.scan_images()
    assert caught.value.data == {"image": "mystery:2"} and caught.value.status == 502
    assert agent.images == before  # not replaced by a list with a guessed architecture


async def test_an_image_the_engine_cannot_inspect_fails_the_scan_naming_it(tmp_path):
    agent = agent_with(tmp_path, [image("sha256:b", "broken:1")],
                       {"sha256:b": DockerError(500, {"message": "storage corrupted"})})
    with pytest.raises(errors.ImageUnreadable, match=r"image broken:1 \(sha256:b\).*storage corrupted"):
        await agent.scan_images()


async def test_an_image_removed_while_scanning_is_left_out(tmp_path):
    agent = agent_with(tmp_path, [image("sha256:a", "a:1"), image("sha256:gone", "gone:1")],
                       {"sha256:a": {"Architecture": "amd64"}})
    assert [i["name"] for i in await agent.scan_images()] == ["a:1"]


async def test_the_heartbeat_names_architecture_and_resource_group(tmp_path):
    agent = agent_with(tmp_path, [], {}, resource_group="gpu-east")
    agent.engine.arch = "aarch64"  # type: ignore[union-attr]
    payload = await agent.heartbeat_payload()
    assert payload is not None
    assert (payload["architecture"], payload["resource_group"]) == ("aarch64", "gpu-east")
    assert payload["slots"] == {"cpu": "1", "mem": str(2**30)}
    default = agent_with(tmp_path / "other", [], {})
    assert (await default.heartbeat_payload() or {})["resource_group"] == "default"


async def test_no_heartbeat_before_the_engine_answers(tmp_path):
    agent = agent_with(tmp_path, [], {})
    agent.engine_ready = False
    assert await agent.heartbeat_payload() is None
