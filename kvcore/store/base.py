"""The `Store` interface central is written against.

Reads are synchronous and cheap (RocksDB point reads and iterators). Every write is an
operation (ops.py: `PutOp`, `DeleteOp`, `BulkPutOp`, ..., `GroupOp`) handed to the one
write verb, `submit`: one writer thread applies each operation against the current
state, assigns the next global `seq`, and commits many operations in one RocksDB write
batch with one synced WAL write (group commit). `submit` awaits without occupying a
thread, so 64 concurrent clients make 64 queued operations, not 64 threads; `run` is
the same for code outside an event loop (tools, tests, maintenance).

Operations carry input already validated where it entered (kvcore.limits, at the REST
and gRPC edges); the store checks only what depends on its state. Every committed
change is recorded in the change log in the same batch as the data and, after the
sync, handed to the listeners in seq order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ParamSpec, Protocol, TypeVar

from kvcore.errors import LogTruncated
from kvcore.model import Change, Entry, KeyPage, Namespace, Token
from kvcore.store.ops import Op

ChangeListener = Callable[[Sequence[Change]], None]
R = TypeVar("R")
T = TypeVar("T")
P = ParamSpec("P")

__all__ = ["ChangeListener", "LogTruncated", "Store", "Writes"]


class Writes(Protocol):
    """The one write verb: commit `op` durably and return its result, or raise the
    KVError it failed with (a `GroupOp` returns each member's result or error)."""

    async def submit(self, op: Op[R]) -> R: ...


class Store(Writes, Protocol):
    def run(self, op: Op[R]) -> R:
        """`submit` for a caller outside an event loop: blocks this thread until durable."""
        ...

    # -- namespaces (NamespaceNotFound for an id not in that account)
    def get_namespace(self, account_id: str, namespace_id: str) -> Namespace: ...
    def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]: ...
    def all_namespaces(self) -> list[Namespace]: ...

    # -- entries: the reads, and one way to run any of them for the event loop (in place
    # on RocksDB, microseconds; on a reader thread on PostgreSQL, whose round trip must
    # not stall it)
    def get(self, account_id: str, namespace_id: str, key: str) -> Entry | None: ...
    def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]: ...
    def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage: ...
    async def read(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """One of the reads above, for a coroutine: `await store.read(store.get, a, n, k)`."""
        ...

    # -- tokens (stored hashed; a new one is `submit(PutTokenOp.new(...)[0])`; token changes
    # enter the change log)
    def list_tokens(self, account_id: str | None = None) -> list[Token]: ...
    def token_by_hash(self, secret_hash: str) -> Token | None: ...

    # -- change log
    @property
    def committed_seq(self) -> int: ...
    @property
    def oldest_retained_seq(self) -> int: ...
    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]: ...
    def add_listener(self, listener: ChangeListener) -> None: ...

    def close(self) -> None: ...
