"""`KVClient`: account-level operations over the REST API, as the `edgekv kv` commands
need them: namespaces (create, list all pages, find by title, rename, delete), key
listing that follows cursors, and bulk put / delete / get split into requests that
respect the API limits (10,000 items and 100 MB per write, 100 keys per get).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from kvcore.client import _http as h
from kvcore.client._transport import SyncTransport
from kvcore.client.binding import KVNamespace
from kvcore.client.types import (
    BulkResult,
    KeyInfo,
    Namespace,
    parse_bulk_result,
    parse_key_info,
    parse_namespace,
)
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import InternalError, NamespaceNotFound, PayloadTooLarge, ValidationError
from kvcore.limits import (
    MAX_BULK_BODY_BYTES,
    MAX_BULK_GET_KEYS,
    MAX_BULK_ITEMS,
    MAX_PER_PAGE,
    resolve_expiration,
)

Progress = Callable[[int], None]  # called with the number of items just done
_BULK_RETRIES = 2


def _no_progress(_: int) -> None:
    return None


def split_batches(
    items: Sequence[Any], max_items: int = MAX_BULK_ITEMS, max_bytes: int = MAX_BULK_BODY_BYTES
) -> Iterator[list[Any]]:
    """Consecutive slices of `items` whose JSON array bodies stay within both limits."""
    if not 1 <= max_items <= MAX_BULK_ITEMS:
        raise ValidationError(f"batch size: {max_items} must be between 1 and {MAX_BULK_ITEMS}")
    batch: list[Any] = []
    size = 2  # the brackets
    for item in items:
        item_size = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")) + 1
        if item_size + 2 > max_bytes:
            key = item.get("key") if isinstance(item, Mapping) else item
            raise PayloadTooLarge(f"bulk item {key!r}: {item_size} bytes does not fit in one request")
        if batch and (len(batch) >= max_items or size + item_size > max_bytes):
            yield batch
            batch, size = [], 2
        batch.append(item)
        size += item_size
    if batch:
        yield batch


class KVClient(SyncTransport):
    """Account-level client (sync). Close it (or use `with`) when done.

    `timeout` is in seconds per request; a lent `http_client` is left open by `close()`."""

    def __init__(
        self,
        endpoint: str,
        account_id: str,
        token: str,
        *,
        timeout: float = h.DEFAULT_TIMEOUT_S,
        http_client: httpx.Client | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(h.auth_headers(token), timeout, http_client)
        self.clock = clock
        self.endpoint = endpoint
        self.account_id = account_id
        self._token = token
        self._paths = h.Paths(endpoint, account_id)

    def namespace(self, namespace_id: str) -> KVNamespace:
        """A binding to one namespace sharing this client's connections."""
        return KVNamespace(
            self.endpoint,
            self.account_id,
            namespace_id,
            self._token,
            http_client=self._http,
            clock=self.clock,
        )

    def _call(self, method: str, url: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """`(result, result_info)` of one enveloped request (`kwargs`: `Call`'s fields)."""
        return h.envelope(self._send(h.Call(method, url, **kwargs)))

    # -- namespaces -------------------------------------------------------------------

    def create_namespace(self, title: str) -> Namespace:
        result, _ = self._call("POST", self._paths.namespaces, json_body={"title": title})
        return parse_namespace(result)

    def get_namespace(self, namespace_id: str) -> Namespace:
        result, _ = self._call("GET", self._paths.namespace(namespace_id))
        return parse_namespace(result)

    def list_namespaces(self, per_page: int = MAX_PER_PAGE) -> list[Namespace]:
        """Every namespace of the account, following pages until one comes back short."""
        out: list[Namespace] = []
        page = 1
        while True:
            params = {"page": str(page), "per_page": str(per_page), "order": "title", "direction": "asc"}
            result, info = self._call("GET", self._paths.namespaces, params=params)
            items = [parse_namespace(item) for item in (result or [])]
            out.extend(items)
            total = info.get("total_count")
            if len(items) < per_page or (isinstance(total, int) and len(out) >= total):
                return out
            page += 1

    def find_namespace(self, title: str) -> Namespace:
        """The namespace with this title (raises NamespaceNotFound)."""
        for ns in self.list_namespaces():
            if ns.title == title:
                return ns
        raise NamespaceNotFound(f"no namespace titled {title!r}")

    def rename_namespace(self, namespace_id: str, title: str) -> Namespace:
        result, _ = self._call("PUT", self._paths.namespace(namespace_id), json_body={"title": title})
        if isinstance(result, dict) and "id" in result:
            return parse_namespace(result)
        return Namespace(id=namespace_id, title=title)  # older servers answer no result

    def delete_namespace(self, namespace_id: str) -> None:
        self._call("DELETE", self._paths.namespace(namespace_id))

    # -- keys -------------------------------------------------------------------------

    def iter_keys(
        self, namespace_id: str, prefix: str | None = None, limit: int | None = None
    ) -> Iterator[KeyInfo]:
        """Every key (with the prefix), following `result_info.cursor` until it is empty."""
        url = f"{self._paths.namespace(namespace_id)}/keys"
        cursor = ""
        seen: set[str] = set()
        while True:
            result, info = self._call("GET", url, params=h.list_params(prefix, limit, cursor))
            for item in result or []:
                yield parse_key_info(item)
            cursor = str(info.get("cursor") or "")
            if not cursor:
                return
            if cursor in seen:
                raise InternalError(f"key listing repeated cursor {cursor!r}")
            seen.add(cursor)

    def list_keys(self, namespace_id: str, prefix: str | None = None) -> list[KeyInfo]:
        return list(self.iter_keys(namespace_id, prefix))

    def get_metadata(self, namespace_id: str, key: str) -> Any:
        result, _ = self._call("GET", self._paths.metadata(namespace_id, key))
        return result

    # -- bulk -------------------------------------------------------------------------

    def bulk_put(
        self,
        namespace_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        batch_size: int = MAX_BULK_ITEMS,
        max_bytes: int = MAX_BULK_BODY_BYTES,
        progress: Progress = _no_progress,
    ) -> BulkResult:
        """Write `{key, value, expiration?, expiration_ttl?, metadata?, base64?}` items.
        Keys the server reports unsuccessful are retried (twice) before being returned.
        Every item's expiration is checked first (`kvcore.limits`), so a bad one sends nothing."""
        now = self.clock.now()
        for i, item in enumerate(items):
            resolve_expiration(now, item.get("expiration"), item.get("expiration_ttl"), f"[{i}].")
        url = f"{self._paths.namespace(namespace_id)}/bulk"
        return self._bulk("PUT", url, list(items), batch_size, max_bytes, progress, lambda it: it["key"])

    def bulk_delete(
        self,
        namespace_id: str,
        keys: Sequence[str],
        *,
        batch_size: int = MAX_BULK_ITEMS,
        progress: Progress = _no_progress,
    ) -> BulkResult:
        url = f"{self._paths.namespace(namespace_id)}/bulk/delete"
        return self._bulk("POST", url, list(keys), batch_size, MAX_BULK_BODY_BYTES, progress, str)

    def _bulk(
        self,
        method: str,
        url: str,
        items: list[Any],
        batch_size: int,
        max_bytes: int,
        progress: Progress,
        key_of: Callable[[Any], str],
    ) -> BulkResult:
        total = BulkResult()
        for batch in split_batches(items, batch_size, max_bytes):
            outcome = parse_bulk_result(self._call(method, url, json_body=batch)[0], len(batch))
            for _ in range(_BULK_RETRIES):
                if not outcome.unsuccessful_keys:
                    break
                failed = set(outcome.unsuccessful_keys)
                retry = [item for item in batch if key_of(item) in failed]
                again = parse_bulk_result(self._call(method, url, json_body=retry)[0], len(retry))
                outcome = BulkResult(
                    outcome.successful_key_count + again.successful_key_count, again.unsuccessful_keys
                )
            total.add(outcome)
            progress(len(batch))
        return total

    def bulk_get(
        self,
        namespace_id: str,
        keys: Iterable[str],
        *,
        type: str = "text",
        with_metadata: bool = False,
        progress: Progress = _no_progress,
    ) -> dict[str, Any]:
        """`{key: value}` (or `{key: {value, metadata, expiration?}}` with metadata; None
        for a missing key), fetched in requests of 100 keys."""
        url = f"{self._paths.namespace(namespace_id)}/bulk/get"
        out: dict[str, Any] = {}
        key_list = list(keys)
        for start in range(0, len(key_list), MAX_BULK_GET_KEYS):
            chunk = key_list[start : start + MAX_BULK_GET_KEYS]
            body: dict[str, Any] = {"keys": chunk, "type": type}
            if with_metadata:
                body["withMetadata"] = True
            result, _ = self._call("POST", url, json_body=body)
            values = result.get("values") if isinstance(result, dict) else None
            if not isinstance(values, dict):
                raise InternalError("bulk get: response has no 'values' object")
            for key in chunk:
                out[key] = values.get(key)
            progress(len(chunk))
        return out
