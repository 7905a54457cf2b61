"""Central's `Writes.WriteStream`: many forwarded point writes per message (issue 15).

A replica sends every point write its region takes on one long-lived stream. Each
request message becomes one `GroupOp` of `PutOp`s and `DeleteOp`s (one group-commit
operation, so its writes share one WAL sync with whatever else is queued); each write
is decoded and validated by the unary Put/Delete's own functions, and fails alone.
The response for a message is sent once its group is durable (C6), one result per
write, tagged with the write's id. A write whose `deadline_unix_ms` has passed on
central's clock when the writer reaches it is withdrawn: it fails with Unavailable
and is not applied (`GroupOp.deadlines`), as a unary call's cancelled op is.
Messages are not awaited one by one: the next is read and queued while earlier ones
commit, so a busy replica keeps the writer's queue full.

Why a stream: per write, a unary grpc.aio call costs central a call object, a
servicer task and several event-loop callbacks, and the replica a call of its own;
here those are paid once per message (see the note of issue 15 for the profiles).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from central.grpc_api import delete_op, put_op
from kvcore import wire
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import InternalError, KVError
from kvcore.model import WriteResult
from kvcore.pb import edgekv_pb2 as pb
from kvcore.pb import edgekv_pb2_grpc as pb_grpc
from kvcore.store.base import Writes
from kvcore.store.ops import DeleteOp, GroupOp, PutOp

_Outcome = WriteResult | KVError


def point_op(msg: pb.StreamedWrite, now: float) -> PutOp | DeleteOp:
    """The validated operation of one streamed write (`now`: central's wall clock, for
    the expiration bounds)."""
    which = msg.WhichOneof("op")
    if which == "put":
        return put_op(msg.put, now)
    if which == "delete":
        return delete_op(msg.delete)
    raise InternalError("streamed write with neither put nor delete")


def result_to_pb(write_id: int, outcome: _Outcome) -> pb.StreamedWriteResult:
    if isinstance(outcome, KVError):
        return pb.StreamedWriteResult(
            id=write_id, grpc_status=outcome.grpc_status, error_code=outcome.code, message=outcome.message
        )
    return pb.StreamedWriteResult(id=write_id, result=wire.write_result_to_pb(outcome))


class WritesService(pb_grpc.WritesServicer):  # type: ignore[misc]
    def __init__(self, writes: Writes, clock: Clock = SYSTEM_CLOCK) -> None:
        self._writes = writes
        self._clock = clock

    async def _commit(self, request: pb.WriteBatchRequest) -> pb.WriteBatchResponse:
        ids: list[int] = []
        ops: list[PutOp | DeleteOp] = []
        deadlines: list[float | None] = []
        results: list[pb.StreamedWriteResult] = []
        now = self._clock.now()
        for msg in request.writes:
            try:
                ops.append(point_op(msg, now))
            except KVError as exc:
                results.append(result_to_pb(msg.id, exc))
                continue
            ids.append(msg.id)
            deadlines.append(msg.deadline_unix_ms / 1000 if msg.deadline_unix_ms else None)
        if ops:
            try:
                outcomes: list[_Outcome] = await self._writes.submit(GroupOp(ops, deadlines))
            except KVError as exc:  # the store is closing: every write fails alike
                outcomes = [exc] * len(ops)
            results.extend(result_to_pb(i, o) for i, o in zip(ids, outcomes, strict=True))
        return pb.WriteBatchResponse(results=results)

    async def WriteStream(
        self, request_iterator: AsyncIterator[pb.WriteBatchRequest], context: Any
    ) -> AsyncIterator[pb.WriteBatchResponse]:
        done: asyncio.Queue[asyncio.Task[pb.WriteBatchResponse] | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for request in request_iterator:
                    task = asyncio.ensure_future(self._commit(request))
                    task.add_done_callback(done.put_nowait)
                    in_flight.add(task)
            finally:
                reading_over.set()
                if not in_flight:
                    done.put_nowait(None)

        in_flight: set[asyncio.Task[pb.WriteBatchResponse]] = set()
        reading_over = asyncio.Event()
        reader = asyncio.create_task(read())
        try:
            while True:
                task = await done.get()
                if task is None:
                    break
                in_flight.discard(task)
                yield task.result()
                if reading_over.is_set() and not in_flight:
                    break
        finally:
            # The replica went away (or the stream failed): unanswered writes are failed
            # there as Unavailable; any already queued still commit or are withdrawn.
            reader.cancel()
            for t in in_flight:
                t.cancel()
