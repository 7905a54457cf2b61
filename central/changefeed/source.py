"""What the change feed needs from the store: its change log, its listeners, and
the few reads that fill a snapshot and carry values. Both store engines (RocksDB and
PostgreSQL, whose log follower feeds the same listeners) satisfy it as they are."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from kvcore.model import Change, Entry, Namespace, Token

# Called on the store's writer (or log-follower) thread with each committed group.
CommitListener = Callable[[Sequence[Change]], None]


class ChangeSource(Protocol):
    @property
    def committed_seq(self) -> int: ...
    @property
    def oldest_retained_seq(self) -> int: ...
    def changes_since(self, seq: int, limit: int) -> list[Change]:
        """Up to `limit` changes with seq > `seq`, ascending; LogTruncated when trimmed."""
        ...

    def add_listener(self, listener: CommitListener) -> None: ...
    def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]: ...
    def all_namespaces(self) -> list[Namespace]: ...
    def list_tokens(self) -> list[Token]: ...
