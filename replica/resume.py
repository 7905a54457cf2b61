"""The replica's resume point: where to pick up the change stream, persisted.

A tiny RocksDB (rocksdict) in `<data_dir>/replica-state` holds the last `safe_seq`
the replica applied (every change <= it has been applied), written after each
batch. Per-batch writes go to the WAL without an fsync: losing the last few
batches to a machine crash only makes the replica resume a little earlier, and
re-sent changes are harmless (versions are compared). `close()` flushes, so a clean
shutdown never loses the resume point.

The region is stored beside it: a data dir reused for another region starts over
from 0 instead of resuming someone else's stream position.
"""

from __future__ import annotations

import logging
import os

from rocksdict import Options, Rdict, WriteOptions

log = logging.getLogger("edgekv.replica.resume")

STATE_DIR = "replica-state"
_SAFE_SEQ = b"safe_seq"
_REGION = b"region"


class ResumePoint:
    """Last applied `safe_seq`, persisted; `safe_seq` is 0 for a fresh data dir."""

    def __init__(self, data_dir: str, region: str) -> None:
        path = os.path.join(data_dir, STATE_DIR)
        os.makedirs(path, exist_ok=True)
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        self._db: Rdict | None = Rdict(path, options=opts)
        self._write_opts = WriteOptions()
        self._write_opts.sync = False
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
        self._safe_seq = seq
        self._db.put(_REGION, region.encode(), self._write_opts)

    @property
    def safe_seq(self) -> int:
        return self._safe_seq

    def save(self, safe_seq: int) -> None:
        """Record a new resume point (cheap: one unsynced WAL append)."""
        if safe_seq == self._safe_seq or self._db is None:
            return
        self._safe_seq = safe_seq
        self._db.put(_SAFE_SEQ, str(safe_seq).encode(), self._write_opts)

    def close(self) -> None:
        """Flush to disk and release the DB (idempotent)."""
        if self._db is None:
            return
        self._db.flush_wal(True)
        self._db.flush(True)
        self._db.close()
        self._db = None


def read_safe_seq(data_dir: str) -> int | None:
    """The persisted resume point of a stopped replica's data dir (tests, tools)."""
    path = os.path.join(data_dir, STATE_DIR)
    if not os.path.isdir(path):
        return None
    opts = Options(raw_mode=True)
    db = Rdict(path, options=opts)
    try:
        raw = db.get(_SAFE_SEQ)
        return int(raw) if raw is not None else None
    finally:
        db.close()
