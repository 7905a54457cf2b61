"""`ReplicaBackend`: the REST `Backend` of a replica.

Value and metadata reads are answered from the hot-key cache when they can be, and
read through to central otherwise; everything else goes to central. Acknowledged
writes are applied to the local cache at once (C3). While central is unreachable
(C7) cached keys are still served and everything that needs central fails fast with
`Unavailable` (503): calls carry a deadline, and once the stream has been down for
`FAIL_FAST_AFTER_S` they are not even attempted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from kvcore import limits
from kvcore.clock import Clock
from kvcore.errors import KeyNotFound, Unavailable
from kvcore.model import Entry, KeyPage, Namespace, ReadResult, Token
from kvcore.store.ops import (
    BulkDeleteOp,
    BulkPutOp,
    CreateNamespaceOp,
    DeleteNamespaceOp,
    DeleteOp,
    InNamespace,
    Op,
    PutOp,
    RenameNamespaceOp,
)
from replica.edge import EdgeState, KeyRef
from replica.link import CentralLink

T = TypeVar("T")
R = TypeVar("R")

# Once the stream has been down this long, calls to central are not attempted.
FAIL_FAST_AFTER_S = 3.0
# Forwarded writes get the read deadline plus time to move their bytes.
WRITE_BYTES_PER_S = 4 * 1024 * 1024


class ReplicaBackend:
    def __init__(
        self,
        *,
        edge: EdgeState,
        central: CentralLink,
        clock: Clock,
        timeout_s: float,
        stream_down_for: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._edge = edge
        self._central = central
        self._clock = clock
        self._timeout_s = timeout_s
        self._stream_down_for = stream_down_for
        r = edge.region
        m = edge.metrics.cache_requests
        self._hit = m.labels(r, "hit")
        self._miss = m.labels(r, "miss")
        self._negative_hit = m.labels(r, "negative_hit")

    @property
    def region(self) -> str:
        return self._edge.region

    def now(self) -> float:
        return self._clock.now()

    async def authenticate(self, secret_hash: str) -> Token | None:
        return self._edge.token(secret_hash)

    async def ready(self) -> tuple[bool, str]:
        if not self._edge.loaded:
            return False, "waiting for the first batch of the change stream from central"
        return True, "ok"

    # ------------------------------------------------------------------ calls to central

    async def _central_call(self, call: Callable[[], Awaitable[T]], deadline_s: float | None = None) -> T:
        down = self._stream_down_for()
        if down > FAIL_FAST_AFTER_S:
            raise Unavailable(f"central unreachable (replication stream down for {down:.0f} s)")
        try:
            async with asyncio.timeout(deadline_s or self._timeout_s):
                return await call()
        except TimeoutError:
            raise Unavailable("central did not answer in time") from None

    def _write_deadline(self, nbytes: int) -> float:
        return self._timeout_s + nbytes / WRITE_BYTES_PER_S

    # ------------------------------------------------------------------ namespaces

    async def get_namespace(self, account_id: str, namespace_id: str) -> Namespace:
        local = self._edge.local_namespace(account_id, namespace_id)
        try:
            return await self._central_call(lambda: self._central.get_namespace(account_id, namespace_id))
        except Unavailable:
            if not local or self._edge.namespaces is None:
                raise
            return self._edge.namespaces[namespace_id]

    async def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]:
        """Central's list; while central is away, the namespaces this replica knows from
        the stream (every namespace change is pushed at once), so `--binding TITLE`
        still resolves and cached keys stay readable by title."""
        try:
            return await self._central_call(
                lambda: self._central.list_namespaces(account_id, page, per_page, order, direction)
            )
        except Unavailable:
            if self._edge.namespaces is None:
                raise
            page, per_page = limits.validate_page(page, per_page)
            limits.validate_order(order, direction)
            mine = [ns for ns in self._edge.namespaces.values() if ns.account_id == account_id]
            mine.sort(key=lambda n: n.title if order == "title" else n.id, reverse=direction == "desc")
            start = (page - 1) * per_page
            return mine[start : start + per_page], len(mine)

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
        edge = self._edge
        ref: KeyRef = (namespace_id, key)
        local = edge.local_namespace(account_id, namespace_id)
        freq = edge.cache.record_read(ref)
        if local and not strong:
            cached = edge.lookup(ref)
            if cached is not None:
                self._hit.inc()
                return ReadResult(
                    cached.entry, age_s=max(0.0, self._clock.now() - cached.installed_at), source="cache"
                )
            if ref in edge.negative:
                self._negative_hit.inc()
                raise KeyNotFound()
        self._miss.inc()
        # A metadata read of a key hot enough to be admitted fetches the value too, so the
        # key can be cached; otherwise only what was asked for.
        full = not metadata_only or freq >= edge.cache.admit_threshold
        entry, as_of = await self._central_call(
            lambda: self._central.get(account_id, namespace_id, key, metadata_only=not full)
        )
        if full or entry is None:
            edge.install_read(ref, entry, as_of)
        else:
            edge.saw_version(ref, entry.version)  # metadata only: nothing to install
        # A newer copy may have arrived on the stream while we waited: never serve older.
        cached = edge.lookup(ref)
        if cached is not None and (entry is None or cached.entry.version > entry.version):
            return ReadResult(cached.entry, age_s=0.0, source="cache")
        if entry is None:
            raise KeyNotFound()
        return ReadResult(entry, age_s=0.0, source="read-through")

    def cached_read(
        self, secret_hash: str, account_id: str, namespace_id: str, key: str
    ) -> tuple[Entry, float] | None:
        """The REST hot path's read (kvcore.rest.fastpath): the cached entry of a key and
        its age in seconds, for a live token of `account_id`, counted as a read and a
        hit exactly as `get` counts it; None (nothing counted) whenever `get` and the
        full auth path must answer instead: unknown token, other account, namespace not
        known here, not cached, expired. A tuple, not a ReadResult: this runs on every
        hot read, and a frozen dataclass costs more to build than the lookup itself."""
        edge = self._edge
        token = edge.token(secret_hash)
        if token is None or token.account_id != account_id:
            return None
        namespaces = edge.namespaces
        if namespaces is None:
            return None
        ns = namespaces.get(namespace_id)
        if ns is None or ns.account_id != account_id:
            return None
        ref: KeyRef = (namespace_id, key)
        cached = edge.cache.get(ref)
        if cached is None:
            return None
        now = self._clock.now()
        entry = cached.entry
        if entry.expiration is not None and entry.expiration <= now:
            return None  # `get` drops it (EdgeState.lookup) and reads through
        edge.cache.record_read(ref)
        self._hit.inc()
        return entry, max(0.0, now - cached.installed_at)

    async def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        self._edge.local_namespace(account_id, namespace_id)
        return await self._central_call(lambda: self._central.bulk_get(account_id, namespace_id, keys))

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
        result = await self._central_call(lambda: self._central.submit(op), self._write_deadline(op.size))
        self._apply_own(op, result)
        return result

    def _apply_own(self, op: Op[Any], result: Any) -> None:
        edge = self._edge
        if isinstance(op, PutOp):
            edge.apply_own_put((op.namespace_id, op.item.key), op.item, result)
        elif isinstance(op, DeleteOp):
            edge.apply_own_delete((op.namespace_id, op.key), result)
        elif isinstance(op, BulkPutOp | BulkDeleteOp):
            deleted = isinstance(op, BulkDeleteOp)
            keys = op.keys if isinstance(op, BulkDeleteOp) else [i.key for i in op.items]
            edge.apply_own_bulk(op.namespace_id, keys, result, deleted=deleted)
        elif isinstance(op, CreateNamespaceOp | RenameNamespaceOp):
            edge.add_namespace(result)
        elif isinstance(op, DeleteNamespaceOp):
            edge.drop_namespace(op.namespace_id)
