"""`LogFollower`: one central's reader of the shared change log.

Every central, whichever central committed a change, learns of it here and hands it
to the store's listeners (the fan-out hub) in seq order, exactly once, once durable.

**Order.** Reading the log by seq is the truth: seq is commit order (pg_engine.py),
so "everything after my position" never skips a change committed later with a
smaller seq.

**Durability.** A group's commit is visible before it is durable (pg_engine.py: the
counter lock is not held through the WAL flush), so the follower hands on changes
only up to the *durable seq*, which it learns from:

* this central's own groups (`local`), handed over once their flush is done;
* NOTIFY payloads: every central notifies the last seq of each group once it is
  flushed; the WAL is one sequence, so every smaller seq is durable too;
* a probe, when the durable seq has not moved for `poll_s` while the counter is
  ahead (a notification lost, or a central that died between its commit and its
  flush): a transaction that reads the counter and writes a logical WAL message,
  committed with the server's synchronous_commit, so it waits for the flush (and a
  synchronous standby) past every commit it saw.

**Cost.** This central's own groups come from memory (with their create values), not
from the database. Other centrals' changes are read a page per round trip on the
follower's own connection, each create joined with its entry (`k`, pg_schema.py), so
the hub reads no values for creates. LISTEN runs on a second connection, in a thread
that only records payloads and wakes the follower.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final

import psycopg
from psycopg import sql

from kvcore.errors import LogTruncated
from kvcore.limits import MAX_METADATA_BYTES
from kvcore.model import Change
from kvcore.settings import MAX_PUSH_VALUE_BYTES
from kvcore.store import codec
from kvcore.store.pg_catalog import FLUSH
from kvcore.store.pg_schema import notify_channel

log = logging.getLogger(__name__)

PAGE: Final = 1000
RETRY_S: Final = 0.5
# The biggest entry record whose value may travel with its create: the largest push
# limit a central accepts, an entry header and the largest metadata.
RECORD_PUSH_MAX_BYTES: Final = MAX_PUSH_VALUE_BYTES + 64 + MAX_METADATA_BYTES

# The value is a scalar subquery, one primary-key probe per row of the page: a join
# could be planned as a scan of every entry. prepare=False everywhere below: a plan
# cached while the tables were empty would scan them.
_READ: Final = (
    "SELECT l.seq, l.v, (SELECT e.v FROM edgekv_entries e WHERE e.k = l.k AND length(e.v) <= %s)"
    " FROM edgekv_change_log l WHERE l.seq > %s AND l.seq <= %s ORDER BY l.seq LIMIT %s"
)
_COUNTER: Final = "SELECT last_seq FROM edgekv_seq WHERE id = 1"

Conn = psycopg.Connection[Any]


def read_page(conn: Conn, after: int, upto: int, limit: int = PAGE) -> list[Change]:
    """The changes in (after, upto], at most `limit`, creates with their value when it
    is still that version and small enough to push. LogTruncated when `after + 1` was
    trimmed away."""
    rows = conn.execute(_READ, (RECORD_PUSH_MAX_BYTES, after, upto, limit), prepare=False).fetchall()
    if not rows or rows[0][0] != after + 1:
        oldest = rows[0][0] if rows else f"none up to {upto}"
        raise LogTruncated(f"seq {after} is older than the retained log (oldest {oldest})")
    changes: list[Change] = []
    for seq, v, raw in rows:
        change = codec.decode_change(int(seq), bytes(v))
        if raw is not None:
            entry = codec.decode_entry(change.key, bytes(raw))
            if entry.version == change.seq and len(entry.value) <= MAX_PUSH_VALUE_BYTES:
                change = replace(change, value=entry.value, has_value=True)
        changes.append(change)
    return changes


class LogFollower:
    def __init__(
        self,
        connect: Callable[[], Conn],
        deliver: Callable[[Sequence[Change]], None],
        resync: Callable[[], int],
        *,
        seq: int,
        poll_s: float = 1.0,
    ) -> None:
        """`deliver` gets each page, in seq order, starting after `seq` (durable when
        the follower starts); `resync()` rebuilds what followed the log when its part
        was trimmed before it was read, and returns the seq to go on from."""
        self._connect = connect
        self._deliver = deliver
        self._resync = resync
        self._seq = seq  # every change <= seq has been delivered
        self._poll_s = poll_s
        self._lock = threading.Lock()  # _local, _durable, _durable_at, _probe_due
        self._local: dict[int, list[Change]] = {}  # first seq -> a group committed here
        self._durable = seq  # every change <= this is committed and durable
        self._durable_at = time.monotonic()
        self._probe_due = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._follow, name="edgekv-log-follower", daemon=True),
            threading.Thread(target=self._listen, name="edgekv-log-listen", daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def seq(self) -> int:
        """Every change <= seq has been delivered."""
        return self._seq

    def local(self, changes: Sequence[Change]) -> None:
        """A group this central committed and made durable: consecutive seqs, creates
        carrying their value when small. Delivered in its turn without a read."""
        if not changes:
            return
        with self._lock:
            self._local[changes[0].seq] = list(changes)
            self._advance(changes[-1].seq)
        self._wake.set()

    def durable(self, seq: int) -> None:
        """Every change <= seq is durable (a NOTIFY payload)."""
        with self._lock:
            self._advance(seq)
        if seq > self._seq:
            self._wake.set()

    def _advance(self, seq: int) -> None:  # under _lock
        if seq > self._durable:
            self._durable = seq
            self._durable_at = time.monotonic()

    def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Wait until every change <= seq is delivered; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._seq < seq and not self._stop.is_set():
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.002)
        return self._seq >= seq

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=5)

    # -- the follower thread

    def _follow(self) -> None:
        conn: Conn | None = None
        while not self._stop.is_set():
            self._wake.wait(self._poll_s)
            self._wake.clear()
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = self._connect()
                    conn.autocommit = True
                self._drain(conn)
                if self._probe(conn):
                    self._drain(conn)
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("reading the change log failed; retrying")
                if conn is not None:
                    conn.close()
                    conn = None
                self._stop.wait(RETRY_S)
                self._wake.set()
        if conn is not None:
            conn.close()

    def _drain(self, conn: Conn) -> None:
        while not self._stop.is_set():
            with self._lock:
                for first in [f for f in self._local if f <= self._seq]:
                    del self._local[first]  # already read from the log
                group = self._local.pop(self._seq + 1, None)
                upto = self._durable
                if self._local:
                    upto = min(upto, min(self._local) - 1)
            if group is not None:
                self._deliver(group)
                self._seq = group[-1].seq
                continue
            if upto <= self._seq:
                return
            try:
                page = read_page(conn, self._seq, upto)
            except LogTruncated:
                # Only if this central was cut off from the database for longer than the
                # retention: its subscribers miss what was trimmed, so say so loudly.
                log.error(
                    "change log trimmed past this central's position %d: catalog reloaded; restart "
                    "this central so its replicas resume from the database (or reset)",
                    self._seq,
                )
                self._seq = self._resync()
                continue
            self._deliver(page)
            self._seq = page[-1].seq

    def _probe(self, conn: Conn) -> bool:
        """Make sure of durability past a stalled durable seq; True if it moved."""
        now = time.monotonic()
        with self._lock:
            if not self._probe_due and now - self._durable_at < self._poll_s:
                return False
            self._probe_due = False
            self._durable_at = now  # probe at most once per poll_s
            durable = self._durable
        row = conn.execute(_COUNTER, prepare=False).fetchone()
        if row is None or int(row[0]) <= durable:
            return False
        with conn.transaction():  # its commit waits for the flush past what it read
            row = conn.execute(_COUNTER).fetchone()
            conn.execute(FLUSH)
        assert row is not None
        self.durable(int(row[0]))
        return True

    # -- the listener thread

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.autocommit = True
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(notify_channel(conn))))
                    with self._lock:  # anything committed while we were not listening
                        self._probe_due = True
                    self._wake.set()
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=0.2):
                            seq = n.payload.split(" ", 1)[0]
                            if seq.isdigit():
                                self.durable(int(seq))
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("LISTEN connection lost (%s); reconnecting", str(exc).splitlines()[0])
                time.sleep(RETRY_S)
