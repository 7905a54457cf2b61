"""The `Store` interface central is written against.

Reads are synchronous and cheap (RocksDB point reads and iterators). Writes are
serialized through one writer thread that applies each operation against the
current state, assigns the next global `seq`, and commits many operations in one
RocksDB write batch with one synced WAL write (group commit). The `a*` coroutine
variants enqueue the same operation and await it without occupying a thread, so
64 concurrent clients make 64 queued operations, not 64 threads.

Every committed change is recorded in the change log in the same batch as the data
and, after the sync, handed to the listeners in seq order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kvcore.errors import KVError, LogTruncated
from kvcore.model import (
    NO_CONDITION,
    BulkResult,
    Change,
    Condition,
    Entry,
    KeyPage,
    Namespace,
    Permission,
    Token,
    WriteItem,
    WriteResult,
)

ChangeListener = Callable[[Sequence[Change]], None]

__all__ = ["ChangeListener", "LogTruncated", "PointWrite", "Store"]


@dataclass(frozen=True, slots=True)
class PointWrite:
    """One put (`item` set) or delete (`item` None, `key` names the key) of `awrite_many`."""

    account_id: str
    namespace_id: str
    key: str
    item: WriteItem | None = None
    condition: Condition = NO_CONDITION


class Store(Protocol):
    # -- namespaces (all raise NamespaceNotFound for an id not in that account)
    def create_namespace(self, account_id: str, title: str) -> Namespace: ...
    async def acreate_namespace(self, account_id: str, title: str) -> Namespace: ...
    def get_namespace(self, account_id: str, namespace_id: str) -> Namespace: ...
    def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]: ...
    def all_namespaces(self) -> list[Namespace]: ...
    def rename_namespace(self, account_id: str, namespace_id: str, title: str) -> Namespace: ...
    async def arename_namespace(self, account_id: str, namespace_id: str, title: str) -> Namespace: ...
    def delete_namespace(self, account_id: str, namespace_id: str) -> None: ...
    async def adelete_namespace(self, account_id: str, namespace_id: str) -> None: ...

    # -- entries (writes are validated by kvcore.limits before they get here)
    def put(
        self, account_id: str, namespace_id: str, item: WriteItem, condition: Condition = NO_CONDITION
    ) -> WriteResult: ...
    async def aput(
        self, account_id: str, namespace_id: str, item: WriteItem, condition: Condition = NO_CONDITION
    ) -> WriteResult: ...
    def get(self, account_id: str, namespace_id: str, key: str) -> Entry | None: ...
    def delete(
        self, account_id: str, namespace_id: str, key: str, condition: Condition = NO_CONDITION
    ) -> WriteResult: ...
    async def adelete(
        self, account_id: str, namespace_id: str, key: str, condition: Condition = NO_CONDITION
    ) -> WriteResult: ...
    def bulk_put(self, account_id: str, namespace_id: str, items: Sequence[WriteItem]) -> BulkResult: ...
    async def abulk_put(
        self, account_id: str, namespace_id: str, items: Sequence[WriteItem]
    ) -> BulkResult: ...
    def bulk_delete(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> BulkResult: ...
    async def abulk_delete(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> BulkResult: ...
    async def awrite_many(self, writes: Sequence[PointWrite]) -> list[WriteResult | KVError]:
        """Independent point writes committed as one group: one result per write, in
        order, each the WriteResult of `aput`/`adelete` or the KVError it failed with
        alone. Every returned result is durable."""
        ...

    def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]: ...
    def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage: ...

    # -- tokens (stored hashed; token changes enter the change log)
    def create_token(
        self, account_id: str, permission: Permission, secret: str | None = None
    ) -> tuple[Token, str]: ...
    def list_tokens(self, account_id: str | None = None) -> list[Token]: ...
    def revoke_token(self, token_id: str) -> None: ...
    def token_by_hash(self, secret_hash: str) -> Token | None: ...

    # -- change log
    @property
    def committed_seq(self) -> int: ...
    @property
    def oldest_retained_seq(self) -> int: ...
    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]: ...
    def add_listener(self, listener: ChangeListener) -> None: ...

    def close(self) -> None: ...
