"""`CentralLink`: what a replica needs from central, as one protocol.

`ReplicaBackend` forwards every write as the store's operation (`submit`) and reads
through on a miss; the stream follower subscribes to the change stream. The real link
is `kvcore.rpc.client.CentralClient` (gRPC, with deadlines, failover and the write
stream); tests use a fake that type-checks against this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from kvcore.model import ChangeBatch, Entry, KeyPage, Namespace
from kvcore.store.ops import Op

R = TypeVar("R")


class CentralLink(Protocol):
    @property
    def target(self) -> str:
        """Which central(s) this talks to, 'HOST:PORT[,HOST:PORT...]' (for logs)."""
        ...

    async def submit(self, op: Op[R]) -> R:
        """Commit `op` at central; its result once durable there, or the KVError."""
        ...

    async def get_namespace(self, account_id: str, namespace_id: str) -> Namespace: ...
    async def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]: ...
    async def get(
        self, account_id: str, namespace_id: str, key: str, *, metadata_only: bool = False
    ) -> tuple[Entry | None, int]:
        """The live entry (or None) and central's committed seq when it was read."""
        ...

    async def bulk_get(
        self, account_id: str, namespace_id: str, keys: Sequence[str]
    ) -> list[Entry | None]: ...
    async def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage: ...

    def subscribe(self, region: str, from_seq: int, http_url: str = "") -> AsyncIterator[ChangeBatch]:
        """The change stream from `from_seq`; raises a KVError (usually Unavailable) when it breaks."""
        ...


if TYPE_CHECKING:
    from kvcore.rpc.client import CentralClient

    def _conforms(client: CentralClient) -> CentralLink:
        return client
