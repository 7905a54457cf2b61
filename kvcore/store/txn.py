"""The state one commit group is built against.

Operations in a group run one after another on the writer thread. Each reads through
an overlay of what earlier operations of the group wrote (so two puts of a new key in
one group are a create then an update, and a condition sees the value it races with),
stages its own writes, log records and seqs, and is then either kept or dropped as a
whole: RocksDB write batches have no savepoints in rocksdict, so nothing reaches the
batch until the group is complete.
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from kvcore.model import KEY_KINDS, Change, ChangeKind, Token
from kvcore.store import codec
from kvcore.store.catalog import Catalog, CatalogView

if TYPE_CHECKING:
    from rocksdict import WriteBatch


class CF(StrEnum):
    """Column families; the values are their names on disk."""

    DATA = "entries"
    NAMESPACES = "namespaces"
    TITLES = "namespace_titles"
    TOKENS = "tokens"
    LOG = "change_log"
    META = "meta"
    EXPIRY = "expiry"


_PUT, _DELETE, _RANGE = 0, 1, 2
_Write = tuple[int, CF, bytes, bytes]  # (kind, cf, key or range begin, value or range end)


class Txn:
    def __init__(self, cfs: dict[CF, Any], catalog: Catalog, seq: int, now: float) -> None:
        self._cfs = cfs  # CF -> rocksdict Rdict of that column family
        self.catalog = CatalogView(catalog)
        self.now = now
        self.seq = seq  # last seq allocated in this group
        self.changes: list[Change] = []
        # (namespace, key) -> index in `changes` of the group's create of it that carries
        # its value, until a later change of the key in the group makes that value stale.
        self._valued_creates: dict[tuple[str, str], int] = {}
        self._writes: list[_Write] = []
        self._overlay: dict[tuple[CF, bytes], bytes | None] = {}
        self._ranges: list[tuple[CF, bytes, bytes]] = []
        # The current operation's staging, merged or dropped by commit_op/rollback_op.
        self._op_seq = seq
        self._op_changes: list[Change] = []
        self._op_writes: list[_Write] = []
        self._op_overlay: dict[tuple[CF, bytes], bytes | None] = {}
        self._op_ranges: list[tuple[CF, bytes, bytes]] = []

    # -- reads

    def get(self, cf: CF, key: bytes) -> bytes | None:
        ref = (cf, key)
        if ref in self._op_overlay:
            return self._op_overlay[ref]
        for rcf, begin, end in self._op_ranges:
            if rcf is cf and begin <= key < end:
                return None
        if ref in self._overlay:
            return self._overlay[ref]
        for rcf, begin, end in self._ranges:
            if rcf is cf and begin <= key < end:
                return None
        value: bytes | None = self._cfs[cf].get(key)
        return value

    # -- staged writes

    def put(self, cf: CF, key: bytes, value: bytes) -> None:
        self._op_writes.append((_PUT, cf, key, value))
        self._op_overlay[(cf, key)] = value

    def delete(self, cf: CF, key: bytes) -> None:
        self._op_writes.append((_DELETE, cf, key, b""))
        self._op_overlay[(cf, key)] = None

    def delete_range(self, cf: CF, begin: bytes, end: bytes) -> None:
        """Delete [begin, end). Overlay entries in the range are shadowed, later writes win."""
        self._op_writes.append((_RANGE, cf, begin, end))
        for ref in [r for r in self._op_overlay if r[0] is cf and begin <= r[1] < end]:
            del self._op_overlay[ref]
        self._op_ranges.append((cf, begin, end))

    def log(
        self,
        kind: ChangeKind,
        *,
        namespace_id: str = "",
        account_id: str = "",
        key: str = "",
        expiration: int | None = None,
        metadata_json: str | None = None,
        title: str = "",
        token: Token | None = None,
        value: bytes | None = None,
    ) -> Change:
        """Allocate the next seq and stage its change-log record. `value` travels with the
        change to the commit listeners (a create's, for the change feed) but is not
        written to the log; a later change of the same key in the group takes it off
        again (`commit_op`)."""
        self._op_seq += 1
        change = Change(
            seq=self._op_seq,
            kind=kind,
            commit_time=self.now,
            namespace_id=namespace_id,
            account_id=account_id,
            key=key,
            expiration=expiration,
            metadata_json=metadata_json,
            title=title,
            token=token,
            value=value,
            has_value=value is not None,
        )
        self._op_changes.append(change)
        self.put(CF.LOG, codec.u64(change.seq), codec.encode_change(change))
        return change

    # -- operation boundaries

    def commit_op(self) -> None:
        # Ranges first: an op's later point writes are already resolved in its overlay.
        if self._op_ranges:
            for cf, begin, end in self._op_ranges:
                for ref in [r for r in self._overlay if r[0] is cf and begin <= r[1] < end]:
                    del self._overlay[ref]
            self._ranges.extend(self._op_ranges)
        self._overlay.update(self._op_overlay)
        self._writes.extend(self._op_writes)
        for change in self._op_changes:
            if change.kind in KEY_KINDS:
                self._supersede(change)
            self.changes.append(change)
        self.seq = self._op_seq
        self.catalog.commit_op()
        self._clear_op()

    def rollback_op(self) -> None:
        self._op_seq = self.seq
        self.catalog.rollback_op()
        self._clear_op()

    def _supersede(self, change: Change) -> None:
        """Before `change` joins the group: an earlier create of its key in the group
        loses its value, which is no longer the key's. The feed pushes creates at once
        but holds later updates and deletes (C2): a superseded value pushed would be
        served everywhere until they are flushed. It travels as an invalidation instead,
        as a create read back from the store would."""
        ref = (change.namespace_id, change.key)
        at = self._valued_creates.pop(ref, None)
        if at is not None:
            self.changes[at] = replace(self.changes[at], value=None, has_value=False)
        if change.has_value:
            self._valued_creates[ref] = len(self.changes)

    def _clear_op(self) -> None:
        self._op_changes = []
        self._op_writes = []
        self._op_overlay = {}
        self._op_ranges = []

    # -- the group's batch

    @property
    def empty(self) -> bool:
        return not self._writes

    def net_writes(self) -> tuple[list[tuple[CF, bytes, bytes]], dict[tuple[CF, bytes], bytes | None]]:
        """The group's net effect, for engines without ordered batches (PostgreSQL): the
        range deletes [begin, end) to apply first, then the last point write of each
        key (None = delete). A point write before a range it falls in is dropped (the
        range deletes it); one after the range is kept."""
        ranges: list[tuple[CF, bytes, bytes]] = []
        points: dict[tuple[CF, bytes], bytes | None] = {}
        for kind, cf, key, value in self._writes:
            if kind == _RANGE:
                ranges.append((cf, key, value))
                for ref in [r for r in points if r[0] is cf and key <= r[1] < value]:
                    del points[ref]
            else:
                points[(cf, key)] = value if kind == _PUT else None
        return ranges, points

    def build_batch(self, handles: dict[CF, Any]) -> WriteBatch:
        # Imported here: the operations (ops.py) are the write vocabulary of processes
        # that never open RocksDB (a replica's REST app), and import this module.
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for op, cf, key, value in self._writes:
            handle = handles[cf]
            if op == _PUT:
                batch.put(key, value, handle)
            elif op == _DELETE:
                batch.delete(key, handle)
            else:
                batch.delete_range(key, value, handle)
        if self.changes:
            # The last seq travels in the same batch as the log, so a reopen resumes
            # exactly after the last durable change.
            batch.put(codec.META_LAST_SEQ, codec.u64(self.seq), handles[CF.META])
        return batch
