"""What every client-facing HTTP/1.1 connection of the app proxy shares.

The circuits' connection (http1.HttpConnection) and the inference endpoint's
(inference.ClientConnection) parse requests the same way with httptools and pause the
client's reads for several reasons at once; this base keeps that in one place. What they
do with a parsed request (cookies, upgrades, service routing, retries) stays in each.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httptools

MAX_HEAD = 64 * 1024  # request line + headers; more is refused (431)


class ClientFront(asyncio.Protocol):
    """httptools callbacks for the request head, reasons-set read pausing, close/abort.

    Subclasses set ``exchange_type`` (the per-request record created at each message begin)
    and initialise the attributes below in their ``__init__``.
    """

    exchange_type: ClassVar[Any]
    transport: asyncio.Transport | None
    closed: bool
    parsing: Any
    read_pauses: set[str]
    queue: Any  # deque of exchanges; the first is being answered
    _url: list[bytes]
    _headers: list[tuple[bytes, bytes]]
    _head_size: int

    def pause_reading(self, why: str) -> None:
        if not self.read_pauses and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.read_pauses.add(why)

    def resume_reading(self, why: str) -> None:
        if why in self.read_pauses:
            self.read_pauses.discard(why)
            if not self.read_pauses and self.transport is not None and not self.closed:
                self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _refuse_and_close(self, answer: bytes) -> None:
        """Answer a request that cannot be parsed (unless a response already began) and close."""
        if self.transport is not None and not self.closed:
            if not any(ex.got_response for ex in self.queue):
                self.transport.write(answer)
            self.transport.close()

    # -- parsing (httptools callbacks) -----------------------------------------------------------
    def on_message_begin(self) -> None:
        self.parsing = self.exchange_type()
        self._url = []
        self._headers = []
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._grow(len(name) + len(value))

    def _grow(self, n: int) -> None:
        self._head_size += n
        if self._head_size > MAX_HEAD:
            raise httptools.HttpParserError("request head too large")
