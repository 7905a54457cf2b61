"""The group-commit writer: one thread, one durable commit per group of operations.

A durable write costs one WAL fsync (RocksDB's, or PostgreSQL's at COMMIT). Instead
of paying it per operation, callers queue operations and block on (or await) a
future; the writer takes everything queued so far (up to a bound, so one group cannot
grow latency without limit), applies each against the current state plus the group's
own earlier writes, and commits the whole group at once: one synced RocksDB write
batch, or one PostgreSQL transaction. N concurrent writers then share one fsync.

What a group is read against and how it is made durable belongs to the `Engine`
(rocks.py `RocksEngine`, pg_engine.py `PgEngine`); the grouping, the isolation of
each operation and the answers to waiters are here, shared by both.

An operation that raises fails alone: its staged writes are dropped and the rest of
the group still commits. Futures resolve only after the batch is durable, and only
then are listeners told, in seq order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Final, Protocol, TypeVar

from kvcore.clock import Clock
from kvcore.errors import InternalError, KVError, Unavailable
from kvcore.model import Change
from kvcore.store.ops import Op
from kvcore.store.txn import Txn

log = logging.getLogger(__name__)

MAX_GROUP_OPS: Final = 1000
MAX_GROUP_BYTES: Final = 16 * 1024 * 1024
R = TypeVar("R")
__all__ = ["Engine", "GroupCommitWriter", "Op"]


class Engine(Protocol):
    """Where a group's state is read and its writes made durable (writer thread only)."""

    def begin(self, now: float, ops: Sequence[Op[Any]]) -> Txn:
        """A new group's Txn as of `now` (seconds since the epoch) for `ops` (an engine
        may prefetch what they will read); may raise to fail the whole group."""
        ...

    def commit(self, txn: Txn) -> None:
        """Make the group durable, then publish its catalog changes; an empty group only
        ends whatever `begin` opened. Raises when nothing of the group is durable."""
        ...


# A waiter is a concurrent Future (sync callers block on it) or an asyncio Future of
# the caller's loop. Async waiters are resolved with one call_soon_threadsafe per loop
# per group rather than one per future: each of those is a self-pipe write and a loop
# wake-up, which otherwise costs the writer more than applying the operations.
_Waiter = Future[Any] | asyncio.Future[Any]
_Pending = tuple[Op[Any], _Waiter]
_Outcome = tuple[_Waiter, bool, Any]
_STOP: Final = object()


class GroupCommitWriter:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        seq: int,
        on_commit: Callable[[Sequence[Change]], None],
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._seq = seq
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="edgekv-store-writer", daemon=True)
        self._thread.start()

    @property
    def seq(self) -> int:
        """The last seq this writer committed (durable)."""
        return self._seq

    def submit(self, op: Op[R]) -> Future[R]:
        """Queue from a thread; block on the returned future for the durable result."""
        fut: Future[R] = Future()
        self._enqueue(op, fut)
        return fut

    def submit_async(self, op: Op[R]) -> asyncio.Future[R]:
        """Queue from a coroutine; the returned future belongs to the running loop."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._enqueue(op, fut)
        return fut

    def _enqueue(self, op: Op[Any], fut: _Waiter) -> None:
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
            # An engine may first wait for what serializes its commits (PostgreSQL's counter
            # lock): operations queued meanwhile join this group instead of the next.
            prepare = getattr(self._engine, "prepare", None)
            if prepare is not None:
                prepare()
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
        try:
            txn = self._engine.begin(self._clock.now(), [op for op, _ in group])
        except Exception as exc:
            log.exception("store could not start a commit group")
            unavailable = Unavailable(f"store unavailable: {exc}")
            _resolve([(fut, False, unavailable) for _, fut in group if _claim(fut)])
            return
        outcomes: list[_Outcome] = []
        for op, fut in group:
            # A caller cancelled before we got here withdraws the op. Once running, a
            # concurrent Future can no longer be cancelled; an asyncio one can, and then
            # simply receives no answer (the op still commits).
            if not _claim(fut):
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

        try:
            self._engine.commit(txn)
        except Exception as exc:
            # Nothing of the group is durable: fail every op, keep the old seq and mirror.
            log.exception("store write batch failed")
            # An engine that lost its database mid-commit says Unavailable (outcome unknown).
            error = exc if isinstance(exc, KVError) else InternalError(f"store write failed: {exc}")
            _resolve([(fut, False, error) for fut, _, _ in outcomes])
            return
        if not txn.empty:
            self._seq = txn.seq

        _resolve(outcomes)
        if txn.changes:
            try:
                self._on_commit(txn.changes)
            except Exception:
                log.exception("change listener failed")


def _claim(fut: _Waiter) -> bool:
    """False when the caller cancelled before the writer got to its operation."""
    if isinstance(fut, Future):
        return fut.set_running_or_notify_cancel()
    return not fut.cancelled()


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
