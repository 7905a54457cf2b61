"""Central's REST backend: the `kvcore.rest.backend.Backend` protocol over the store.

Reads are direct synchronous calls (RocksDB point reads and in-memory catalog
lookups, far cheaper than a thread hop); writes go through the store's `a*` coroutines,
which queue onto the group-commit writer without holding a thread. The store may be
wrapped (e.g. by `central.writes.MeteredWrites`), as long as it offers these calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import KeyNotFound
from kvcore.model import (
    BulkResult,
    Condition,
    Entry,
    KeyPage,
    Namespace,
    ReadResult,
    Token,
    WriteItem,
    WriteResult,
)


class StoreCalls(Protocol):
    """The part of `kvcore.store.base.Store` this backend uses."""

    def get_namespace(self, account_id: str, namespace_id: str) -> Namespace: ...
    def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]: ...
    async def acreate_namespace(self, account_id: str, title: str) -> Namespace: ...
    async def arename_namespace(self, account_id: str, namespace_id: str, title: str) -> Namespace: ...
    async def adelete_namespace(self, account_id: str, namespace_id: str) -> None: ...
    def get(self, account_id: str, namespace_id: str, key: str) -> Entry | None: ...
    def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]: ...
    def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage: ...
    async def aget(self, account_id: str, namespace_id: str, key: str) -> Entry | None: ...
    async def abulk_get(
        self, account_id: str, namespace_id: str, keys: Sequence[str]
    ) -> list[Entry | None]: ...
    async def alist_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage: ...
    async def aput(
        self, account_id: str, namespace_id: str, item: WriteItem, condition: Condition = ...
    ) -> WriteResult: ...
    async def adelete(
        self, account_id: str, namespace_id: str, key: str, condition: Condition = ...
    ) -> WriteResult: ...
    async def abulk_put(
        self, account_id: str, namespace_id: str, items: Sequence[WriteItem]
    ) -> BulkResult: ...
    async def abulk_delete(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> BulkResult: ...
    def token_by_hash(self, secret_hash: str) -> Token | None: ...


class StoreBackend:
    def __init__(self, store: StoreCalls, *, clock: Clock = SYSTEM_CLOCK, region: str = "central") -> None:
        self._store = store
        self._clock = clock
        self._region = region

    @property
    def region(self) -> str:
        return self._region

    def now(self) -> float:
        return self._clock.now()

    async def authenticate(self, secret_hash: str) -> Token | None:
        return self._store.token_by_hash(secret_hash)

    # -- namespaces

    async def create_namespace(self, account_id: str, title: str) -> Namespace:
        return await self._store.acreate_namespace(account_id, title)

    async def get_namespace(self, account_id: str, namespace_id: str) -> Namespace:
        return self._store.get_namespace(account_id, namespace_id)

    async def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]:
        return self._store.list_namespaces(account_id, page, per_page, order, direction)

    async def rename_namespace(self, account_id: str, namespace_id: str, title: str) -> Namespace:
        return await self._store.arename_namespace(account_id, namespace_id, title)

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        await self._store.adelete_namespace(account_id, namespace_id)

    # -- entries

    async def put(
        self, account_id: str, namespace_id: str, item: WriteItem, condition: Condition
    ) -> WriteResult:
        return await self._store.aput(account_id, namespace_id, item, condition)

    async def get(
        self,
        account_id: str,
        namespace_id: str,
        key: str,
        *,
        strong: bool = False,
        metadata_only: bool = False,
    ) -> ReadResult:
        entry = await self._store.aget(account_id, namespace_id, key)
        if entry is None:
            raise KeyNotFound("get: 'key not found'")
        return ReadResult(entry=entry, age_s=0.0, source="central")

    async def delete(self, account_id: str, namespace_id: str, key: str, condition: Condition) -> WriteResult:
        return await self._store.adelete(account_id, namespace_id, key, condition)

    async def bulk_put(self, account_id: str, namespace_id: str, items: Sequence[WriteItem]) -> BulkResult:
        return await self._store.abulk_put(account_id, namespace_id, items)

    async def bulk_delete(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> BulkResult:
        return await self._store.abulk_delete(account_id, namespace_id, keys)

    async def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        return await self._store.abulk_get(account_id, namespace_id, keys)

    async def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage:
        return await self._store.alist_keys(account_id, namespace_id, prefix, limit, cursor)

    async def ready(self) -> tuple[bool, str]:
        return True, "ok"
