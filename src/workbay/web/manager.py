"""The webserver's only way to the manager: HTTP (and WebSocket for the stream API), signed with
the logged-in user's keypair.

Pages use the SDK ``Client`` (the same API the CLI uses); the ``/func`` proxy forwards raw
requests through ``forward`` and WebSocket handshakes through ``connect_websocket``.  One HTTP
connection pool is shared by pages and ``forward``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

import httpx
import websockets

from workbay import API_VERSION
from workbay.client.sdk import Client
from workbay.common import signing

from .sessions import LoginSession

PAGE_TIMEOUT = httpx.Timeout(30.0)
# Streams (SSE) stay open for as long as the browser listens.
PROXY_TIMEOUT = httpx.Timeout(30.0, read=None)
# The manager answers a stream handshake only once it has reached the session's app (it may start
# it first: sshd, the terminal), which can take a while on a busy node.
WEBSOCKET_OPEN_TIMEOUT = 180.0


# The manager ends a login whose password has changed since (it answers 401 with the revoked
# header); it names the new epoch when the caller changed their own password.
LOGIN_EPOCH_HEADER = "X-Workbay-Login-Epoch"
LOGIN_REVOKED_HEADER = "X-Workbay-Login-Revoked"


def login_headers(session: LoginSession | None) -> dict[str, str]:
    return {LOGIN_EPOCH_HEADER: session.login_epoch} if session is not None and session.login_epoch else {}


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
        return self.keyed_client(session.access_key, session.secret_key, timeout,
                                 headers=login_headers(session))

    def keyed_client(self, access_key: str | None, secret_key: str | None, timeout: float = 30.0,
                     headers: dict[str, str] | None = None) -> Client:
        return Client(self.url, access_key, secret_key, transport=_Borrowed(self._transport),
                      timeout=timeout, headers=headers)

    async def forward(self, session: LoginSession | None, method: str, path_and_query: str,
                      headers: dict[str, str], body: AsyncIterator[bytes] | bytes | None
                      ) -> httpx.Response:
        """Send one request to the manager (signed when a session is given) and return the
        response unread, for streaming back.  The caller closes it."""
        target = self.base_path + path_and_query
        out = self._signed(session, method, target, headers)
        url = httpx.URL(self.url).copy_with(raw_path=target.encode("latin-1"))
        request = self._http.build_request(method, url, headers=out, content=body)
        return await self._http.send(request, stream=True)

    async def connect_websocket(self, session: LoginSession, path_and_query: str, headers: dict[str, str],
                                subprotocols: Sequence[str] = ()) -> websockets.ClientConnection:
        """Open a WebSocket to the manager, its handshake signed like ``forward`` signs a GET.
        A refused handshake raises ``websockets.InvalidStatus`` carrying the manager's answer;
        an unreachable manager raises ``OSError`` / ``websockets.InvalidHandshake`` /
        ``TimeoutError``."""
        target = self.base_path + path_and_query
        # A handshake has no body: never send a Content-Type, so it is signed as octet-stream.
        plain = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        out = self._signed(session, "GET", target, plain)
        scheme = "wss" if self.url.startswith("https:") else "ws"
        return await websockets.connect(
            f"{scheme}://{self.host}{target}", additional_headers=list(out.items()),
            subprotocols=[websockets.Subprotocol(p) for p in subprotocols] or None,
            # Frames of any size pass through as they are; at most a few are buffered per side.
            max_size=None, compression=None, open_timeout=WEBSOCKET_OPEN_TIMEOUT, close_timeout=10,
            # While the client is slow the relay stops reading the manager (backpressure), pongs
            # included: a keepalive this patient does not end a stream the client merely paused.
            ping_interval=30, ping_timeout=120, user_agent_header=None)

    def _signed(self, session: LoginSession | None, method: str, target: str,
                headers: dict[str, str]) -> httpx.Headers:
        """The request's headers plus the API version and, with a session, the signature."""
        out = httpx.Headers(headers)
        version = out.setdefault("X-BackendAI-Version", API_VERSION)
        out.update(login_headers(session))
        if session is not None:
            # Backend.AI signs SSE/WebSocket requests without a Content-Type as octet-stream.
            ctype = out.get("Content-Type") or "application/octet-stream"
            signed = signing.sign_headers(session.access_key, session.secret_key, method, target,
                                          self.host, ctype, version)
            if "Content-Type" not in out:
                signed.pop("Content-Type")
            out.update(signed)
        return out

    async def close(self) -> None:
        await self._http.aclose()
        await self._transport.aclose()
