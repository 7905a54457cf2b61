"""`StreamedWrites`: point writes to central over one long-lived `Writes.WriteStream`.

Callers `await submit(op, timeout_s)` with a `PutOp` or `DeleteOp`, as with the unary
calls; underneath, writes travel many to a message (up to `MAX_BATCH_WRITES` writes or
`MAX_BATCH_BYTES`) and results come back tagged with each write's id.

When a message goes (the send rule). gRPC takes one message at a time on a stream;
while one is being written, writes queue. Otherwise the queue goes:
- at once when no write is awaiting its result (`unacked == 0`): an idle stream sends
  a lone write in the same step, from inside the caller (`start_eagerly`);
- at once when it holds half the writers (`max(EAGER_MIN_WRITES, writers // 2)`;
  `writers`: the most writes seen waiting at the same time, a peak that decays by
  `WRITERS_DECAY` per write), again from inside the caller's step, before the rest
  of the event loop's iteration runs;
- when a result comes back or a write finishes being sent, by the same two tests;
- else after `FLUSH_AFTER_S`, so a straggler never waits longer than that.
Under load this keeps two messages in flight, each of half the writers: central
commits one while the replica answers and parses the other. The writes of one
message come back together, their writers come back together, and they fill the
next message to the same size. Sending whatever is queued at the end of each
iteration instead (the rule before) sent one message of all 64 writers at a time:
the replica was idle through central's turn and central through the replica's
(0.56-0.62x of writing to central directly, see the note of issue 15).

A write is acknowledged only by its own result, which central sends after the group
holding it is durable (C6); a failed condition or a validation error comes back as
that write's KVError (412, 400, ...), as from the unary call. A write with no result
after its `timeout_s` fails with `Unavailable` ("central did not answer in time",
checked every `DEADLINE_SWEEP_S`), as a unary call past its deadline does. If it was
still queued here it is never sent; if it was sent, it carries its deadline
(`deadline_unix_ms`, wall clock) and central withdraws it unless its writer reached it
in time. Like a unary call's, a write past its deadline may still have committed only
if central applied it before the deadline. When the stream breaks, every write
awaiting a result fails with `Unavailable` (it may or may not have committed) and the
next write opens a new stream.

Not thread-safe: one event loop (the replica's) drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import grpc

from kvcore import wire
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import KVError, Unavailable, error_from_code
from kvcore.model import WriteResult
from kvcore.pb import edgekv_pb2 as pb
from kvcore.pb import edgekv_pb2_grpc as pb_grpc
from kvcore.rpc.eager import start_eagerly
from kvcore.rpc.errors import from_rpc_error
from kvcore.store.ops import DeleteOp, PutOp

log = logging.getLogger("edgekv.rpc.writes")

MAX_BATCH_WRITES: Final = 256
MAX_BATCH_BYTES: Final = 1024 * 1024
# The send rule (module docstring): the smallest message sent while others are in
# flight, the decay of the writer count per write, the longest a queued write waits.
EAGER_MIN_WRITES: Final = 16
WRITERS_DECAY: Final = 0.999
FLUSH_AFTER_S: Final = 0.005
# How often writes past their deadline are failed (seconds; a deadline is met to this).
DEADLINE_SWEEP_S: Final = 0.1
# Values larger than this go by the unary call: one big value must not hold up the
# small writes queued behind it on the stream.
MAX_STREAMED_VALUE_BYTES: Final = 64 * 1024


def result_from_pb(msg: pb.StreamedWriteResult) -> WriteResult | KVError:
    if msg.grpc_status:
        return error_from_code(msg.error_code, msg.grpc_status, msg.message)
    return wire.write_result_from_pb(msg.result)


def _stream_failure(err: Exception) -> KVError:
    """What the writes on a stream that failed with `err` fail with: `err` itself if it is
    a KVError, central's status for an RPC error, else Unavailable (logged: a failure of
    ours or of gRPC's)."""
    if isinstance(err, KVError):
        return err
    if isinstance(err, grpc.aio.AioRpcError):
        return from_rpc_error(err)
    log.warning("central write stream failed: %r", err)
    return Unavailable("central unavailable", detail=f"central write stream failed: {err!r}")


class _Waiter:
    """One write awaiting its result: the future its caller awaits, and its deadline
    (the loop's clock, seconds)."""

    __slots__ = ("deadline", "future")

    def __init__(self, future: asyncio.Future[WriteResult | KVError], deadline: float) -> None:
        self.future = future
        self.deadline = deadline


class StreamedWrites:
    def __init__(
        self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._stub = pb_grpc.WritesStub(channel)
        self._clock = clock
        self._metadata = metadata
        self._next_id = 0
        self._queue: list[tuple[pb.StreamedWrite, int, _Waiter]] = []  # (write, its bytes, waiter)
        self._waiters: dict[int, _Waiter] = {}
        self._call: Any = None  # the open stream, or None
        self._receiver: asyncio.Task[None] | None = None  # reads the open stream's results
        self._writing = False  # a message is being written (one at a time)
        self._writer: asyncio.Future[None] | None = None  # that write (a reference keeps it alive)
        self._unacked = 0  # writes sent whose results have not come back
        self._flush_timer: asyncio.TimerHandle | None = None  # sends what waited too long
        self._writers = 0.0  # about how many writes wait at once: a slowly decaying peak
        self._sweep: asyncio.TimerHandle | None = None
        self._error: KVError | None = None  # why the open stream is being torn down
        self.batches_sent = 0  # messages sent (tests, benchmarks)
        self._closed = False

    async def submit(self, op: PutOp | DeleteOp, timeout_s: float) -> WriteResult:
        """The op's result once central has it durable; its KVError if it failed;
        Unavailable if the stream broke or no result came within `timeout_s` seconds."""
        if self._closed:
            raise Unavailable("central connection closed")
        write = pb.StreamedWrite()
        if isinstance(op, PutOp):
            wire.put_into(write.put, op)
            nbytes = len(op.item.value) + len(op.item.key) + 128
        else:
            wire.delete_into(write.delete, op)
            nbytes = len(op.key) + 128
        self._next_id += 1
        write.id = wid = self._next_id
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[WriteResult | KVError] = loop.create_future()
        self._waiters[wid] = waiter = _Waiter(fut, loop.time() + timeout_s)
        self._queue.append((write, nbytes, waiter))
        waiting = len(self._waiters)
        self._writers = waiting if waiting > self._writers else self._writers * WRITERS_DECAY
        if self._call is None:
            self._open(loop)
        if self._sweep is None:
            self._sweep = loop.call_later(DEADLINE_SWEEP_S, self._fail_late)
        self._maybe_send()
        try:
            outcome = await fut
        finally:
            self._waiters.pop(wid, None)
        if isinstance(outcome, KVError):
            raise outcome
        return outcome

    async def close(self) -> None:
        """Fail every write still waiting (Unavailable) and end the stream; later
        submits fail the same way."""
        self._closed = True
        for timer in (self._sweep, self._flush_timer):
            if timer is not None:
                timer.cancel()
        self._sweep = self._flush_timer = None
        receiver, call = self._receiver, self._call
        self._receiver = self._call = None
        self._queue.clear()
        self._writing, self._unacked = False, 0
        if call is not None:
            call.cancel()
        if receiver is not None:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver
        self._fail_all(Unavailable("central connection closed"))

    # -- internals

    def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._call = call = self._stub.WriteStream(metadata=self._metadata)
        self._error = None
        self._receiver = loop.create_task(self._receive(call), name="central-write-stream")

    def _maybe_send(self, *, overdue: bool = False) -> None:
        """The send rule (module docstring): send what is queued now, or leave it for
        more writes to join, with a timer as the bound."""
        if self._writing or not self._queue or self._call is None:
            return
        half = max(EAGER_MIN_WRITES, int(self._writers) // 2)
        if overdue or self._unacked == 0 or len(self._queue) >= half:
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None
            self._start_write()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self._overdue)

    def _overdue(self) -> None:
        self._flush_timer = None
        self._maybe_send(overdue=True)

    def _take_batch(self) -> pb.WriteBatchRequest:
        """The next message: the queue's head, each write with its deadline
        (`deadline_unix_ms`); a write already answered (past its deadline: its caller
        was told Unavailable) is withdrawn, never sent."""
        q = self._queue
        n = size = 0
        while n < len(q) and n < MAX_BATCH_WRITES and (n == 0 or size + q[n][1] <= MAX_BATCH_BYTES):
            size += q[n][1]
            n += 1
        # Deadlines are kept on the loop's monotonic clock and sent on the wall clock.
        to_wall_s = self._clock.now() - asyncio.get_running_loop().time()
        batch = []
        for write, _, waiter in q[:n]:
            if waiter.future.done():
                continue
            write.deadline_unix_ms = int((waiter.deadline + to_wall_s) * 1000)
            batch.append(write)
        del q[:n]
        return pb.WriteBatchRequest(writes=batch)

    def _start_write(self) -> None:
        batch = self._take_batch()
        while not batch.writes and self._queue:
            batch = self._take_batch()
        if not batch.writes:
            return  # every queued write was withdrawn
        self._unacked += len(batch.writes)
        self._writing = True
        self._writer = start_eagerly(self._write(self._call, batch))

    async def _write(self, call: Any, batch: pb.WriteBatchRequest) -> None:
        try:
            await call.write(batch)
            self.batches_sent += 1
        except Exception as err:
            if not call.done():  # else the receiver reads the status central ended it with
                self._broken(call, err)
            return
        finally:
            if call is self._call:  # else the stream is gone, and with it this flag
                self._writing = False
        if call is self._call:
            self._maybe_send()

    def _broken(self, call: Any, err: Exception) -> None:
        """Tear the stream `call` down because of `err` (its receiver fails the waiters)."""
        if call is not self._call or self._receiver is None:
            return
        self._error = _stream_failure(err)
        self._receiver.cancel()

    async def _receive(self, call: Any) -> None:
        """Resolve results as they come; when the stream ends or breaks, fail every
        waiter and forget the stream (the next write opens a new one)."""
        error: KVError = Unavailable("central write stream ended")
        try:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    break
                self._unacked -= len(msg.results)
                waiters = self._waiters
                for r in msg.results:
                    w = waiters.get(r.id)
                    if w is not None and not w.future.done():
                        w.future.set_result(result_from_pb(r))
                self._maybe_send()
        except asyncio.CancelledError:
            error = self._error or Unavailable("central connection closed")
            raise
        except Exception as err:
            error = _stream_failure(err)
        finally:
            if self._call is call:
                self._call = None
                self._receiver = None
                self._unacked = 0
                self._writing = False
                self._queue.clear()
            call.cancel()
            self._fail_all(error)

    def _fail_late(self) -> None:
        """Fail the writes past their deadline; re-armed while any write waits."""
        now = asyncio.get_running_loop().time()
        for w in self._waiters.values():
            if w.deadline <= now and not w.future.done():
                w.future.set_result(Unavailable.deadline_passed())
        self._sweep = None
        if self._waiters:
            self._sweep = asyncio.get_running_loop().call_later(DEADLINE_SWEEP_S, self._fail_late)

    def _fail_all(self, error: KVError) -> None:
        # A fresh exception per waiter: one instance raised in many tasks would pile up
        # every task's traceback on it.
        for w in self._waiters.values():
            if not w.future.done():
                w.future.set_result(Unavailable(error.message, detail=error.detail))
        self._waiters.clear()
