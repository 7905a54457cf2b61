"""`ReplicaBackend`: the REST `Backend` of a replica, the calls it makes to central.

What is answered locally, and what a read-through installs, is decided by `EdgeState`
(replica/edge.py); this module only makes the calls to central, each within its one
`Deadline`, and hands their answers to the edge. Acknowledged writes are applied to the
edge at once (C3). While central is unreachable (C7) cached keys are still served and
everything that needs central fails fast with `Unavailable` (503), except namespace
reads, which fall back to the namespaces the stream last showed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from kvcore.errors import Unavailable
from kvcore.model import Entry, KeyPage, Namespace, ReadResult, Token
from kvcore.store.ops import InNamespace, Op, PutOp
from replica.edge import EdgeState, ReadThrough
from replica.link import CentralLink

T = TypeVar("T")
R = TypeVar("R")

# Once the stream has been down this long, calls to central are not attempted.
FAIL_FAST_AFTER_S = 3.0
# Writes get time to move their bytes on top of the base timeout.
WRITE_BYTES_PER_S = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Deadline:
    """The one deadline of each call a replica makes to central (C7: fail fast).

    A call may take `timeout_s` (`--central-timeout`) plus the time to move its `nbytes`
    at `bytes_per_s`. While the stream has been down for more than `fail_fast_after_s`
    (`stream_down_for()`, seconds), a call is not even attempted."""

    timeout_s: float
    stream_down_for: Callable[[], float] = lambda: 0.0
    fail_fast_after_s: float = FAIL_FAST_AFTER_S
    bytes_per_s: float = WRITE_BYTES_PER_S

    def seconds(self, nbytes: int = 0) -> float:
        """Seconds a call moving `nbytes` may take; Unavailable if it may not start."""
        down = self.stream_down_for()
        if down > self.fail_fast_after_s:
            raise Unavailable(f"central unreachable (replication stream down for {down:.0f} s)")
        return self.timeout_s + nbytes / self.bytes_per_s


class ReplicaBackend:
    def __init__(self, *, edge: EdgeState, central: CentralLink, deadline: Deadline, region: str) -> None:
        self._edge = edge
        self._central = central
        self._deadline = deadline
        self.region = region
        # The REST hot path (kvcore.rest.fastpath `CachedReader`) is the edge's alone.
        self.cached_read = edge.cached_read

    def now(self) -> float:
        return self._edge.clock.now()

    async def authenticate(self, secret_hash: str) -> Token | None:
        return self._edge.directory.tokens.get(secret_hash)

    async def ready(self) -> tuple[bool, str]:
        if not self._edge.directory.loaded:
            return False, "waiting for the first batch of the change stream from central"
        return True, "ok"

    # ------------------------------------------------------------------ calls to central

    async def _central_call(self, call: Callable[[], Awaitable[T]], nbytes: int = 0) -> T:
        """`call()` within its deadline (`Deadline.seconds(nbytes)`); Unavailable when it
        passes or the call may not start."""
        seconds = self._deadline.seconds(nbytes)
        try:
            async with asyncio.timeout(seconds):
                return await call()
        except TimeoutError:
            raise Unavailable.deadline_passed() from None

    async def _central_or_local(self, call: Callable[[], Awaitable[T]], local: Callable[[], T | None]) -> T:
        """Central's answer; while central is unreachable, the edge's, if it has one (C7)."""
        try:
            return await self._central_call(call)
        except Unavailable:
            answer = local()
            if answer is None:
                raise
            return answer

    # ------------------------------------------------------------------ namespaces

    async def get_namespace(self, account_id: str, namespace_id: str) -> Namespace:
        self._edge.local_namespace(account_id, namespace_id)
        return await self._central_or_local(
            lambda: self._central.get_namespace(account_id, namespace_id),
            lambda: self._edge.directory.namespace(account_id, namespace_id),
        )

    async def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]:
        """Central's list; while central is away, the namespaces this replica knows from
        the stream (every namespace change is pushed at once), so `--binding TITLE`
        still resolves and cached keys stay readable by title."""
        return await self._central_or_local(
            lambda: self._central.list_namespaces(account_id, page, per_page, order, direction),
            lambda: self._edge.directory.listing(account_id, page, per_page, order, direction),
        )

    # ------------------------------------------------------------------ reads

    async def get(
        self,
        account_id: str,
        namespace_id: str,
        key: str,
        *,
        strong: bool = False,
        metadata_only: bool = False,
    ) -> ReadResult:
        """The edge's answer, or central's through the edge (`EdgeState.read_local`,
        `after_read_through`)."""
        edge = self._edge
        local = edge.read_local((namespace_id, key), account_id, strong=strong, metadata_only=metadata_only)
        if not isinstance(local, ReadThrough):
            return local
        entry, as_of_seq = await self._central_call(
            lambda: self._central.get(account_id, namespace_id, key, metadata_only=local.metadata_only)
        )
        return edge.after_read_through(local, entry, as_of_seq)

    async def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        self._edge.local_namespace(account_id, namespace_id)
        entries = await self._central_call(lambda: self._central.bulk_get(account_id, namespace_id, keys))
        self._edge.after_bulk_read(namespace_id, keys, entries)
        return entries

    async def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage:
        self._edge.local_namespace(account_id, namespace_id)
        return await self._central_call(
            lambda: self._central.list_keys(account_id, namespace_id, prefix, limit, cursor)
        )

    # ------------------------------------------------------------------ writes

    async def submit(self, op: Op[R]) -> R:
        """Forward `op` to central; once acknowledged, apply it to this region's cache
        (C3) and return central's result."""
        if isinstance(op, InNamespace):
            self._edge.local_namespace(op.account_id, op.namespace_id)
        # The deadline travels with the write (a streamed write's own, a unary call's
        # gRPC deadline): no timer around the call.
        seconds = self._deadline.seconds(op.size)
        if not isinstance(op, PutOp):
            result = await self._central.submit(op, timeout_s=seconds)
        else:
            ref = (op.namespace_id, op.item.key)
            self._edge.put_forwarded(ref)
            try:
                result = await self._central.submit(op, timeout_s=seconds)
            finally:
                self._edge.put_answered(ref)
        self._edge.after_write(op, result)
        return result
