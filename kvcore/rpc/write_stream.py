"""`StreamedWrites`: point writes to central over one long-lived `Writes.WriteStream`.

Callers `await submit(op)` with a `PutOp` or `DeleteOp`, as with the unary calls; underneath,
every write queued since the last message went out travels in the next message (up
to `MAX_BATCH_WRITES` writes or `MAX_BATCH_BYTES`), and results come back tagged with
each write's id. Nothing waits to fill a batch: a write queued while the stream is
idle goes out at once, alone; under load, writes gather while the previous message
is being sent, so the batch size follows the load (a replica with 64 writers sends
messages of tens of writes).

A write is acknowledged only by its own result, which central sends after the group
holding it is durable (C6); a failed condition or a validation error comes back as
that write's KVError (412, 400, ...), as from the unary call. When the stream breaks,
every write awaiting a result fails with `Unavailable` (it may or may not have
committed, as with a unary call that times out) and the next write opens a new
stream. A caller's deadline cancels only its wait.

Not thread-safe: one event loop (the replica's) drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import grpc

from kvcore import wire
from kvcore.errors import KVError, Unavailable, error_from_code
from kvcore.model import WriteResult
from kvcore.pb import edgekv_pb2 as pb
from kvcore.pb import edgekv_pb2_grpc as pb_grpc
from kvcore.rpc.errors import from_rpc_error
from kvcore.store.ops import DeleteOp, PutOp

log = logging.getLogger("edgekv.rpc.writes")

MAX_BATCH_WRITES: Final = 256
MAX_BATCH_BYTES: Final = 1024 * 1024
# Values larger than this go by the unary call: one big value must not hold up the
# small writes queued behind it on the stream.
MAX_STREAMED_VALUE_BYTES: Final = 64 * 1024


def result_from_pb(msg: pb.StreamedWriteResult) -> WriteResult | KVError:
    if msg.grpc_status:
        return error_from_code(msg.error_code, msg.grpc_status, msg.message)
    return wire.write_result_from_pb(msg.result)


class StreamedWrites:
    def __init__(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> None:
        self._stub = pb_grpc.WritesStub(channel)
        self._metadata = metadata
        self._next_id = 0
        self._queue: list[tuple[pb.StreamedWrite, int]] = []  # (write, its bytes)
        self._waiters: dict[int, asyncio.Future[WriteResult | KVError]] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches_sent = 0  # messages sent (tests, benchmarks)

    async def submit(self, op: PutOp | DeleteOp) -> WriteResult:
        """The op's result once central has it durable; its KVError if it failed."""
        write = pb.StreamedWrite()
        if isinstance(op, PutOp):
            wire.put_into(write.put, op)
            return await self._send(write, len(op.item.value) + len(op.item.key) + 128)
        wire.delete_into(write.delete, op)
        return await self._send(write, len(op.key) + 128)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._fail_all(Unavailable("central connection closed"))

    # -- internals

    async def _send(self, write: pb.StreamedWrite, nbytes: int) -> WriteResult:
        self._next_id += 1
        write.id = wid = self._next_id
        fut: asyncio.Future[WriteResult | KVError] = asyncio.get_running_loop().create_future()
        self._waiters[wid] = fut
        self._queue.append((write, nbytes))
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="central-write-stream")
        try:
            outcome = await fut
        finally:
            self._waiters.pop(wid, None)
        if isinstance(outcome, KVError):
            raise outcome
        return outcome

    def _take_batch(self) -> pb.WriteBatchRequest:
        q = self._queue
        n = size = 0
        while n < len(q) and n < MAX_BATCH_WRITES and (n == 0 or size + q[n][1] <= MAX_BATCH_BYTES):
            size += q[n][1]
            n += 1
        batch = [w for w, _ in q[:n]]
        del q[:n]
        return pb.WriteBatchRequest(writes=batch)

    async def _run(self) -> None:
        """One stream: send what is queued, resolve what comes back; on any failure,
        fail every waiter and end (the next write starts a new stream)."""
        call: Any = self._stub.WriteStream(metadata=self._metadata)
        receiver = asyncio.create_task(self._receive(call))
        error: KVError = Unavailable("central write stream ended")
        try:
            while True:
                while self._queue:
                    await call.write(self._take_batch())
                    self.batches_sent += 1
                self._wakeup.clear()
                waiter = asyncio.create_task(self._wakeup.wait())
                done, _ = await asyncio.wait({waiter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    waiter.cancel()
                    receiver.result()  # raises what ended it
                    break
        except grpc.aio.AioRpcError as err:
            error = from_rpc_error(err)
        except Exception as err:
            log.warning("central write stream failed: %r", err)
            error = Unavailable("central unavailable", detail=f"central write stream failed: {err!r}")
        finally:
            receiver.cancel()
            call.cancel()
            self._queue.clear()
            self._fail_all(error)

    async def _receive(self, call: Any) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                return
            for r in msg.results:
                fut = self._waiters.get(r.id)
                if fut is not None and not fut.done():
                    fut.set_result(result_from_pb(r))

    def _fail_all(self, error: KVError) -> None:
        # A fresh exception per waiter: one instance raised in many tasks would pile up
        # every task's traceback on it.
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_result(Unavailable(error.message, detail=error.detail))
        self._waiters.clear()
