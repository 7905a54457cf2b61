"""`PgStore`: the `Store` on PostgreSQL, for centrals beyond one machine.

Same contract and the same operations as `RocksStore` (the write side is `OpStore`
and ops.py; the tables hold codec.py's encodings, see pg_schema.py), with these
differences that come from several centrals sharing one database:

* a commit group is one PostgreSQL transaction that locks the seq counter row, so
  seq is commit order across all centrals (pg_engine.py explains why);
* listeners hear every change from every central, from the log follower
  (pg_follow.py), not from local commits; `committed_seq` is the highest seq known
  committed here (delivered to listeners, or committed by this central);
* the catalog of namespaces and tokens follows the log; a lookup that misses catches
  up from the database once before answering "not found" (another central may have
  just created the namespace or token);
* expiry purge and log trim run on one central at a time (a session advisory lock);
* reads for the event loop (`read(...)`) wait on reader threads,
  so a database round trip never stalls the event loop.

Reads use a small connection pool in autocommit mode; each read is one statement.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

from kvcore import limits
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import NamespaceNotFound, Unavailable
from kvcore.model import Change, KeyPage, Namespace, Token
from kvcore.store import codec, scan
from kvcore.store.base import LogTruncated, Store
from kvcore.store.ops import TrimLogOp
from kvcore.store.opstore import OpStore
from kvcore.store.pg_catalog import CatalogSync, load_catalog
from kvcore.store.pg_engine import PgEngine
from kvcore.store.pg_follow import LogFollower
from kvcore.store.pg_schema import MAINTENANCE_LOCK, migrate
from kvcore.store.writer import GroupCommitWriter

log = logging.getLogger(__name__)

LIST_PAGE_ROWS: Final = 1000
CONNECT_TIMEOUT_S: Final = 5

# psycopg_pool retries a failed connect after 1 s, then 2, 4, 8 s...: after a database
# failover of a second or two, reads would wait out a backoff of several seconds (and
# time out) although the new primary is up. 0.2 s growing by 1.5x still backs off from a
# long outage (11 s after 10 failures). Class attributes: read by every pool here.
AttemptWithBackoff.INITIAL_DELAY = 0.2
AttemptWithBackoff.DELAY_BACKOFF = 1.5
CLOSE_DRAIN_S: Final = 5.0


_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")
_P = ParamSpec("_P")


def _unavailable_on_db_errors(fn: _F) -> _F:
    """A read that cannot reach the database (down, failing over) is a 503 Unavailable,
    as for a replica that cannot reach central; the pool reconnects for the next one."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise Unavailable(f"service unavailable: the store's database cannot be reached ({exc})") from exc

    return wrapper  # type: ignore[return-value]


class PgStore(OpStore):
    def __init__(
        self,
        url: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        log_retention: int = 1_000_000,
        purge_interval_s: float = 1.0,
        pool_size: int = 8,
        poll_s: float = 1.0,
        timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        """`timeout_s`: how long a connect, or a read waiting for a pooled connection,
        may take before the call fails with Unavailable."""
        super().__init__(clock=clock, log_retention=log_retention, purge_interval_s=purge_interval_s)
        self._url = url
        self._closed = False
        self._timeout_s = timeout_s
        with self._connect() as conn:
            migrate(conn)
            catalog, seq = load_catalog(conn)
        self._catalog = catalog
        self._sync = CatalogSync(catalog, seq)
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout_s))},
            timeout=timeout_s,  # a read waits this long for a connection, then fails
            # A connection broken by a database failover is replaced before it is lent.
            check=ConnectionPool.check_connection,
            name="edgekv-store",
            open=True,
        )
        self._pool.wait(timeout_s)
        # Reads for coroutines wait on the database here, one per pooled connection.
        self._readers = ThreadPoolExecutor(pool_size, thread_name_prefix="edgekv-store-read")
        self._engine = PgEngine(self._connect, self._sync)
        self._writer = GroupCommitWriter(self._engine, clock, seq=seq, on_commit=self._committed)
        self._follower = LogFollower(self._connect, self._deliver, self._resync, seq=seq, poll_s=poll_s)
        self._stop = threading.Event()
        self._maintenance = threading.Thread(target=self._maintain, name="edgekv-store-purge", daemon=True)
        self._maintenance.start()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._url, connect_timeout=max(1, round(self._timeout_s)))

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._maintenance.join()
        self._writer.close()
        self._engine.close()
        # Listeners hear this central's own last commits before the store goes away.
        self._follower.wait_for(self._writer.seq, CLOSE_DRAIN_S)
        self._follower.close()
        self._readers.shutdown(wait=True)
        self._pool.close()

    def _committed(self, changes: Sequence[Change]) -> None:
        self._follower.local(changes)

    def _deliver(self, changes: Sequence[Change]) -> None:
        self._sync.apply(changes, changes[-1].seq)
        self._notify(changes)  # creates carry their value when small (pg_follow.py)

    # ---------------------------------------------------------------- catalog

    def _resync(self) -> int:
        """Reload the catalog from the tables (the log lost records it needed); returns
        the seq the snapshot is at."""
        with self._connect() as conn:
            return self._sync.reload(conn)

    @_unavailable_on_db_errors
    def _refresh_catalog(self) -> None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT last_seq FROM edgekv_seq WHERE id = 1").fetchone()
            if row is not None:
                self._sync.catch_up(conn, int(row[0]))

    def _namespace(self, account_id: str, namespace_id: str) -> Namespace:
        try:
            return super()._namespace(account_id, namespace_id)
        except NamespaceNotFound:
            self._refresh_catalog()
            return super()._namespace(account_id, namespace_id)

    def token_by_hash(self, secret_hash: str) -> Token | None:
        token = super().token_by_hash(secret_hash)
        if token is None:
            self._refresh_catalog()
            token = super().token_by_hash(secret_hash)
        return token

    # ---------------------------------------------------------------- entries: reads

    async def read(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """On a reader thread: a database round trip must not stall the event loop."""
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._readers, call)

    @_unavailable_on_db_errors
    def _raw_entries(self, entry_keys: Sequence[bytes]) -> list[bytes | None]:
        with self._pool.connection() as conn:
            sql = "SELECT k, v FROM edgekv_entries WHERE k = ANY(%s)"
            rows = conn.execute(sql, (list(entry_keys),), prepare=False).fetchall()
        found = {bytes(k): bytes(v) for k, v in rows}
        return [found.get(k) for k in entry_keys]

    @_unavailable_on_db_errors
    def list_keys(self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str) -> KeyPage:
        nsb, low, start = self._list_range(account_id, namespace_id, prefix, cursor)
        limit = limits.validate_list_limit(limit)
        return scan.key_page(
            self._rows(start, codec.namespace_range(nsb)[1]), nsb, low, limit, self._clock.now()
        )

    def _rows(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries in [start, end) in key order, fetched a page at a time."""
        sql = "SELECT k, v FROM edgekv_entries WHERE k >= %s AND k < %s ORDER BY k LIMIT %s"
        while True:
            with self._pool.connection() as conn:
                rows = conn.execute(sql, (start, end, LIST_PAGE_ROWS)).fetchall()
            for k, v in rows:
                yield bytes(k), bytes(v)
            if len(rows) < LIST_PAGE_ROWS:
                return
            start = bytes(rows[-1][0]) + b"\x00"

    # ---------------------------------------------------------------- change log

    @property
    def committed_seq(self) -> int:
        return max(self._follower.seq, self._writer.seq)

    @property
    @_unavailable_on_db_errors
    def oldest_retained_seq(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT (SELECT min(seq) FROM edgekv_change_log), last_seq FROM edgekv_seq WHERE id = 1"
            ).fetchone()
        assert row is not None
        oldest, last = row
        return int(oldest) if oldest is not None else int(last) + 1

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        seq = max(seq, 0)
        if limit <= 0:
            return []
        return self._read_log(seq, limit)

    @_unavailable_on_db_errors
    def _read_log(self, seq: int, limit: int) -> list[Change]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT seq, v FROM edgekv_change_log WHERE seq > %s ORDER BY seq LIMIT %s", (seq, limit)
            ).fetchall()
        if rows and rows[0][0] != seq + 1:
            raise LogTruncated(f"seq {seq} is older than the retained log (oldest {rows[0][0]})")
        return [codec.decode_change(int(s), bytes(v)) for s, v in rows]

    # ---------------------------------------------------------------- maintenance

    def _expired_index_keys(self, limit: int) -> list[bytes]:
        upto = codec.u64(int(self._clock.now()) + 1)
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT k FROM edgekv_expiry WHERE k < %s ORDER BY k LIMIT %s", (upto, limit)
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def trim_log(self) -> int:
        """Drop change-log records beyond the newest `log_retention`; returns the oldest kept."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT last_seq FROM edgekv_seq WHERE id = 1").fetchone()
        assert row is not None
        oldest = int(row[0]) - self._log_retention + 1
        current = self.oldest_retained_seq
        if oldest > current:
            self.run(TrimLogOp(oldest))
            return oldest
        return current

    def _maintain(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.wait(self._purge_interval_s):
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = self._connect()
                    conn.autocommit = True
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (MAINTENANCE_LOCK,)).fetchone()
                if not (row and row[0]):
                    continue  # another central is at it
                try:
                    self.purge_expired()
                    self.trim_log()
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (MAINTENANCE_LOCK,))
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("store maintenance failed")
        if conn is not None:
            conn.close()


if TYPE_CHECKING:

    def _conforms(store: PgStore) -> Store:
        return store
