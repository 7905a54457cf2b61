"""A Workers KV binding for Python code: `KVNamespace` (sync) and `AsyncKVNamespace`.

Shaped like the Workers runtime API (`get`, `get_with_metadata`, `put`, `delete`,
`list`) and built on httpx over the REST API, so it works against central or any
region's replica. Beyond Cloudflare it speaks edgekv's conditional writes:
`get_with_version` returns the key's version (the `ETag`), `put(..., if_match=v)`,
`put(..., if_none_match=True)` and `delete(..., if_match=v)` raise
`kvcore.errors.PreconditionFailed` when the condition does not hold.

`get_with_metadata` costs two requests, `GET /values/{key}` and `GET /metadata/{key}`
(concurrent in the async flavour). The one-request alternative, bulk get with
`withMetadata`, was rejected: it is served by central even when sent to a replica, so
it skips the region's hot-key cache, and it only carries text values. The pair is made
consistent by versions: when the server puts an `ETag` on both responses and they
differ (a write landed between the two reads), the pair is read again.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal, TypedDict, Unpack, overload

import httpx

from kvcore.client import _http as h
from kvcore.client._transport import AsyncTransport, H, SyncTransport, Transport
from kvcore.client.types import KeyInfo, ListResult, parse_key_info
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import KeyNotFound
from kvcore.limits import encode_metadata

PutValue = str | bytes | bytearray | memoryview | dict[str, Any] | list[Any]
_METADATA_RETRIES = 3


class PutOptions(TypedDict, total=False):
    """The keyword options of `put`, in both flavours (all optional):

    - `expiration`: epoch seconds, at least floor(now) + 60;
    - `expiration_ttl`: seconds from now, at least 60 (either ends by 2^31 - 1);
    - `metadata`: any JSON value (the body is then multipart);
    - `if_match`: the version (`ETag`) the key must have for the write to happen;
    - `if_none_match`: True to write only if the key does not exist.
    """

    expiration: int | float | None
    expiration_ttl: int | float | None
    metadata: Any
    if_match: str | int | None
    if_none_match: bool


class _Calls:
    """Request builders and response parsers of one namespace (no I/O)."""

    def __init__(self, endpoint: str, account_id: str, namespace_id: str, clock: Clock) -> None:
        self.clock = clock
        self.paths = h.Paths(endpoint, account_id)
        self.namespace_id = namespace_id

    def get(self, key: str, consistency: h.Consistency | None) -> h.Call:
        params = {"consistency": str(consistency)} if consistency else None
        return h.Call("GET", self.paths.value(self.namespace_id, key), params=params)

    def metadata(self, key: str, consistency: h.Consistency | None) -> h.Call:
        params = {"consistency": str(consistency)} if consistency else None
        return h.Call("GET", self.paths.metadata(self.namespace_id, key), params=params)

    def put(
        self,
        key: str,
        value: PutValue,
        *,
        expiration: int | float | None = None,
        expiration_ttl: int | float | None = None,
        metadata: Any = None,
        if_match: str | int | None = None,
        if_none_match: bool = False,
    ) -> h.Call:
        """The request of `put(key, value, **options)`, its options checked (`PutOptions`)."""
        body = h.encode_value(value)
        params = h.expiration_params(expiration, expiration_ttl, self.clock.now()) or None
        headers = h.condition_headers(if_match, if_none_match)
        url = self.paths.value(self.namespace_id, key)
        metadata_json = encode_metadata(metadata)
        if metadata_json is None:
            headers["Content-Type"] = "application/octet-stream"
            return h.Call("PUT", url, params=params, headers=headers, content=body)
        files: h.MultipartFiles = {
            "value": ("value", body, "application/octet-stream"),
            "metadata": (None, metadata_json, "application/json"),
        }
        return h.Call("PUT", url, params=params, headers=headers or None, files=files)

    def delete(self, key: str, if_match: str | int | None) -> h.Call:
        headers = h.condition_headers(if_match, False) or None
        return h.Call("DELETE", self.paths.value(self.namespace_id, key), headers=headers)

    def list_keys(self, prefix: str | None, limit: int | None, cursor: str | None) -> h.Call:
        params = h.list_params(prefix, limit, cursor) or None
        return h.Call("GET", f"{self.paths.namespace(self.namespace_id)}/keys", params=params)

    # -- parsers ----------------------------------------------------------------------

    @staticmethod
    def value_or_none(resp: httpx.Response, type: h.ValueType) -> tuple[Any, str | None]:
        """`(value, version)`, or `(None, None)` for a missing key."""
        try:
            h.check(resp)
        except KeyNotFound:
            return None, None
        return h.decode_value(resp.content, type), h.parse_etag(resp.headers.get("etag"))

    @staticmethod
    def metadata_or_missing(resp: httpx.Response) -> tuple[bool, Any, str | None]:
        """`(found, metadata, version)`."""
        try:
            result, _ = h.envelope(resp)
        except KeyNotFound:
            return False, None, None
        return True, result, h.parse_etag(resp.headers.get("etag"))

    @staticmethod
    def deleted(resp: httpx.Response, conditional: bool) -> None:
        try:
            h.check(resp)
        except KeyNotFound:
            # Deleting a missing key succeeds, as with the Workers binding. With a
            # condition a missing key does not match: keep the error.
            if conditional:
                raise

    @staticmethod
    def list_result(resp: httpx.Response) -> ListResult:
        result, info = h.envelope(resp)
        keys: list[KeyInfo] = [parse_key_info(item) for item in (result or [])]
        cursor = info.get("cursor") or None
        return ListResult(keys=keys, list_complete=cursor is None, cursor=cursor)


def _consistent_pair(
    value: Any, version: str | None, found: bool, metadata: Any, meta_version: str | None
) -> tuple[bool, Any, Any]:
    """`(done, value, metadata)` for one attempt of get_with_metadata."""
    if value is None and not found:
        return True, None, None
    if value is None or not found:
        return False, None, None  # created or deleted between the two reads
    if version is None or meta_version is None or version == meta_version:
        return True, value, metadata
    return False, value, metadata


class _Binding(Transport[H]):
    """What both flavours share: the namespace, its `_Calls` and the transport's client."""

    def __init__(
        self,
        endpoint: str,
        account_id: str,
        namespace_id: str,
        token: str,
        *,
        timeout: float = h.DEFAULT_TIMEOUT_S,
        http_client: H | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._calls = _Calls(endpoint, account_id, namespace_id, clock)
        super().__init__(h.auth_headers(token), timeout, http_client)

    @property
    def namespace_id(self) -> str:
        return self._calls.namespace_id


class KVNamespace(_Binding[httpx.Client], SyncTransport):
    """A synchronous binding to one namespace. Close it (or use `with`) when done.

    `KVNamespace(endpoint, account_id, namespace_id, token, *, timeout=30.0,
    http_client=None, clock=SYSTEM_CLOCK)`: `timeout` in seconds per request; a lent
    `http_client` is left open by `close()`."""

    @overload
    def get(
        self, key: str, type: Literal["text"] = "text", consistency: h.Consistency | None = None
    ) -> str | None: ...
    @overload
    def get(
        self, key: str, type: Literal["bytes"], consistency: h.Consistency | None = None
    ) -> bytes | None: ...
    @overload
    def get(self, key: str, type: Literal["json"], consistency: h.Consistency | None = None) -> Any: ...
    def get(self, key: str, type: h.ValueType = "text", consistency: h.Consistency | None = None) -> Any:
        """The value decoded as `type` ("text", "json" or "bytes"), or None when missing.
        `consistency="strong"` makes a replica answer from central."""
        return self.get_with_version(key, type, consistency)[0]

    def get_with_version(
        self, key: str, type: h.ValueType = "text", consistency: h.Consistency | None = None
    ) -> tuple[Any, str | None]:
        """`(value, version)`: the version is the `ETag`, to pass back as `if_match`."""
        return self._calls.value_or_none(self._send(self._calls.get(key, consistency)), type)

    def get_with_metadata(
        self, key: str, type: h.ValueType = "text", consistency: h.Consistency | None = None
    ) -> tuple[Any, Any]:
        """`(value, metadata)`; `(None, None)` for a missing key."""
        value: Any = None
        metadata: Any = None
        for _ in range(_METADATA_RETRIES):
            value, version = self.get_with_version(key, type, consistency)
            if value is None:
                return None, None
            found, metadata, meta_version = self._calls.metadata_or_missing(
                self._send(self._calls.metadata(key, consistency))
            )
            done, value, metadata = _consistent_pair(value, version, found, metadata, meta_version)
            if done:
                break
        return value, metadata

    def put(self, key: str, value: PutValue, **options: Unpack[PutOptions]) -> None:
        """Write a value: str as UTF-8, bytes as is, dict/list as JSON. The body is raw
        (`application/octet-stream`), or multipart when `metadata` is given. The keyword
        options are `PutOptions`. A bad expiration is `ValidationError` before anything is
        sent; an unmet condition is `PreconditionFailed`."""
        h.check(self._send(self._calls.put(key, value, **options)))

    def delete(self, key: str, *, if_match: str | int | None = None) -> None:
        """Delete a key; a missing key is not an error unless `if_match` is given."""
        self._calls.deleted(self._send(self._calls.delete(key, if_match)), if_match is not None)

    def list(
        self, prefix: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> ListResult:
        """One page of keys; pass `cursor` back until `list_complete`."""
        return self._calls.list_result(self._send(self._calls.list_keys(prefix, limit, cursor)))


class AsyncKVNamespace(_Binding[httpx.AsyncClient], AsyncTransport):
    """The asyncio flavour of `KVNamespace`. Close it (or use `async with`) when done."""

    @overload
    async def get(
        self, key: str, type: Literal["text"] = "text", consistency: h.Consistency | None = None
    ) -> str | None: ...
    @overload
    async def get(
        self, key: str, type: Literal["bytes"], consistency: h.Consistency | None = None
    ) -> bytes | None: ...
    @overload
    async def get(self, key: str, type: Literal["json"], consistency: h.Consistency | None = None) -> Any: ...
    async def get(
        self, key: str, type: h.ValueType = "text", consistency: h.Consistency | None = None
    ) -> Any:
        return (await self.get_with_version(key, type, consistency))[0]

    async def get_with_version(
        self, key: str, type: h.ValueType = "text", consistency: h.Consistency | None = None
    ) -> tuple[Any, str | None]:
        return self._calls.value_or_none(await self._send(self._calls.get(key, consistency)), type)

    async def get_with_metadata(
        self, key: str, type: h.ValueType = "text", consistency: h.Consistency | None = None
    ) -> tuple[Any, Any]:
        value: Any = None
        metadata: Any = None
        for _ in range(_METADATA_RETRIES):
            value_resp, meta_resp = await asyncio.gather(
                self._send(self._calls.get(key, consistency)),
                self._send(self._calls.metadata(key, consistency)),
            )
            value, version = self._calls.value_or_none(value_resp, type)
            found, metadata, meta_version = self._calls.metadata_or_missing(meta_resp)
            done, value, metadata = _consistent_pair(value, version, found, metadata, meta_version)
            if done:
                break
        return value, metadata

    async def put(self, key: str, value: PutValue, **options: Unpack[PutOptions]) -> None:
        h.check(await self._send(self._calls.put(key, value, **options)))

    async def delete(self, key: str, *, if_match: str | int | None = None) -> None:
        self._calls.deleted(await self._send(self._calls.delete(key, if_match)), if_match is not None)

    async def list(
        self, prefix: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> ListResult:
        return self._calls.list_result(await self._send(self._calls.list_keys(prefix, limit, cursor)))
