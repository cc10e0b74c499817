"""The fields of the three kinds of resource policy (AD-1): how the page shows them, how its form
reads them and how they are exported.  The manager validates them again."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .forms import FieldError, FormData
from .i18n import N_

KINDS = ("keypair", "user", "project")
GIB = 2**30
# What a storage host line grants when it names no permission (same names as the manager's).
HOST_PERMISSIONS = ("create-vfolder", "modify-vfolder", "delete-vfolder", "mount-in-session",
                    "upload-file", "download-file", "invite-others", "set-user-specific-permission")


@dataclass(frozen=True)
class NumberField:
    key: str
    label: str
    default: int | None
    unlimited: int | None | str = "none"  # the API value meaning unlimited; "none": no such value
    minimum: int = 0
    maximum: int | None = None
    unit: str = ""          # "s" (seconds) or "GiB" (bytes on the wire)
    column: str = ""        # a shorter label for the table's header

    @property
    def has_unlimited(self) -> bool:
        return self.unlimited != "none"

    def is_unlimited(self, value: Any) -> bool:
        return self.has_unlimited and value == self.unlimited

    def shown(self, value: Any) -> str:
        """The value as the table and the form show it (GiB for sizes)."""
        if value is None and not self.has_unlimited:
            return "-"
        if self.unit == "GiB":
            return _plain(Decimal(value) / GIB)
        return str(value)

    def parse(self, form: FormData, message: str) -> int | None:
        if self.has_unlimited and form.flag(f"{self.key}__unlimited"):
            return self.unlimited  # type: ignore[return-value]
        text = form.text(self.key)
        try:
            amount = Decimal(text)
        except InvalidOperation as e:
            raise FieldError(self.key, message) from e
        if self.unit == "GiB":
            amount *= GIB
        if amount != amount.to_integral_value() or amount < self.minimum or (
                self.maximum is not None and amount > self.maximum):
            raise FieldError(self.key, message)
        return int(amount)


@dataclass(frozen=True)
class SlotField:
    """One resource slot of a keypair policy's total_resource_slots; missing = unlimited."""
    slot: str
    label: str
    maximum: int
    unit: str = ""
    integral: bool = False

    @property
    def key(self) -> str:
        return "slot_" + self.slot.replace(".", "_")

    def shown(self, slots: dict[str, Any]) -> str:
        value = slots.get(self.slot)
        if value is None or str(value) == "Infinity":
            return ""
        amount = Decimal(str(value))
        return _plain(amount / GIB if self.unit == "GiB" else amount)

    def parse(self, form: FormData, message: str) -> str | None:
        if form.flag(f"{self.key}__unlimited"):
            return None
        try:
            amount = Decimal(form.text(self.key))
        except InvalidOperation as e:
            raise FieldError(self.key, message) from e
        if amount < 0 or amount > self.maximum or (self.integral and amount != amount.to_integral_value()):
            raise FieldError(self.key, message)
        if self.unit == "GiB":
            return str(int(amount * GIB))
        return _plain(amount)


def _plain(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


SLOTS = (
    SlotField("cpu", N_("CPU"), 512, unit="cores"),
    SlotField("mem", N_("Memory"), 1024, unit="GiB"),
    SlotField("cuda.device", N_("CUDA-capable GPU"), 64, integral=True),
    SlotField("cuda.shares", N_("CUDA-capable GPU (fractional)"), 256),
)

FIELDS: dict[str, tuple[NumberField, ...]] = {
    "keypair": (
        NumberField("max_containers_per_session", N_("Containers per session"), 1, minimum=1, maximum=100,
                    column=N_("Cluster size")),
        NumberField("max_session_lifetime", N_("Max session lifetime"), 0, unlimited=0, unit="s",
                    column=N_("Lifetime")),
        NumberField("max_concurrent_sessions", N_("Concurrent sessions"), 30, column=N_("Concurrency")),
        NumberField("max_concurrent_sftp_sessions", N_("Concurrent SFTP sessions"), 1, column=N_("SFTP")),
        NumberField("max_pending_session_count", N_("Max pending sessions"), None, unlimited=None,
                    column=N_("Pending")),
        NumberField("idle_timeout", N_("Idle timeout"), 3600, unlimited=0, maximum=15552000, unit="s"),
    ),
    "user": (
        NumberField("max_folder_count", N_("Max folder count"), 0, unlimited=0, column=N_("Folders")),
        NumberField("max_quota_scope_size", N_("Max folder size"), -1, unlimited=-1, unit="GiB",
                    column=N_("Folder size")),
        NumberField("max_session_count_per_model_session", N_("Max sessions per model service"), 10,
                    column=N_("Sessions per service")),
        NumberField("max_customized_image_count", N_("Max customized images"), 3,
                    column=N_("Custom images")),
    ),
    "project": (
        NumberField("max_folder_count", N_("Max folder count"), 0, unlimited=0, column=N_("Folders")),
        NumberField("max_quota_scope_size", N_("Max folder size"), -1, unlimited=-1, unit="GiB",
                    column=N_("Folder size")),
        NumberField("max_network_count", N_("Max network count"), 3, column=N_("Networks")),
    ),
}
KIND_LABELS = {"keypair": N_("Keypair"), "user": N_("User"), "project": N_("Project")}


def hosts_text(hosts: dict[str, list[str]]) -> str:
    """allowed_folder_hosts as the form's text: one ``host`` or ``host: perm, perm`` a line."""
    lines = []
    for host, perms in sorted((hosts or {}).items()):
        lines.append(host if set(perms) == set(HOST_PERMISSIONS) else f"{host}: {', '.join(perms)}")
    return "\n".join(lines)


def parse_hosts(text: str) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        # a host may itself contain ':' ("local:volume1"); permissions follow the last ": "
        host, _, perms = line.rpartition(": ") if ": " in line else (line, "", "")
        names = [p.strip() for p in perms.split(",") if p.strip()]
        unknown = [p for p in names if p not in HOST_PERMISSIONS]
        if unknown:
            raise FieldError("allowed_folder_hosts", ", ".join(unknown))
        hosts[host.strip()] = names or list(HOST_PERMISSIONS)
    return hosts


def read_policy_form(kind: str, form: FormData, number_message: str, hosts_message: str
                     ) -> tuple[dict[str, Any], dict[str, str]]:
    """The API body of a policy form, and the per-field errors."""
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in FIELDS[kind]:
        try:
            body[field.key] = field.parse(form, number_message)
        except FieldError as e:
            errors[e.field] = e.message
    if kind == "keypair":
        slots: dict[str, str] = {}
        for slot in SLOTS:
            try:
                value = slot.parse(form, number_message)
            except FieldError as e:
                errors[e.field] = e.message
            else:
                if value is not None:
                    slots[slot.slot] = value
        body["total_resource_slots"] = slots
        try:
            body["allowed_folder_hosts"] = parse_hosts(form.raw("allowed_folder_hosts"))
        except FieldError as e:
            errors[e.field] = hosts_message % {"names": e.message}
    return body, errors


def export_json(items: list[dict[str, Any]]) -> str:
    return json.dumps(items, indent=2, ensure_ascii=False, default=str) + "\n"


def export_csv(kind: str, items: list[dict[str, Any]]) -> str:
    keys = ["name", *(f.key for f in FIELDS[kind])]
    if kind == "keypair":
        keys += ["total_resource_slots", "allowed_folder_hosts"]
    keys += sorted({k for item in items for k in item} - set(keys))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(keys)
    for item in items:
        row = []
        for key in keys:
            value = item.get(key)
            row.append(json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list))
                       else "" if value is None else value)
        writer.writerow(row)
    return out.getvalue()
