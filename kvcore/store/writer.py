"""The group-commit writer: one thread, one synced RocksDB write per group of operations.

A durable write costs one WAL fsync. Instead of paying it per operation, callers queue
operations and block on (or await) a future; the writer takes everything queued so far
(up to a bound, so one group cannot grow latency without limit), applies each against
the current state plus the group's own earlier writes, and commits the whole group
with a single synced write batch. N concurrent writers then share one fsync.

An operation that raises fails alone: its staged writes are dropped and the rest of
the group still commits. Futures resolve only after the batch is durable, and only
then are listeners told, in seq order.

The sync is a separate call: the batch is written unsynced, then `flush_wal(True)`
syncs the WAL. rocksdict holds the GIL for the whole of a synced `write` (fsync
included) but releases it in `flush_wal`; measured with `bench.writes.gil_probe`,
a Python thread makes no progress at all during a synced write and runs at full
speed during `flush_wal(True)`. Durability is the same: RocksDB's FlushWAL(sync)
syncs every WAL file written so far, and nothing is acknowledged before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Final, Protocol

from rocksdict import WriteOptions

from kvcore.clock import Clock
from kvcore.errors import InternalError, KVError, Unavailable
from kvcore.model import Change
from kvcore.store.catalog import Catalog
from kvcore.store.txn import CF, Txn

log = logging.getLogger(__name__)

MAX_GROUP_OPS: Final = 1000
MAX_GROUP_BYTES: Final = 16 * 1024 * 1024


class Op(Protocol):
    @property
    def size(self) -> int:
        """Approximate bytes this operation adds to a batch (for the group bound)."""
        ...

    def apply(self, txn: Txn) -> Any:
        """Stage the operation's writes in `txn`; raise KVError to fail it alone."""
        ...


# A waiter is a concurrent Future (sync callers block on it) or an asyncio Future of
# the caller's loop. Async waiters are resolved with one call_soon_threadsafe per loop
# per group rather than one per future: each of those is a self-pipe write and a loop
# wake-up, which otherwise costs the writer more than applying the operations.
_Waiter = Future[Any] | asyncio.Future[Any]
_Pending = tuple[Op, _Waiter]
_Outcome = tuple[_Waiter, bool, Any]
_STOP: Final = object()


class GroupCommitWriter:
    def __init__(
        self,
        db: Any,
        cfs: dict[CF, Any],
        handles: dict[CF, Any],
        catalog: Catalog,
        clock: Clock,
        *,
        seq: int,
        sync: bool,
        on_commit: Callable[[Sequence[Change]], None],
    ) -> None:
        self._db = db
        self._cfs = cfs
        self._handles = handles
        self._catalog = catalog
        self._clock = clock
        self._seq = seq
        self._on_commit = on_commit
        self._sync = sync
        self._write_options = WriteOptions()  # unsynced: the sync is flush_wal, GIL released
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="edgekv-store-writer", daemon=True)
        self._thread.start()

    @property
    def seq(self) -> int:
        """The last committed (durable) seq."""
        return self._seq

    def submit(self, op: Op) -> Future[Any]:
        fut: Future[Any] = Future()
        self._enqueue(op, fut)
        return fut

    def submit_async(self, op: Op) -> asyncio.Future[Any]:
        """Queue from a coroutine; the returned future belongs to the running loop."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(op, fut)
        return fut

    def _enqueue(self, op: Op, fut: _Waiter) -> None:
        # The lock makes "closed" and "queued before the stop marker" one decision, so
        # no operation is left in the queue unanswered after close.
        with self._close_lock:
            if self._closed:
                raise Unavailable("store is closed")
            self._queue.put((op, fut))

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    # -- writer thread

    def _run(self) -> None:
        carry: _Pending | None = None
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is _STOP:
                return
            group: list[_Pending] = [first]  # type: ignore[list-item]
            size = group[0][0].size
            stop = False
            while len(group) < MAX_GROUP_OPS and size < MAX_GROUP_BYTES:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                pending: _Pending = item  # type: ignore[assignment]
                if size + pending[0].size > MAX_GROUP_BYTES:
                    carry = pending
                    break
                group.append(pending)
                size += pending[0].size
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Pending]) -> None:
        txn = Txn(self._cfs, self._catalog, self._seq, self._clock.now())
        outcomes: list[_Outcome] = []
        for op, fut in group:
            # A caller cancelled before we got here withdraws the op. Once running, a
            # concurrent Future can no longer be cancelled; an asyncio one can, and then
            # simply receives no answer (the op still commits).
            if isinstance(fut, Future):
                if not fut.set_running_or_notify_cancel():
                    continue
            elif fut.cancelled():
                continue
            try:
                result = op.apply(txn)
            except KVError as exc:
                txn.rollback_op()
                outcomes.append((fut, False, exc))
                continue
            except Exception as exc:
                log.exception("store operation %r failed", op)
                txn.rollback_op()
                outcomes.append((fut, False, InternalError(f"store operation failed: {exc}")))
                continue
            txn.commit_op()
            outcomes.append((fut, True, result))

        if not txn.empty:
            try:
                self._db.write(txn.build_batch(self._handles), self._write_options)
                if self._sync:
                    self._db.flush_wal(True)
            except Exception as exc:
                # Nothing of the group is durable: fail every op, keep the old seq and mirror.
                log.exception("store write batch failed")
                error = InternalError(f"store write failed: {exc}")
                _resolve([(fut, False, error) for fut, _, _ in outcomes])
                return
            txn.catalog.publish()
            self._seq = txn.seq

        _resolve(outcomes)
        if txn.changes:
            try:
                self._on_commit(txn.changes)
            except Exception:
                log.exception("change listener failed")


def _resolve(outcomes: list[_Outcome]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        fut = outcome[0]
        if isinstance(fut, Future):
            _settle(outcome)
        else:
            by_loop.setdefault(fut.get_loop(), []).append(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left waiting
            loop.call_soon_threadsafe(_settle_all, items)


def _settle_all(outcomes: list[_Outcome]) -> None:
    for outcome in outcomes:
        _settle(outcome)


def _settle(outcome: _Outcome) -> None:
    fut, ok, value = outcome
    if fut.done():  # an asyncio waiter cancelled meanwhile
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
