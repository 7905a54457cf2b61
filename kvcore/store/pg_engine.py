"""`PgEngine`: commit groups in PostgreSQL, with seq equal to commit order.

**Why seq is commit order, across every central.** A PostgreSQL sequence or identity
column hands out numbers at call time, not at commit: a transaction may take seq 10
and commit after another's seq 11 is visible, and a reader that already passed 11
would never see 10. Instead every commit group, on any central, starts by locking the
single counter row:

    SELECT last_seq FROM edgekv_seq WHERE id = 1 FOR UPDATE

and ends by writing the new last seq into it and committing. The row lock is held
until COMMIT finishes and released only after the commit is visible, so a second
group (on this central or another) reads the counter only after the first group's
changes are visible, and numbers its changes after them. Seqs are therefore handed
out in commit order, without gaps: any snapshot that sees seq n sees every seq < n,
and a follower that reads the log by seq (pg_follow.py) misses nothing. The cost is
that commit groups of all centrals are serialized, one at a time; group commit
(writer.py) is what keeps that cheap, and it also serializes the reads operations
decide on (create vs update, conditions, titles): they run under the same lock, so
decisions are as if one writer ran them all, exactly as on RocksDB.

**The catalog.** Each central keeps namespaces and tokens in memory (catalog.py).
Changes committed through other centrals reach it through the log: a group first
applies every namespace and token record between its catalog's position and the
counter it just locked (`CatalogSync.catch_up`), so its checks see them.

Group reads are prefetched (one query for the entry keys of all the group's
operations); writes are the group's net effect (`Txn.net_writes`), one statement per
table. NOTIFY in the same transaction wakes the followers of other centrals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg

from kvcore.errors import Unavailable
from kvcore.model import Change, ChangeKind, Namespace
from kvcore.store import codec
from kvcore.store.catalog import Catalog
from kvcore.store.ops import BulkDeleteOp, BulkPutOp, DeleteOp, GroupOp, PurgeOp, PutOp
from kvcore.store.pg_schema import NOTIFY_CHANNEL, TABLES
from kvcore.store.txn import CF, Txn
from kvcore.store.writer import Op

log = logging.getLogger(__name__)

_CATALOG_KINDS = tuple(
    int(k)
    for k in (
        ChangeKind.NAMESPACE_CREATE,
        ChangeKind.NAMESPACE_RENAME,
        ChangeKind.NAMESPACE_DELETE,
        ChangeKind.TOKEN_PUT,
        ChangeKind.TOKEN_REVOKE,
    )
)
Conn = psycopg.Connection[Any]
_CATALOG_SINCE = "SELECT seq, v FROM edgekv_change_log WHERE seq > %s AND kind = ANY(%s) ORDER BY seq"
_PREFETCH = "SELECT k, v FROM edgekv_entries WHERE k = ANY(%s)"
_LOCK = "SELECT last_seq FROM edgekv_seq WHERE id = 1 FOR UPDATE"


class CatalogSync:
    """The catalog's position in the log, applied in seq order by whichever of the
    writer and the follower gets there first (under `lock`)."""

    def __init__(self, catalog: Catalog, seq: int) -> None:
        self.catalog = catalog
        self.seq = seq  # every namespace/token record <= seq is in the catalog
        self.lock = threading.Lock()

    def apply(self, changes: Iterable[Change], upto: int) -> None:
        """Apply the catalog records among `changes` (ascending seq, all <= upto)."""
        with self.lock:
            for change in changes:
                if change.seq > self.seq:
                    _apply(self.catalog, change)
            self.seq = max(self.seq, upto)

    def since_query(self, conn: Conn) -> psycopg.Cursor[Any]:
        """The catalog records past our position (all of them, when run under the
        counter lock: nothing newer than the locked counter is committed)."""
        return conn.execute(_CATALOG_SINCE, (self.seq, list(_CATALOG_KINDS)))

    def apply_rows(self, rows: Sequence[tuple[Any, Any]], upto: int) -> None:
        self.apply((codec.decode_change(seq, v) for seq, v in rows), upto)

    def catch_up(self, conn: Conn, upto: int) -> None:
        if upto <= self.seq:
            return
        rows = conn.execute(
            "SELECT seq, v FROM edgekv_change_log WHERE seq > %s AND seq <= %s AND kind = ANY(%s)"
            " ORDER BY seq",
            (self.seq, upto, list(_CATALOG_KINDS)),
        ).fetchall()
        self.apply((codec.decode_change(seq, v) for seq, v in rows), upto)


def _apply(catalog: Catalog, change: Change) -> None:
    kind = change.kind
    if kind in (ChangeKind.NAMESPACE_CREATE, ChangeKind.NAMESPACE_RENAME):
        catalog.set_namespace(
            change.namespace_id, Namespace(change.namespace_id, change.account_id, change.title)
        )
    elif kind is ChangeKind.NAMESPACE_DELETE:
        catalog.set_namespace(change.namespace_id, None)
    elif kind is ChangeKind.TOKEN_PUT and change.token is not None:
        catalog.set_token(change.token.id, change.token)
    elif kind is ChangeKind.TOKEN_REVOKE and change.token is not None:
        catalog.set_token(change.token.id, None)


class _Table:
    """One column family as the group's Txn reads it: prefetched rows first."""

    def __init__(self, engine: PgEngine, cf: CF) -> None:
        self._engine = engine
        self._cf = cf
        self._sql = f"SELECT v FROM {TABLES[cf]} WHERE k = %s"

    def get(self, key: bytes) -> bytes | None:
        pre = self._engine.prefetched
        if self._cf is CF.DATA and key in pre:
            return pre[key]
        row = self._engine.conn.execute(self._sql, (key,)).fetchone()
        return bytes(row[0]) if row else None


def _entry_keys(ops: Sequence[Op[Any]]) -> list[bytes]:
    keys: list[bytes] = []
    for op in ops:
        if isinstance(op, GroupOp):  # a replica's streamed point writes
            keys.extend(_entry_keys(op.ops))
            continue
        try:
            if isinstance(op, PutOp):
                keys.append(codec.entry_key(codec.ns_bytes(op.namespace_id), op.item.key))
            elif isinstance(op, DeleteOp):
                keys.append(codec.entry_key(codec.ns_bytes(op.namespace_id), op.key))
            elif isinstance(op, BulkPutOp):
                nsb = codec.ns_bytes(op.namespace_id)
                keys.extend(codec.entry_key(nsb, i.key) for i in op.items)
            elif isinstance(op, BulkDeleteOp):
                nsb = codec.ns_bytes(op.namespace_id)
                keys.extend(codec.entry_key(nsb, k) for k in op.keys)
            elif isinstance(op, PurgeOp):  # up to 1000 expired entries: not one query each
                keys.extend(codec.split_expiry_key(ikey)[1] for ikey in op.expired)
        except ValueError:  # not a namespace id: the op fails on its own when applied
            continue
    return keys


class PgEngine:
    """The writer thread's side of PostgreSQL: one connection, one transaction per group."""

    def __init__(self, connect: Callable[[], Conn], sync: CatalogSync) -> None:
        self._connect = connect
        self._sync = sync
        self._conn: Conn | None = None
        self._tables = {cf: _Table(self, cf) for cf in CF}
        self.prefetched: dict[bytes, bytes | None] = {}
        self._locked_seq: int | None = None  # the counter, locked by `prepare`

    @property
    def conn(self) -> Conn:
        assert self._conn is not None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def prepare(self) -> None:
        """Take the counter lock before the writer collects its group: while another
        central's group holds it, this central's writes keep queueing and then commit
        together (bigger groups, fewer turns of the lock). A failure is left to `begin`."""
        self._locked_seq = None
        try:
            conn = self._connection()
            row = conn.execute(_LOCK).fetchone()
            assert row is not None, "edgekv_seq has no row: the schema was not migrated"
            self._locked_seq = int(row[0])
        except Exception:
            self._abort()

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            self._conn = self._connect()
        return self._conn

    def begin(self, now: float, ops: Sequence[Op[Any]]) -> Txn:
        conn = self._connection()
        locked_seq, self._locked_seq = self._locked_seq, None
        try:
            keys = _entry_keys(ops)
            # One round trip (pipeline): the counter lock unless `prepare` holds it, then,
            # in order and so under it, the catalog records past our position and the
            # group's entries.
            with conn.pipeline():
                locked = conn.execute(_LOCK) if locked_seq is None else None
                catalog = self._sync.since_query(conn)
                found = conn.execute(_PREFETCH, (keys,)) if keys else None
            if locked is not None:
                row = locked.fetchone()
                assert row is not None, "edgekv_seq has no row: the schema was not migrated"
                locked_seq = int(row[0])
            assert locked_seq is not None
            seq = locked_seq
            self._sync.apply_rows(catalog.fetchall(), seq)
            self.prefetched = dict.fromkeys(keys)
            if found is not None:
                self.prefetched.update((bytes(k), bytes(v)) for k, v in found.fetchall())
        except BaseException:
            self._abort()
            raise
        return Txn(self._tables, self._sync.catalog, seq, now)

    def commit(self, txn: Txn) -> None:
        self.prefetched = {}
        if txn.empty:
            self._abort()
            return
        conn = self.conn
        try:
            # One round trip (pipeline): every write, the counter, NOTIFY and COMMIT.
            with conn.pipeline():
                self._write(conn, txn)
                if txn.changes:
                    conn.execute("UPDATE edgekv_seq SET last_seq = %s WHERE id = 1", (txn.seq,))
                    conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(txn.seq)))
                # Commit and publish as one step for the follower: it never applies a
                # record of this group to the catalog in between.
                with self._sync.lock:
                    conn.commit()
                    txn.catalog.publish()
                    self._sync.seq = max(self._sync.seq, txn.seq)
        except psycopg.OperationalError as exc:
            # The connection or the server went away (a database failover): the group
            # may or may not have committed. The next group reconnects (`begin`).
            self._abort()
            raise Unavailable(f"database unavailable: {exc}") from exc
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        self.prefetched = {}
        conn = self._conn
        if conn is None:
            return
        try:
            conn.rollback()
        except psycopg.Error:
            self.close()  # reconnect at the next group

    @staticmethod
    def _write(conn: Conn, txn: Txn) -> None:
        ranges, points = txn.net_writes()
        for cf, begin, end in ranges:
            if cf is CF.LOG:
                conn.execute(
                    "DELETE FROM edgekv_change_log WHERE seq >= %s AND seq < %s",
                    (codec.read_u64(begin), codec.read_u64(end)),
                )
            else:
                conn.execute(f"DELETE FROM {TABLES[cf]} WHERE k >= %s AND k < %s", (begin, end))
        deletes: dict[CF, list[bytes]] = {}
        puts: dict[CF, tuple[list[bytes], list[bytes]]] = {}
        for (cf, key), value in points.items():
            if value is None:
                deletes.setdefault(cf, []).append(key)
            else:
                ks, vs = puts.setdefault(cf, ([], []))
                ks.append(key)
                vs.append(value)
        for cf, keys in deletes.items():
            if cf is CF.LOG:
                conn.execute(
                    "DELETE FROM edgekv_change_log WHERE seq = ANY(%s)", ([codec.read_u64(k) for k in keys],)
                )
            else:
                conn.execute(f"DELETE FROM {TABLES[cf]} WHERE k = ANY(%s)", (keys,))
        for cf, (keys, values) in puts.items():
            if cf is CF.LOG:
                conn.execute(
                    "INSERT INTO edgekv_change_log (seq, kind, v)"
                    " SELECT * FROM unnest(%s::bigint[], %s::smallint[], %s::bytea[])",
                    ([codec.read_u64(k) for k in keys], [v[0] for v in values], values),
                )
            else:
                conn.execute(
                    f"INSERT INTO {TABLES[cf]} (k, v) SELECT * FROM unnest(%s::bytea[], %s::bytea[])"
                    " ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                    (keys, values),
                )
