"""`RocksStore`: the `Store` over RocksDB (rocksdict, raw mode).

The write calls, validation and catalog reads are `OpStore`'s (opstore.py). Reads
run on the caller's thread straight against RocksDB (a point read is one get;
namespace ownership is checked against the in-memory catalog). Every write is an
operation handed to the group-commit writer (writer.py), which owns seq assignment,
the change log and durability. A maintenance thread periodically purges expired
entries and trims the change log, both through the writer so they never race a
concurrent put of the same key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rocksdict import Options, Rdict, WriteOptions

from kvcore import limits
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.model import Change, KeyPage
from kvcore.store import codec, scan
from kvcore.store.base import LogTruncated, Store
from kvcore.store.catalog import Catalog
from kvcore.store.ops import TrimLogOp
from kvcore.store.opstore import OpStore
from kvcore.store.txn import CF, Txn
from kvcore.store.writer import GroupCommitWriter, Op

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RocksEngine:
    """Commit groups against RocksDB: reads through the column families, one batch, one sync.

    The sync is a separate call: the batch is written unsynced, then `flush_wal(True)`
    syncs the WAL. rocksdict holds the GIL for the whole of a synced `write` (fsync
    included) but releases it in `flush_wal`; measured with `bench.writes.gil_probe`,
    a Python thread makes no progress at all during a synced write and runs at full
    speed during `flush_wal(True)`. Durability is the same: RocksDB's FlushWAL(sync)
    syncs every WAL file written so far, and nothing is acknowledged before it returns.
    """

    db: Any  # the Rdict
    cfs: dict[CF, Any]  # column family -> its Rdict
    handles: dict[CF, Any]  # column family -> its handle, for write batches
    catalog: Catalog
    seq: int  # the last committed seq
    sync: bool  # sync the WAL before acknowledging (False only in tests and benchmarks)
    # Unsynced: the sync is flush_wal, with the GIL released.
    write_options: Any = field(default_factory=WriteOptions)

    def begin(self, now: float, ops: Sequence[Op[Any]]) -> Txn:
        return Txn(self.cfs, self.catalog, self.seq, now)

    def commit(self, txn: Txn) -> None:
        if txn.empty:
            return
        self.db.write(txn.build_batch(self.handles), self.write_options)
        if self.sync:
            self.db.flush_wal(True)
        txn.catalog.publish()
        self.seq = txn.seq


class RocksStore(OpStore):
    def __init__(
        self,
        path: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        log_retention: int = 1_000_000,
        purge_interval_s: float = 1.0,
        sync: bool = True,
    ) -> None:
        super().__init__(clock=clock, log_retention=log_retention, purge_interval_s=purge_interval_s)

        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.create_missing_column_families(True)
        options.increase_parallelism(4)
        families = {cf.value: Options(raw_mode=True) for cf in CF}
        self._db = Rdict(path, options=options, column_families=families)
        self._cfs: dict[CF, Any] = {cf: self._db.get_column_family(cf.value) for cf in CF}
        self._handles: dict[CF, Any] = {cf: self._db.get_column_family_handle(cf.value) for cf in CF}
        self._data = self._cfs[CF.DATA]

        self._catalog = Catalog(
            (codec.decode_namespace(k, v) for k, v in self._cfs[CF.NAMESPACES].items()),
            (codec.decode_token(k, v) for k, v in self._cfs[CF.TOKENS].items()),
        )
        seq, self._oldest = self._recover_seqs()
        engine = RocksEngine(self._db, self._cfs, self._handles, self._catalog, seq=seq, sync=sync)
        self._writer = GroupCommitWriter(engine, clock, seq=seq, on_commit=self._notify)
        self._stop = threading.Event()
        self._maintenance = threading.Thread(target=self._maintain, name="edgekv-store-purge", daemon=True)
        self._maintenance.start()
        self._closed = False

    # ---------------------------------------------------------------- lifecycle

    def _recover_seqs(self) -> tuple[int, int]:
        """(last committed seq, oldest retained seq) as found on disk."""
        raw = self._cfs[CF.META].get(codec.META_LAST_SEQ)
        seq = codec.read_u64(raw) if raw is not None else 0
        bounds = scan.log_bounds(self._cfs[CF.LOG])
        if bounds is None:
            return seq, seq + 1
        # The meta record is written in the same batch as the log, so they agree; take
        # the max anyway so a damaged meta record can never make a seq repeat.
        return max(seq, bounds[1]), bounds[0]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._maintenance.join()
        self._writer.close()
        # Every column-family object keeps RocksDB open; drop them all so the same
        # path can be reopened in this process.
        for cf in self._cfs.values():
            cf.close()
        self._cfs.clear()
        self._handles.clear()
        del self._data
        self._db.close()

    # ---------------------------------------------------------------- entries: reads

    def _raw_entries(self, entry_keys: Sequence[bytes]) -> list[bytes | None]:
        raws: list[bytes | None] = self._data.get(list(entry_keys))  # one multi-get
        return raws

    def list_keys(self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str) -> KeyPage:
        nsb, low, start = self._list_range(account_id, namespace_id, prefix, cursor)
        limit = limits.validate_list_limit(limit)
        rows = scan.iter_rows(self._data, start, codec.namespace_range(nsb)[1])
        return scan.key_page(rows, nsb, low, limit, self._clock.now())

    # ---------------------------------------------------------------- change log

    @property
    def committed_seq(self) -> int:
        return self._writer.seq

    @property
    def oldest_retained_seq(self) -> int:
        return self._oldest

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        seq = max(seq, 0)
        if seq < self._oldest - 1:
            raise LogTruncated(f"seq {seq} is older than the retained log (oldest {self._oldest})")
        committed = self.committed_seq
        if seq >= committed or limit <= 0:
            return []
        # Only committed changes: a batch being written is not yet acknowledged.
        out = scan.log_range(self._cfs[CF.LOG], seq, committed, limit)
        if not out or out[0].seq != seq + 1:
            # A trim ran between the check above and the read.
            raise LogTruncated(f"seq {seq} is older than the retained log (oldest {self._oldest})")
        return out

    # ---------------------------------------------------------------- maintenance

    def _expired_index_keys(self, limit: int) -> list[bytes]:
        return scan.expired_index_keys(self._cfs[CF.EXPIRY], self._clock.now(), limit)

    def trim_log(self) -> int:
        """Drop change-log records beyond the newest `log_retention`; returns the oldest kept."""
        oldest = self.committed_seq - self._log_retention + 1
        if oldest > self._oldest:
            # Raise the floor first: a reader racing the trim gets LogTruncated, never a gap.
            self._oldest = oldest
            self.run(TrimLogOp(oldest))
        return self._oldest

    def _maintain(self) -> None:
        while not self._stop.wait(self._purge_interval_s):
            try:
                self.purge_expired()
                self.trim_log()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("store maintenance failed")


if TYPE_CHECKING:
    # mypy proves the structural match with the Store protocol here, in strict kvcore.
    def _conforms(store: RocksStore) -> Store:
        return store
