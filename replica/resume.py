"""The replica's resume point: where to pick up the change stream, persisted.

A tiny RocksDB (rocksdict) in `<data_dir>/replica-state` holds the last `safe_seq`
the replica applied (every change <= it has been applied). It is written at most
every `write_every_s` (the stream brings a batch per forwarded write under load; a
heartbeat writes what a burst left pending), to the WAL without an fsync: losing the
last few batches to a crash only makes the replica resume a little earlier, and
re-sent changes are harmless (versions are compared). A seq lower than the one on
disk (central reset the stream to an older history) is written at once and synced:
resuming past it could skip changes. `close()` writes what is pending and flushes,
so a clean shutdown loses nothing.

The region is stored beside it: a data dir reused for another region starts over
from 0 instead of resuming someone else's stream position.
"""

from __future__ import annotations

import logging
import os

from rocksdict import AccessType, Options, Rdict, WriteOptions

from kvcore.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("edgekv.replica.resume")

STATE_DIR = "replica-state"
_SAFE_SEQ = b"safe_seq"
_REGION = b"region"
WRITE_EVERY_S = 0.1  # seconds between writes of a rising resume point


class ResumePoint:
    """Last applied `safe_seq`, persisted; `safe_seq` is 0 for a fresh data dir."""

    def __init__(
        self, data_dir: str, region: str, *, clock: Clock = SYSTEM_CLOCK, write_every_s: float = WRITE_EVERY_S
    ) -> None:
        path = os.path.join(data_dir, STATE_DIR)
        os.makedirs(path, exist_ok=True)
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        self._db: Rdict | None = Rdict(path, options=opts)
        self._write_opts = WriteOptions()
        self._write_opts.sync = False
        self._synced_opts = WriteOptions()
        self._synced_opts.sync = True
        stored_region = self._db.get(_REGION)
        raw = self._db.get(_SAFE_SEQ)
        seq = int(raw) if raw is not None else 0
        if stored_region is not None and stored_region.decode() != region:
            log.warning(
                "data dir %s belonged to region %r, not %r: starting the stream from scratch",
                data_dir,
                stored_region.decode(),
                region,
            )
            seq = 0
        self._safe_seq = self._persisted = seq
        self._clock = clock
        self._write_every_s = write_every_s
        self._next_write = clock.monotonic()
        self._db.put(_REGION, region.encode(), self._write_opts)

    @property
    def safe_seq(self) -> int:
        return self._safe_seq

    def save(self, safe_seq: int) -> None:
        """Make `safe_seq` the resume point: in memory at once; on disk at once if it is
        lower than the seq there (synced), else when `write_every_s` has passed since
        the last write (this call or a later one, e.g. a heartbeat's same seq)."""
        if self._db is None:
            return
        self._safe_seq = safe_seq
        now = self._clock.monotonic()
        if safe_seq < self._persisted:
            self._write(now, self._synced_opts)
        elif safe_seq != self._persisted and now >= self._next_write:
            self._write(now, self._write_opts)

    def _write(self, now: float, opts: WriteOptions) -> None:
        """Put the in-memory resume point on disk with `opts` (the WAL; synced or not)."""
        assert self._db is not None
        self._db.put(_SAFE_SEQ, str(self._safe_seq).encode(), opts)
        self._persisted = self._safe_seq
        self._next_write = now + self._write_every_s

    def close(self) -> None:
        """Write what is pending, flush to disk and release the DB (idempotent)."""
        if self._db is None:
            return
        if self._persisted != self._safe_seq:
            self._write(self._clock.monotonic(), self._write_opts)
        self._db.flush_wal(True)
        self._db.flush(True)
        self._db.close()
        self._db = None


def read_safe_seq(data_dir: str) -> int | None:
    """The resume point on disk in a replica's data dir, running or stopped (tests,
    tools); opened read-only, so a running replica keeps its lock."""
    path = os.path.join(data_dir, STATE_DIR)
    if not os.path.isdir(path):
        return None
    opts = Options(raw_mode=True)
    db = Rdict(path, options=opts, access_type=AccessType.read_only())
    try:
        raw = db.get(_SAFE_SEQ)
        return int(raw) if raw is not None else None
    finally:
        db.close()
