"""`OpStore`: the engine-independent half of a store, shared by RocksDB and PostgreSQL.

Writes are operations (ops.py) handed as they are to the group-commit writer
(writer.py) by the one verb, `submit` (or `run`, its blocking twin); reads answer
from the engine or from the in-memory catalog of namespaces and tokens (catalog.py).
An engine subclass (`RocksStore`, `PgStore`) supplies the writer and catalog, the
entry and log reads, and maintenance. `_namespace` is the one
hook an engine may widen: a PostgreSQL central refreshes its catalog on a miss, since
another central may have just created the namespace.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from typing import Final, ParamSpec, Self, TypeVar

from kvcore import limits
from kvcore.clock import Clock
from kvcore.errors import NamespaceNotFound, ValidationError
from kvcore.model import (
    Change,
    Entry,
    KeyPage,
    Namespace,
    Token,
)
from kvcore.store import codec
from kvcore.store.base import ChangeListener
from kvcore.store.catalog import Catalog
from kvcore.store.ops import Op, PurgeOp
from kvcore.store.writer import GroupCommitWriter

log = logging.getLogger(__name__)
PURGE_BATCH: Final = 1000  # expired entries deleted per operation
T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


class OpStore(abc.ABC):
    """Subclasses set `_clock`, `_catalog` and `_writer` before serving calls."""

    _clock: Clock
    _catalog: Catalog
    _writer: GroupCommitWriter

    def __init__(self, *, clock: Clock, log_retention: int, purge_interval_s: float) -> None:
        """`log_retention`: change-log records kept (at least 1); `purge_interval_s`: how
        often maintenance purges expired entries and trims the log."""
        if log_retention < 1:
            raise ValueError("log_retention must be at least 1")
        self._listeners: list[ChangeListener] = []
        self._clock = clock
        self._log_retention = log_retention
        self._purge_interval_s = purge_interval_s

    @property
    def clock(self) -> Clock:
        """The clock the store expires entries by (and stamps new tokens with)."""
        return self._clock

    @abc.abstractmethod
    def close(self) -> None:
        """Stop maintenance and the writer (every queued write answered), release the engine."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _notify(self, changes: Sequence[Change]) -> None:
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:
                log.exception("change listener %r failed", listener)

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    # ---------------------------------------------------------------- writes

    @abc.abstractmethod
    def _expired_index_keys(self, limit: int) -> list[bytes]:
        """Up to `limit` expiry-index keys with an expiration at or before now, in order."""

    def purge_expired(self) -> int:
        """Delete every entry expired as of the clock's now; returns how many."""
        total = 0
        while True:
            expired = self._expired_index_keys(PURGE_BATCH)
            if not expired:
                return total
            total += self.run(PurgeOp(expired))
            if len(expired) < PURGE_BATCH:
                return total

    async def submit(self, op: Op[R]) -> R:
        # No thread per waiter: the writer resolves this loop's futures in one callback.
        return await self._writer.submit_async(op)

    def run(self, op: Op[R]) -> R:
        return self._writer.submit(op).result()

    # ---------------------------------------------------------------- namespaces

    def _namespace(self, account_id: str, namespace_id: str) -> Namespace:
        ns = self._catalog.namespaces.get(namespace_id)
        if ns is None or ns.account_id != account_id:
            raise NamespaceNotFound()
        return ns

    def get_namespace(self, account_id: str, namespace_id: str) -> Namespace:
        return self._namespace(account_id, namespace_id)

    def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]:
        page, per_page = limits.validate_page(page, per_page)
        limits.validate_order(order, direction)
        items = self._catalog.account_namespaces(account_id)
        # Python str order is code-point order, which is UTF-8 byte order.
        by_title = order == "title"
        items.sort(key=lambda n: n.title if by_title else n.id, reverse=direction == "desc")
        start = (page - 1) * per_page
        return items[start : start + per_page], len(items)

    def all_namespaces(self) -> list[Namespace]:
        return self._catalog.all_namespaces()

    # ---------------------------------------------------------------- entries: reads

    # The engine's sync list read (`get` and `bulk_get` are below), for coroutines.
    list_keys: Callable[[str, str, str, int, str], KeyPage]

    async def read(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """One of this store's reads (`get`, `bulk_get`, `list_keys`, ...) for a coroutine:
        in place here (RocksDB point reads and iterators take microseconds); an engine
        whose reads wait on a network overrides it."""
        return fn(*args, **kwargs)

    # ---------------------------------------------------------------- entries: point reads

    @abc.abstractmethod
    def _raw_entries(self, entry_keys: Sequence[bytes]) -> list[bytes | None]:
        """The engine's stored bytes for each entry key, in order (None where absent)."""

    def get(self, account_id: str, namespace_id: str, key: str) -> Entry | None:
        return self.bulk_get(account_id, namespace_id, [key])[0]

    def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        """Each key's live entry, in order; an expired entry reads as None."""
        self._namespace(account_id, namespace_id)
        nsb = codec.ns_bytes(namespace_id)
        ekeys = [codec.entry_key(nsb, limits.validate_key(k)) for k in keys]
        if not ekeys:
            return []
        now = self._clock.now()
        out: list[Entry | None] = []
        for key, raw in zip(keys, self._raw_entries(ekeys), strict=True):
            entry = codec.decode_entry(key, raw) if raw is not None else None
            if entry is not None and entry.expiration is not None and entry.expiration <= now:
                entry = None
            out.append(entry)
        return out

    # ---------------------------------------------------------------- entries: list range

    def _list_range(
        self, account_id: str, namespace_id: str, prefix: str, cursor: str
    ) -> tuple[bytes, bytes, bytes]:
        """(namespace bytes, prefix low bound, first entry key to look at) of a list call."""
        self._namespace(account_id, namespace_id)
        nsb = codec.ns_bytes(namespace_id)
        try:
            low = nsb + prefix.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError("prefix: not valid UTF-8") from exc
        start = low
        if cursor:
            # The smallest key after the cursor's key is that key + NUL.
            start = max(low, nsb + codec.decode_cursor(cursor) + b"\x00")
        return nsb, low, start

    # ---------------------------------------------------------------- tokens

    def list_tokens(self, account_id: str | None = None) -> list[Token]:
        tokens = [t for t in self._catalog.all_tokens() if account_id is None or t.account_id == account_id]
        tokens.sort(key=lambda t: (t.created, t.id))
        return tokens

    def token_by_hash(self, secret_hash: str) -> Token | None:
        return self._catalog.by_hash.get(secret_hash)
