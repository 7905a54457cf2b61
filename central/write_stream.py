"""Central's `Writes.WriteStream`: many forwarded point writes per message (issue 15).

A replica sends every point write its region takes on one long-lived stream. Each
request message becomes one `awrite_many` (one group-commit operation, so its writes
share one WAL sync with whatever else is queued); each write is validated exactly as
the unary Put/Delete validates it, and fails alone. The response for a message is
sent once its group is durable (C6), one result per write, tagged with the write's
id. Messages are not awaited one by one: the next is read and queued while earlier
ones commit, so a busy replica keeps the writer's queue full.

Why a stream: per write, a unary grpc.aio call costs central a call object, a
servicer task and several event-loop callbacks, and the replica a call of its own;
here those are paid once per message (see the note of issue 15 for the profiles).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from central.grpc_api import _item, _ns
from central.writes import MeteredWrites
from kvcore import limits, wire
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import InternalError, KVError
from kvcore.model import WriteResult
from kvcore.pb import edgekv_pb2 as pb
from kvcore.pb import edgekv_pb2_grpc as pb_grpc
from kvcore.store.base import PointWrite

_Outcome = WriteResult | KVError


def point_write(msg: pb.StreamedWrite, now: float) -> PointWrite:
    """The domain write of one streamed write, validated as the unary calls validate
    (`now`: central's wall clock, for the expiration bounds)."""
    which = msg.WhichOneof("op")
    if which == "put":
        put = msg.put
        item = _item(put.item, now)
        return PointWrite(
            put.account_id, _ns(put.namespace_id), item.key, item, wire.condition_from_pb(put.condition)
        )
    if which == "delete":
        d = msg.delete
        key = limits.validate_key(d.key, "key")
        return PointWrite(d.account_id, _ns(d.namespace_id), key, None, wire.condition_from_pb(d.condition))
    raise InternalError("streamed write with neither put nor delete")


def result_to_pb(write_id: int, outcome: _Outcome) -> pb.StreamedWriteResult:
    if isinstance(outcome, KVError):
        return pb.StreamedWriteResult(
            id=write_id, grpc_status=outcome.grpc_status, error_code=outcome.code, message=outcome.message
        )
    return pb.StreamedWriteResult(id=write_id, result=wire.write_result_to_pb(outcome))


class WritesService(pb_grpc.WritesServicer):  # type: ignore[misc]
    def __init__(self, writes: MeteredWrites, clock: Clock = SYSTEM_CLOCK) -> None:
        self._writes = writes
        self._clock = clock

    async def _commit(self, request: pb.WriteBatchRequest) -> pb.WriteBatchResponse:
        ids: list[int] = []
        writes: list[PointWrite] = []
        results: list[pb.StreamedWriteResult] = []
        now = self._clock.now()
        for msg in request.writes:
            try:
                writes.append(point_write(msg, now))
                ids.append(msg.id)
            except KVError as exc:
                results.append(result_to_pb(msg.id, exc))
        if writes:
            try:
                outcomes: list[_Outcome] = await self._writes.awrite_many(writes)
            except KVError as exc:  # the store is closing: every write fails alike
                outcomes = [exc] * len(writes)
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
