"""The Python SDK: signed requests to the manager (keypair mode) or through the webserver (session
mode, cookie).  The CLI and the WebUI's server side both use it."""

from __future__ import annotations

import contextlib
import json as jsonlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from workbay import API_VERSION
from workbay.common import signing


class APIError(Exception):
    """An error answer: ``status`` and the problem body (``type``, ``title``, ``msg``, ``data``)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.type = str(body.get("type", ""))
        self.title = str(body.get("title", ""))
        self.msg = body.get("msg")
        self.data = body.get("data")
        super().__init__(f"{status} {self.title}{': ' + str(self.msg) if self.msg else ''}")

    @property
    def message(self) -> str:
        return str(self.msg or self.title or f"HTTP {self.status}")


def error_from(resp: httpx.Response) -> APIError:
    """The :class:`APIError` of an error answer (its problem body, or its text when not JSON)."""
    try:
        body = resp.json()
        if not isinstance(body, dict):
            body = {"title": str(body)}
    except ValueError:
        body = {"title": resp.text[:200] or resp.reason_phrase}
    return APIError(resp.status_code, body)


class Client:
    """One endpoint, one identity.  ``mode="api"`` signs with a keypair; ``mode="session"``
    sends the login cookie and prefixes paths with ``/func``."""

    def __init__(self, endpoint: str, access_key: str | None = None, secret_key: str | None = None,
                 *, mode: str = "api", cookies: dict[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0,
                 headers: dict[str, str] | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.access_key, self.secret_key = access_key, secret_key
        self.mode = mode
        self.api_version = API_VERSION
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout, cookies=cookies,
                                       headers=headers)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._http.cookies

    @property
    def timeout(self) -> httpx.Timeout:
        return self._http.timeout

    @timeout.setter
    def timeout(self, value: httpx.Timeout | float | None) -> None:
        """For every later request (e.g. no read limit for a query that answers when it has output)."""
        self._http.timeout = value

    def _url_path(self, path: str) -> str:
        if self.mode == "session" and not path.lstrip("/").startswith("server"):
            path = "/func" + path
        base = urlsplit(self.endpoint).path.rstrip("/")
        return base + path

    def _headers(self, method: str, path_and_query: str, content_type: str) -> dict[str, str]:
        headers = {"X-BackendAI-Version": self.api_version, "Content-Type": content_type}
        if self.mode == "api" and self.access_key and self.secret_key:
            host = urlsplit(self.endpoint).netloc
            headers.update(signing.sign_headers(self.access_key, self.secret_key, method,
                                                path_and_query, host, content_type, self.api_version))
        return headers

    async def request(self, method: str, path: str, *, json: Any = None,
                      params: dict[str, Any] | None = None, raw: bool = False) -> Any:
        method = method.upper()
        path = self._url_path(path)
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        path_and_query = f"{path}?{query}" if query else path
        content = None
        ctype = "text/plain"
        if json is not None:
            content = jsonlib.dumps(json).encode()
            ctype = "application/json"
        url = f"{self.endpoint.split('://')[0]}://{urlsplit(self.endpoint).netloc}{path_and_query}"
        resp = await self._http.request(method, url, content=content,
                                        headers=self._headers(method, path_and_query, ctype))
        if resp.status_code >= 400:
            raise error_from(resp)
        if raw:
            return resp
        if resp.status_code == 204 or not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError:
            return resp.text

    @contextlib.asynccontextmanager
    async def stream(self, path: str, *, params: dict[str, Any] | None = None,
                     headers: dict[str, str] | None = None, sign_content_type: str = "application/octet-stream",
                     timeout: httpx.Timeout | None = None, method: str = "GET",
                     json: Any = None) -> AsyncIterator[httpx.Response]:
        """A streaming GET signed like :meth:`request` (same URL and path logic), with ``headers``
        added.  No Content-Type is sent; the signature covers ``sign_content_type``.  ``timeout``
        defaults to the client's.  Error answers raise :class:`APIError`.  With ``json`` (a POST
        whose answer streams, e.g. a service's validate) the body is sent as JSON and signed so."""
        url_path = self._url_path(path)
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        path_and_query = f"{url_path}?{query}" if query else url_path
        sent = {"X-BackendAI-Version": self.api_version, **(headers or {})}
        content = None
        if json is not None:
            content, sign_content_type = jsonlib.dumps(json).encode(), "application/json"
            sent["Content-Type"] = sign_content_type
        if self.mode == "api" and self.access_key and self.secret_key:
            signed = signing.sign_headers(self.access_key, self.secret_key, method, path_and_query,
                                          urlsplit(self.endpoint).netloc, sign_content_type, self.api_version)
            if json is None:
                signed.pop("Content-Type", None)
            sent.update(signed)
        parts = urlsplit(self.endpoint)
        url = f"{parts.scheme}://{parts.netloc}{path_and_query}"
        async with self._http.stream(method, url, headers=sent, content=content,
                                     timeout=timeout or self._http.timeout) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                raise error_from(resp)
            yield resp

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Any:
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> Any:
        return await self.request("PUT", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Any:
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self.request("DELETE", path, **kw)

    # -- session mode (webserver login) --------------------------------------------------------
    async def login(self, username: str, password: str, otp: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"username": username, "password": password}
        if otp:
            body["otp"] = otp
        return await self.request("POST", "/server/login", json=body)

    async def logout(self) -> None:
        await self.request("POST", "/server/logout")
