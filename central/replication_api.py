"""The Replication gRPC servicer: the change feed on the wire.

Thin by design: `ChangeFeed.follow` owns the stream protocol (catch-up, snapshot,
reset, heartbeats, safe_seq, budgets); this converts each batch with kvcore.wire.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from central.changefeed import ChangeFeed
from kvcore import wire
from kvcore.pb import edgekv_pb2 as pb
from kvcore.pb import edgekv_pb2_grpc as pb_grpc


class ReplicationService(pb_grpc.ReplicationServicer):  # type: ignore[misc]
    def __init__(self, feed: ChangeFeed) -> None:
        self._feed = feed

    async def Subscribe(self, request: pb.SubscribeRequest, context: Any) -> AsyncIterator[pb.ChangeBatch]:
        batches = self._feed.follow(request.region or "unknown", request.from_seq, request.http_url)
        # aclosing: a cancelled call unsubscribes now, not when the generator is collected.
        async with contextlib.aclosing(batches):
            async for batch in batches:
                yield wire.batch_to_pb(batch)

    async def ReportHotKeys(self, request: pb.HotKeysReport, context: Any) -> pb.Empty:
        self._feed.report_hot_keys(request.region, {(k.namespace_id, k.key) for k in request.keys})
        return pb.Empty()
