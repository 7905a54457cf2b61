"""What the REST app needs from the process serving it.

Central implements it over its `Store`; a replica over its hot-key cache, read-through
and write forwarding to central. The app does parsing, auth, validation and rendering,
and turns every write into one operation of the store's vocabulary (kvcore.store.ops:
`PutOp`, `BulkDeleteOp`, `CreateNamespaceOp`, ...) for the one write verb, `submit`; a
backend only answers domain questions with domain types and raises `KVError`s.
Account scoping is the backend's job too: a namespace of another account is
`NamespaceNotFound`, never a hint that it exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from kvcore.model import Entry, KeyPage, Namespace, ReadResult, Token
from kvcore.store.ops import Op

R = TypeVar("R")


class KVCalls(Protocol):
    """The calls a REST backend answers and central's gRPC API carries alike (a replica's
    link to central, replica/link.py, is these plus its own read and the stream)."""

    async def submit(self, op: Op[R]) -> R:
        """Commit a write (validated where it entered) and return its result once durable."""
        ...

    async def get_namespace(self, account_id: str, namespace_id: str) -> Namespace: ...
    async def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]: ...
    async def bulk_get(
        self, account_id: str, namespace_id: str, keys: Sequence[str]
    ) -> list[Entry | None]: ...
    async def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage: ...


class Backend(KVCalls, Protocol):
    @property
    def region(self) -> str:
        """'central' or the replica's region name (metrics label, response header)."""
        ...

    def now(self) -> float:
        """The process clock's wall time, used to resolve `expiration_ttl`."""
        ...

    async def authenticate(self, secret_hash: str) -> Token | None:
        """The token whose secret hashes (SHA-256, hex) to this, or None."""
        ...

    async def get(
        self,
        account_id: str,
        namespace_id: str,
        key: str,
        *,
        strong: bool = False,
        metadata_only: bool = False,
    ) -> ReadResult:
        """Raises KeyNotFound for a key with no live value, NamespaceNotFound for the namespace."""
        ...

    async def ready(self) -> tuple[bool, str]:
        """For /readyz: (ready, reason)."""
        ...
