"""Central's REST backend: the `kvcore.rest.backend.Backend` protocol over the store.

Reads are the store's (in-memory catalog lookups in place; entry reads through its
coroutines, in place on RocksDB, on a reader thread on PostgreSQL); a write is the
operation the REST app built, handed to `writes.submit` (the store itself, or the
store seen through `central.writes.MeteredWrites`), which queues it onto the
group-commit writer without holding a thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import KeyNotFound
from kvcore.model import Entry, KeyPage, Namespace, ReadResult, Token
from kvcore.store.base import Store, Writes
from kvcore.store.ops import Op

R = TypeVar("R")


class StoreBackend:
    def __init__(
        self,
        store: Store,
        writes: Writes | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        region: str = "central",
    ) -> None:
        self._store = store
        self._writes = writes or store
        self._clock = clock
        self._region = region

    @property
    def region(self) -> str:
        return self._region

    def now(self) -> float:
        return self._clock.now()

    async def authenticate(self, secret_hash: str) -> Token | None:
        return self._store.token_by_hash(secret_hash)

    async def submit(self, op: Op[R]) -> R:
        return await self._writes.submit(op)

    # -- reads

    async def get_namespace(self, account_id: str, namespace_id: str) -> Namespace:
        return self._store.get_namespace(account_id, namespace_id)

    async def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]:
        return self._store.list_namespaces(account_id, page, per_page, order, direction)

    async def get(self, account_id: str, namespace_id: str, key: str, **_read_options: bool) -> ReadResult:
        """Every read here is central's own: `strong` and `metadata_only` change nothing."""
        entry = await self._store.read(self._store.get, account_id, namespace_id, key)
        if entry is None:
            raise KeyNotFound()
        return ReadResult(entry=entry, age_s=0.0, source="central")

    async def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        return await self._store.read(self._store.bulk_get, account_id, namespace_id, keys)

    async def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage:
        return await self._store.read(self._store.list_keys, account_id, namespace_id, prefix, limit, cursor)

    async def ready(self) -> tuple[bool, str]:
        return True, "ok"
