"""`CentralLink`: what a replica needs from central, as one protocol.

`ReplicaBackend` forwards every write as the store's operation (`submit`) and reads
through on a miss; the stream follower subscribes to the change stream. The real link
is `kvcore.rpc.client.CentralClient` (gRPC, with deadlines, failover and the write
stream); tests use a fake that type-checks against this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol, TypeVar

from kvcore.model import ChangeBatch, Entry
from kvcore.rest.backend import KVCalls
from kvcore.store.ops import Op

R = TypeVar("R")


class CentralLink(KVCalls, Protocol):
    """`KVCalls` (the write verb and the namespace, bulk and list reads), and:"""

    @property
    def target(self) -> str:
        """Which central(s) this talks to, 'HOST:PORT[,HOST:PORT...]' (for logs)."""
        ...

    async def submit(self, op: Op[R], *, timeout_s: float | None = None) -> R:
        """Commit a write at central and return its result once durable; Unavailable
        if central did not answer within `timeout_s` seconds."""
        ...

    async def get(
        self, account_id: str, namespace_id: str, key: str, *, metadata_only: bool = False
    ) -> tuple[Entry | None, int]:
        """The live entry (or None) and central's committed seq when it was read."""
        ...

    def subscribe(self, region: str, from_seq: int, http_url: str = "") -> AsyncIterator[ChangeBatch]:
        """The change stream from `from_seq`; raises a KVError (usually Unavailable) when it breaks."""
        ...


if TYPE_CHECKING:
    from kvcore.rpc.client import CentralClient

    def _conforms(client: CentralClient) -> CentralLink:
        return client
