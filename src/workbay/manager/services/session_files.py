"""Files out of a running session (AP-5 `session download`, the SSH dialog's id_container)."""

from __future__ import annotations

import io
import tarfile
import uuid
from typing import TYPE_CHECKING

from workbay.common.errors import GenericBadRequest, InvalidAPIParameters
from workbay.manager.models.compute import Kernel

from .access import Actor
from .compute_ports import KernelOps

if TYPE_CHECKING:
    from .sessions import SessionService

MAX_FILES = 5


def single_file(tar_bytes: bytes, path: str) -> tuple[str, bytes]:
    """The one regular file in a tar that Docker's archive API made of ``path``."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        member = tar.next()  # the archive starts with the path itself
        if member is not None and member.isfile():
            f = tar.extractfile(member)
            return member.name.rsplit("/", 1)[-1], f.read() if f else b""
    raise GenericBadRequest(f"{path} is not a regular file; download it as an archive.")


def multipart(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """Backend.AI's download answer: multipart/mixed, one tar per requested path."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, data in parts:
        out.write(f"--{boundary}\r\nContent-Type: application/x-tar\r\nContent-Encoding: identity\r\n"
                  f"Content-Disposition: attachment; filename=\"{name}.tar\"\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/mixed; boundary={boundary}"


class SessionFiles:
    def __init__(self, sessions: SessionService, kernels: KernelOps) -> None:
        self.sessions = sessions
        self.kernels = kernels

    async def _kernel(self, actor: Actor, ref: str) -> Kernel:
        sess, kernel = await self.sessions._main_kernel(actor, ref)
        if sess.status != "RUNNING" or kernel is None or kernel.agent_addr is None:
            raise GenericBadRequest(f"The session is {sess.status}; files download while it is RUNNING.")
        return kernel

    @staticmethod
    def _check(path: str) -> str:
        if not path or "\x00" in path or len(path) > 4096:
            raise InvalidAPIParameters("Give the path of a file in the session.")
        return path

    async def download_single(self, actor: Actor, ref: str, path: str) -> tuple[str, bytes]:
        kernel = await self._kernel(actor, ref)
        tar = await self.kernels.archive(kernel, self._check(path))
        return single_file(tar, path)

    async def download(self, actor: Actor, ref: str, files: list[str]) -> tuple[bytes, str]:
        if not files or len(files) > MAX_FILES:
            raise InvalidAPIParameters(f"Give 1–{MAX_FILES} paths to download.")
        kernel = await self._kernel(actor, ref)
        parts = []
        for path in files:
            parts.append((path.rstrip("/").rsplit("/", 1)[-1] or "root",
                          await self.kernels.archive(kernel, self._check(path))))
        return multipart(parts)


