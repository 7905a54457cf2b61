"""`PgEngine`: commit groups in PostgreSQL, with seq equal to commit order.

**Why seq is commit order, across every central.** A PostgreSQL sequence or identity
column hands out numbers at call time, not at commit: a transaction may take seq 10
and commit after another's seq 11 is visible, and a reader that already passed 11
would never see 10. Instead every commit group, on any central, starts by locking the
single counter row:

    SELECT last_seq FROM edgekv_seq WHERE id = 1 FOR UPDATE

and ends by writing the new last seq into it and committing. The row lock is released
only when the commit is visible, so a second group (on this central or another) reads
the counter only after the first group's changes are visible, and numbers its changes
after them. Seqs are therefore handed out in commit (visibility) order, without gaps:
any snapshot that sees seq n sees every seq < n, and a follower that reads the log by
seq (pg_follow.py) misses nothing. The lock also serializes the reads operations
decide on (create vs update, conditions, titles): decisions are as if one writer ran
them all, exactly as on RocksDB.

**The lock is held as briefly as the rule allows.** The groups of all centrals run one
at a time under it, so what it covers bounds the writes/s of the whole deployment. A
group is:

1. `prepare`, before the writer collects the group: BEGIN, lock the counter, read the
   catalog records past our position (one round trip, which waits for the lock; ops
   queued meanwhile, while another central holds it, join this group);
2. `begin`: one round trip prefetching every entry the group's ops read;
3. the ops run in Python against that (writer.py);
4. `commit`: one round trip, a pipeline of three transactions:
   a. the group's net writes (one statement per table), the counter, and COMMIT with
      `synchronous_commit = off`: the commit is visible and the lock released at once,
      without waiting for the WAL flush (an fsync, most of the lock hold before);
   b. a transaction that writes only a logical WAL message and commits with the
      server's own synchronous_commit: it waits for the WAL flush, and a synchronous
      standby, up to its commit record, which comes after a's; when it returns, the
      group is durable, and only then is anything acknowledged. No lock is held, so the
      flushes of several centrals can share an fsync;
   c. NOTIFY with the group's last seq, committed asynchronously (a NOTIFY holds the
      notification queue's lock through its commit: it must not wait for a flush).
      Other centrals' followers learn that the log is durable up to that seq.

A group's commit is thus visible before it is durable, as with RocksDB (an unsynced
write, then flush_wal): a read may see a write that a crash would lose, but that write
was never acknowledged, and nothing reaches a replica before it is durable (followers
hand on only up to the durable seq). A group that decided on another group's data not
yet durable is acknowledged after its own flush, which covers that data (the WAL is
one sequence). The catalog is the one thing a group applies from such commits (records
of other centrals, under the lock): a writer that lost its connection reloads it from
the tables when it reconnects, since a failover may have dropped those commits and will
reuse their seqs.

**A hung central** (SIGSTOP, a frozen VM, a partition without a reset) that holds the
lock would stall every central. The writer session sets `lock_timeout` (LOCK_WAIT_S);
when a lock wait times out, the writer ends (pg_terminate_backend) every other edgekv
writer session (application_name WRITER_APP) whose transaction has been open for more
than HUNG_WRITER_S while it waits for its client (wait_event_type 'Client'): a healthy
group holds the lock for milliseconds, and a writer busy in the database waits on
something else. This also covers what `idle_in_transaction_session_timeout` (set too,
as a backstop) does not: a central stopped in the middle of a pipeline, whose session
is 'active' between statements. The other centrals resume after at most about
HUNG_WRITER_S + LOCK_WAIT_S.

**The catalog.** Each central keeps namespaces and tokens in memory (catalog.py).
Changes committed through other centrals reach it through the log: a group first
applies every namespace and token record between its catalog's position and the
counter it just locked (`CatalogSync`), so its checks see them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Final

import psycopg

from kvcore.errors import Unavailable
from kvcore.model import ChangeKind
from kvcore.store import codec
from kvcore.store.ops import BulkDeleteOp, BulkPutOp, DeleteOp, GroupOp, PurgeOp, PutOp
from kvcore.store.pg_catalog import FLUSH, CatalogSync
from kvcore.store.pg_schema import TABLES, WRITER_APP, notify_channel
from kvcore.store.txn import CF, Txn
from kvcore.store.writer import Op

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

LOCK_WAIT_S: Final = 1.0  # a lock wait this long looks for a hung holder
HUNG_WRITER_S: Final = 3.0  # a writer transaction this old, waiting on its client, is hung
IDLE_IN_TRANSACTION_S: Final = 10.0  # the server's own backstop (no other writer waiting)

# prepare=False: a plan cached while the table was small (a seq scan) would be kept
# as it grows, under the lock.
_PREFETCH = "SELECT k, v FROM edgekv_entries WHERE k = ANY(%s)"
_LOCK = "SELECT last_seq FROM edgekv_seq WHERE id = 1 FOR UPDATE"
_SESSION = (
    "SELECT set_config('application_name', %s, false), set_config('lock_timeout', %s, false),"
    " set_config('idle_in_transaction_session_timeout', %s, false)"
)
_END_HUNG = (
    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE application_name LIKE %s AND pid <> pg_backend_pid() AND datname = current_database()"
    " AND wait_event_type = 'Client' AND xact_start < clock_timestamp() - make_interval(secs => %s)"
)


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
        self._channel = ""
        self._tables = {cf: _Table(self, cf) for cf in CF}
        self.prefetched: dict[bytes, bytes | None] = {}
        self._locked_seq: int | None = None  # the counter, locked by `prepare`
        self._lost = False  # the connection was dropped after an error

    @property
    def conn(self) -> Conn:
        assert self._conn is not None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed or self._conn.broken:
            reconnect = self._conn is not None or self._lost
            self.close()
            conn = self._connect()
            # Transactions are explicit (BEGIN ... COMMIT), so that one pipeline can hold
            # several of them (`commit`).
            conn.autocommit = True
            conn.execute(
                _SESSION,
                (f"{WRITER_APP} {os.getpid()}", f"{LOCK_WAIT_S}s", f"{IDLE_IN_TRANSACTION_S}s"),
            )
            self._channel = notify_channel(conn)
            if reconnect:  # the database may have failed over, losing what was not durable
                self._sync.reload(conn)
            self._lost = False
            self._conn = conn
        return self._conn

    def prepare(self) -> None:
        """Take the counter lock before the writer collects its group: while another
        central's group holds it, this central's writes keep queueing and then commit
        together (bigger groups, fewer turns of the lock). A failure is left to `begin`."""
        self._locked_seq = None
        try:
            self._locked_seq = self._lock(self._connection())
        except Exception:
            self._abort()

    def _lock(self, conn: Conn) -> int:
        """BEGIN, lock the counter, catch the catalog up to it; returns the counter. A
        wait longer than LOCK_WAIT_S ends hung writers, then waits again."""
        while True:
            try:
                with conn.pipeline():
                    conn.execute("BEGIN")
                    locked = conn.execute(_LOCK)
                    catalog = self._sync.since_query(conn)
                row = locked.fetchone()
                assert row is not None, "edgekv_seq has no row: the schema was not migrated"
                self._sync.apply_rows(catalog.fetchall(), int(row[0]))
                return int(row[0])
            except psycopg.errors.LockNotAvailable:
                conn.rollback()
                for pid, _ in conn.execute(_END_HUNG, (WRITER_APP + " %", HUNG_WRITER_S)).fetchall():
                    log.error(
                        "ended PostgreSQL session %d: a central's writer that held the seq lock "
                        "for more than %.0f s without a word from its central (hung?)",
                        pid,
                        HUNG_WRITER_S,
                    )

    def begin(self, now: float, ops: Sequence[Op[Any]]) -> Txn:
        conn = self._connection()
        locked_seq, self._locked_seq = self._locked_seq, None
        try:
            if locked_seq is None:
                locked_seq = self._lock(conn)
            keys = _entry_keys(ops)
            self.prefetched = dict.fromkeys(keys)
            if keys:
                rows = conn.execute(_PREFETCH, (keys,), prepare=False).fetchall()
                self.prefetched.update((bytes(k), bytes(v)) for k, v in rows)
        except BaseException:
            self._abort()
            raise
        return Txn(self._tables, self._sync.catalog, locked_seq, now)

    def commit(self, txn: Txn) -> None:
        """Make the group durable (see the module docstring for the three transactions
        of its one round trip) and publish its catalog changes. Its creates carry their
        value already (kvcore.store.ops, at log time), for the listeners."""
        self.prefetched = {}
        if txn.empty:
            self._abort()
            return
        conn = self.conn
        ranges, points = txn.net_writes()
        try:
            # Commit and publish as one step for the follower: it never applies a record
            # of this group to the catalog in between.
            with self._sync.lock:
                with conn.pipeline():
                    self._write(conn, txn, ranges, points)
                    if txn.changes:
                        conn.execute("UPDATE edgekv_seq SET last_seq = %s WHERE id = 1", (txn.seq,))
                        conn.execute("SET LOCAL synchronous_commit = off")
                    conn.execute("COMMIT")  # visible, the lock released: the next group may go
                    if txn.changes:
                        conn.execute("BEGIN")
                        conn.execute(FLUSH)
                        conn.execute("COMMIT")  # flushed past the group's commit: durable
                        conn.execute("BEGIN")
                        conn.execute("SET LOCAL synchronous_commit = off")
                        conn.execute("SELECT pg_notify(%s, %s)", (self._channel, str(txn.seq)))
                        conn.execute("COMMIT")
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
            self._lost = True

    @staticmethod
    def _write(conn: Conn, txn: Txn, ranges: _Ranges, points: _Points) -> None:
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
                    "DELETE FROM edgekv_change_log WHERE seq = ANY(%s)",
                    ([codec.read_u64(k) for k in keys],),
                    prepare=False,
                )
            else:
                conn.execute(f"DELETE FROM {TABLES[cf]} WHERE k = ANY(%s)", (keys,), prepare=False)
        for cf, (keys, values) in puts.items():
            if cf is CF.LOG:
                seqs = [codec.read_u64(k) for k in keys]
                creates = {
                    c.seq: codec.entry_key(codec.ns_bytes(c.namespace_id), c.key)
                    for c in txn.changes
                    if c.kind is ChangeKind.KEY_CREATE
                }
                conn.execute(
                    "INSERT INTO edgekv_change_log (seq, kind, v, k)"
                    " SELECT * FROM unnest(%s::bigint[], %s::smallint[], %s::bytea[], %s::bytea[])",
                    (seqs, [v[0] for v in values], values, [creates.get(seq) for seq in seqs]),
                )
            else:
                conn.execute(
                    f"INSERT INTO {TABLES[cf]} (k, v) SELECT * FROM unnest(%s::bytea[], %s::bytea[])"
                    " ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                    (keys, values),
                )


_Ranges = list[tuple[CF, bytes, bytes]]
_Points = dict[tuple[CF, bytes], bytes | None]
