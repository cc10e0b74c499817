"""What an image's labels declare (pure): minimum resources and service ports."""

from __future__ import annotations

from typing import Any

from workbay.common.domain import parse_bytes

MIN_PREFIX = "ai.backend.resource.min."
SERVICE_PORTS = "ai.backend.service-ports"


def min_slots(labels: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in labels.items():
        if key.startswith(MIN_PREFIX):
            slot = key[len(MIN_PREFIX):]
            try:
                out[slot] = str(parse_bytes(value)) if slot == "mem" else str(value).strip()
            except ValueError:
                continue  # a malformed label is ignored, not fatal for the catalog
    return out


def service_ports(labels: dict[str, str]) -> list[dict[str, Any]]:
    """'jupyter:http:8090,sshd:tcp:2200' -> [{"name","protocol","ports":[int]}]"""
    out = []
    for item in (labels.get(SERVICE_PORTS) or "").split(","):
        parts = item.strip().split(":")
        if len(parts) < 3:
            continue
        name, protocol, ports = parts[0], parts[1], parts[2]
        try:
            port_list = [int(p) for p in ports.strip("[]").split("+") if p]
        except ValueError:
            continue
        out.append({"name": name, "protocol": protocol, "ports": port_list})
    return out


def split_reference(name: str) -> tuple[str, str, str]:
    """'localhost/workbay/python:3.11' -> (registry 'localhost', repository 'workbay/python', tag '3.11')."""
    repo, _, tag = name.rpartition(":")
    if not repo or "/" in tag:
        repo, tag = name, "latest"
    first, _, rest = repo.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    return "", repo, tag
