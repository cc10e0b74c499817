"""The webserver's only way to the manager: HTTP, signed with the logged-in user's keypair.

Pages use the SDK ``Client`` (the same API the CLI uses); the ``/func`` proxy forwards raw
requests through ``forward``.  One connection pool is shared by both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from workbay import API_VERSION
from workbay.client.sdk import Client
from workbay.common import signing

from .sessions import LoginSession

PAGE_TIMEOUT = httpx.Timeout(30.0)
# Streams (SSE) stay open for as long as the browser listens.
PROXY_TIMEOUT = httpx.Timeout(30.0, read=None)


class _Borrowed(httpx.AsyncBaseTransport):
    """Lends the shared transport to a short-lived client without letting it close the pool."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        pass


class ManagerGateway:
    def __init__(self, manager_url: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = manager_url.rstrip("/")
        parts = urlsplit(self.url)
        self.host = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self._transport = transport or httpx.AsyncHTTPTransport()
        self._http = httpx.AsyncClient(transport=_Borrowed(self._transport), timeout=PROXY_TIMEOUT)

    def client(self, session: LoginSession | None = None, timeout: float = 30.0) -> Client:
        """An SDK client signed with the session's keypair (anonymous without one); ``timeout``
        for calls that wait longer (starting an app in a session)."""
        if session is None:
            return self.keyed_client(None, None, timeout)
        return self.keyed_client(session.access_key, session.secret_key, timeout)

    def keyed_client(self, access_key: str | None, secret_key: str | None, timeout: float = 30.0) -> Client:
        return Client(self.url, access_key, secret_key, transport=_Borrowed(self._transport),
                      timeout=timeout)

    async def forward(self, session: LoginSession | None, method: str, path_and_query: str,
                      headers: dict[str, str], body: AsyncIterator[bytes] | bytes | None
                      ) -> httpx.Response:
        """Send one request to the manager (signed when a session is given) and return the
        response unread, for streaming back.  The caller closes it."""
        target = self.base_path + path_and_query
        out = httpx.Headers(headers)
        version = out.setdefault("X-BackendAI-Version", API_VERSION)
        if session is not None:
            # Backend.AI signs SSE/WebSocket requests without a Content-Type as octet-stream.
            ctype = out.get("Content-Type") or "application/octet-stream"
            signed = signing.sign_headers(session.access_key, session.secret_key, method, target,
                                          self.host, ctype, version)
            if "Content-Type" not in out:
                signed.pop("Content-Type")
            out.update(signed)
        url = httpx.URL(self.url).copy_with(raw_path=target.encode("latin-1"))
        request = self._http.build_request(method, url, headers=out, content=body)
        return await self._http.send(request, stream=True)

    async def close(self) -> None:
        await self._http.aclose()
        await self._transport.aclose()
