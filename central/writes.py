"""Durable writes with their metrics, shared by the gRPC and REST front doors.

`MeteredWrites` is the store seen through `edgekv_writes_total{op}` and
`edgekv_write_duration_seconds` (queue + group commit + WAL sync). It wraps the
store's async writes under their own names (`aput`, ...) and forwards every other
attribute, the sync methods included, to the store, so it can stand wherever a
`Store` is expected and both front doors count writes the same way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from kvcore.errors import KVError
from kvcore.metrics import Metrics
from kvcore.model import NO_CONDITION, BulkResult, Condition, Namespace, WriteItem, WriteResult
from kvcore.store.base import PointWrite, Store

T = TypeVar("T")


class MeteredWrites:
    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        self._region = metrics.region

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def _timed(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        start = time.perf_counter()
        result = await call()
        self._metrics.write_duration.labels(self._region).observe(time.perf_counter() - start)
        self._metrics.writes.labels(self._region, op).inc()
        return result

    async def acreate_namespace(self, account_id: str, title: str) -> Namespace:
        return await self._timed("namespace_create", lambda: self._store.acreate_namespace(account_id, title))

    async def arename_namespace(self, account_id: str, namespace_id: str, title: str) -> Namespace:
        return await self._timed(
            "namespace_rename", lambda: self._store.arename_namespace(account_id, namespace_id, title)
        )

    async def adelete_namespace(self, account_id: str, namespace_id: str) -> None:
        await self._timed("namespace_delete", lambda: self._store.adelete_namespace(account_id, namespace_id))

    async def aput(
        self, account_id: str, namespace_id: str, item: WriteItem, condition: Condition = NO_CONDITION
    ) -> WriteResult:
        return await self._timed("put", lambda: self._store.aput(account_id, namespace_id, item, condition))

    async def adelete(
        self, account_id: str, namespace_id: str, key: str, condition: Condition = NO_CONDITION
    ) -> WriteResult:
        return await self._timed(
            "delete", lambda: self._store.adelete(account_id, namespace_id, key, condition)
        )

    async def abulk_put(self, account_id: str, namespace_id: str, items: Sequence[WriteItem]) -> BulkResult:
        return await self._timed("bulk_put", lambda: self._store.abulk_put(account_id, namespace_id, items))

    async def abulk_delete(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> BulkResult:
        return await self._timed(
            "bulk_delete", lambda: self._store.abulk_delete(account_id, namespace_id, keys)
        )

    async def awrite_many(self, writes: Sequence[PointWrite]) -> list[WriteResult | KVError]:
        """Each successful write counted (`put` or `delete`) and observed with the group's
        duration, as the unary calls count theirs."""
        start = time.perf_counter()
        results = await self._store.awrite_many(writes)
        elapsed = time.perf_counter() - start
        hist = self._metrics.write_duration.labels(self._region)
        puts = deletes = 0
        for w, r in zip(writes, results, strict=True):
            if isinstance(r, KVError):
                continue
            hist.observe(elapsed)
            if w.item is not None:
                puts += 1
            else:
                deletes += 1
        if puts:
            self._metrics.writes.labels(self._region, "put").inc(puts)
        if deletes:
            self._metrics.writes.labels(self._region, "delete").inc(deletes)
        return results
