"""Durable writes with their metrics, shared by the gRPC and REST front doors.

`MeteredWrites` is the store's one write verb, `submit`, seen through
`edgekv_writes_total{op}` (the operation's `kind`) and `edgekv_write_duration_seconds`
(queue + group commit + WAL sync). A `GroupOp` (a replica's streamed point writes)
counts each member that succeeded under its own kind, each observed with the group's
duration, as if it had come alone. A write that fails is not counted. The series are
the lock-free kinds (kvcore.metrics `LoopCounter`): `submit` runs on central's event
loop, where /metrics is rendered too.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TypeVar

from kvcore.errors import KVError
from kvcore.metrics import Metrics
from kvcore.store.base import Writes
from kvcore.store.ops import GroupOp, Op

R = TypeVar("R")


class MeteredWrites:
    def __init__(self, store: Writes, metrics: Metrics) -> None:
        self._store = store
        self._writes = metrics.writes
        self._duration = metrics.write_duration.labels(metrics.region)
        self._region = metrics.region

    async def submit(self, op: Op[R]) -> R:
        start = time.perf_counter()
        result = await self._store.submit(op)
        elapsed = time.perf_counter() - start
        if isinstance(op, GroupOp):
            done = Counter(o.kind for o, r in zip(op.ops, result, strict=True) if not isinstance(r, KVError))
        else:
            done = Counter((op.kind,))
        if done:
            self._duration.observe(elapsed, sum(done.values()))
        for kind, n in done.items():
            self._writes.labels(self._region, kind).inc(n)
        return result
