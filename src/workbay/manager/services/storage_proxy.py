"""The manager's client of the storage-proxy (docs/storage-api.md).

Folder administration goes to the manager-facing API with the storage secret; file operations the
manager performs for a user (list, mkdir, rename, move, delete) go to the client-facing API with a
``files`` token scoped to that folder, exactly as a browser would."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from workbay.common.config import WorkbayConfig
from workbay.common.errors import BackendError, ServiceUnavailable
from workbay.storage.tokens import files_action, issue_token

log = logging.getLogger(__name__)


class StorageProxyError(BackendError):
    """A problem answered by the storage-proxy, relayed to the caller as it came."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("msg"), data=body.get("data"),
                         title=str(body.get("title") or "Storage error."))
        self.status = status
        kind = str(body.get("type", "")).rsplit("/", 1)[-1]
        self.kind = kind or "generic-bad-request"


def volume_of(host: str) -> str:
    """``local:volume1`` → ``volume1`` (the proxy accepts both; the manager sends the volume)."""
    return host.split(":", 1)[1] if ":" in host else host


class StorageProxy:
    def __init__(self, config: WorkbayConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.secret = config.secrets.storage
        self.client_url = config.storage.client_api_url
        self._manager = httpx.AsyncClient(base_url=config.storage.manager_api_url, transport=transport,
                                          headers={"X-Workbay-Secret": self.secret}, timeout=60.0)
        # The manager's own calls to the client-facing API use the internal address.
        internal = f"http://{config.storage.host}:{config.storage.client_port}"
        self._client = httpx.AsyncClient(base_url=internal, transport=transport, timeout=60.0)

    async def close(self) -> None:
        await self._manager.aclose()
        await self._client.aclose()

    async def _call(self, http: httpx.AsyncClient, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await http.request(method, path, **kw)
        except httpx.HTTPError as e:
            log.warning("storage-proxy unreachable: %s %s: %s", method, path, e)
            raise ServiceUnavailable("The storage proxy is unreachable; try again later.") from e
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"title": resp.text[:200] or resp.reason_phrase}
            if resp.status_code >= 500:
                log.error("storage-proxy error %s on %s %s: %s", resp.status_code, method, path, body)
            raise StorageProxyError(resp.status_code, body if isinstance(body, dict) else {})
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    async def manager_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self._call(self._manager, method, path, json=body)

    # -- folders ---------------------------------------------------------------------------------
    async def _object(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A call whose answer is a JSON object (the storage-proxy's API answers objects)."""
        out = await self.manager_call(method, path, body)
        if not isinstance(out, dict):
            raise StorageProxyError(502, {"title": f"The storage proxy answered {path} with no object."})
        return out

    async def volumes(self) -> list[dict[str, Any]]:
        return list((await self._object("GET", "/volumes"))["volumes"])

    async def create_folder(self, host: str, vfid: str, quota_scope_id: str,
                            owner: list[int] | None = None) -> dict[str, Any]:
        return await self._object("POST", "/folder/create", {
            "volume": volume_of(host), "vfid": vfid, "quota_scope_id": quota_scope_id, "owner": owner})

    async def delete_folder(self, host: str, vfid: str) -> None:
        await self.manager_call("POST", "/folder/delete", {"volume": volume_of(host), "vfid": vfid})

    async def clone_folder(self, src_host: str, src_vfid: str, dst_host: str, dst_vfid: str,
                           dst_quota_scope_id: str, owner: list[int] | None = None) -> dict[str, Any]:
        return await self._object("POST", "/folder/clone", {
            "src_volume": volume_of(src_host), "src_vfid": src_vfid, "dst_volume": volume_of(dst_host),
            "dst_vfid": dst_vfid, "dst_quota_scope_id": dst_quota_scope_id, "owner": owner})

    async def usage(self, host: str, vfid: str) -> dict[str, Any]:
        return await self._object("POST", "/folder/usage", {"volume": volume_of(host), "vfid": vfid})

    async def folders_usage(self, host: str, vfids: list[str]) -> dict[str, dict[str, Any] | None]:
        """Usage of many folders on one host in one call (cached by the proxy)."""
        out = await self._object("POST", "/folders/usage", {"volume": volume_of(host), "vfids": vfids})
        return dict(out["usage"])

    async def mount_path(self, host: str, vfid: str) -> str:
        out = await self._object("POST", "/folder/mount-path", {"volume": volume_of(host), "vfid": vfid})
        return str(out["path"])

    async def prepare_upload(self, host: str, vfid: str, relpath: str, size: int,
                             session: str | None = None, owner: list[int] | None = None) -> None:
        await self.manager_call("POST", "/folder/file/prepare-upload", {
            "volume": volume_of(host), "vfid": vfid, "relpath": relpath, "size": size, "session": session,
            "owner": owner})

    # -- quota scopes ----------------------------------------------------------------------------
    async def get_quota(self, host: str, quota_scope_id: str, usage: bool = True) -> dict[str, Any]:
        return await self._object("GET", "/quota-scope", {
            "volume": volume_of(host), "quota_scope_id": quota_scope_id, "usage": usage})

    async def set_quota(self, host: str, quota_scope_id: str, limit_bytes: int | None) -> dict[str, Any]:
        body = {"volume": volume_of(host), "quota_scope_id": quota_scope_id}
        if limit_bytes is None:
            return await self._object("DELETE", "/quota-scope", body)
        return await self._object("PUT", "/quota-scope", {**body, "limit_bytes": limit_bytes})

    # -- files, through the client-facing API ----------------------------------------------------
    def token(self, op: str, host: str, vfid: str, relpath: str = "", **extra: Any) -> str:
        return issue_token(self.secret, op, volume_of(host), vfid, relpath, self.config.storage.token_ttl,
                           **extra)

    async def read_file(self, host: str, vfid: str, relpath: str, max_bytes: int) -> bytes:
        """A small file's bytes (a model definition), read through the client API's download with
        a token for that file only; a file over ``max_bytes`` is refused (413) without reading on."""
        token = self.token("download", host, vfid, relpath)
        try:
            async with self._client.stream("GET", "/download",
                                           headers={"Authorization": f"Bearer {token}"}) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    try:
                        body = resp.json()
                    except ValueError:
                        body = {"title": resp.text[:200] or resp.reason_phrase}
                    raise StorageProxyError(resp.status_code, body if isinstance(body, dict) else {})
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise StorageProxyError(413, {"title": f"The file is larger than {max_bytes} bytes."})
                return bytes(data)
        except httpx.HTTPError as e:
            log.warning("storage-proxy unreachable: GET /download: %s", e)
            raise ServiceUnavailable("The storage proxy is unreachable; try again later.") from e

    async def files_call(self, method: str, endpoint: str, host: str, vfid: str,
                         owner: list[int] | None = None, **params: Any) -> Any:
        """``owner``: who gets what the call creates (the acting user's container uid/gid).  The
        token allows this one action only, lives a minute at most (storage.tokens) and travels in
        a header or the body, never in a URL that a log line could keep."""
        claims: dict[str, Any] = {"action": files_action(endpoint)}
        if owner:
            claims["owner"] = owner
        token = self.token("files", host, vfid, **claims)
        auth = {"Authorization": f"Bearer {token}"}
        if method == "GET":
            return await self._call(self._client, method, endpoint, params=params, headers=auth)
        return await self._call(self._client, method, endpoint, json=params, headers=auth)
