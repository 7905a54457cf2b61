"""C6 with the real process: every write acknowledged over gRPC before a SIGKILL of
central is readable after restart; and central's metrics are exported."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
from helpers.cluster import restart
from helpers.eventually import reconnected

from kvcore.errors import KVError
from kvcore.model import WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import CreateNamespaceOp, PutOp

ACCOUNT = "b" * 32


async def test_acknowledged_writes_survive_sigkill(central_factory: Any) -> None:
    central = central_factory(propagation_delay=0)
    acked: dict[str, bytes] = {}
    async with CentralClient(central.grpc, timeout_s=5) as client:
        ns = await client.submit(CreateNamespaceOp(ACCOUNT, "durable"))
        stop = time.monotonic() + 20.0  # a bound only: the kill below ends the writers

        async def writer(w: int) -> None:
            i = 0
            while time.monotonic() < stop:
                key, value = f"w{w}-{i}", f"value-{w}-{i}".encode()
                try:
                    await client.submit(PutOp(ACCOUNT, ns.id, WriteItem(key=key, value=value)))
                except KVError:
                    return  # central died under us: this write was never acknowledged
                acked[key] = value
                i += 1

        writers = [asyncio.create_task(writer(w)) for w in range(16)]
        # Kill once the load has clearly run (not after a fixed time: a busy machine is slow).
        deadline = time.monotonic() + 15.0
        while len(acked) < 150 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        central.kill9()  # mid-run, with writes in flight
        await asyncio.gather(*writers)
    assert len(acked) > 100, "the load did not run"

    restarted = restart(central)  # same data dir and ports
    async with CentralClient(restarted.grpc) as client:
        # gRPC shares a target's connection (and its reconnect backoff) between channels.
        await reconnected(lambda: client.get(ACCOUNT, ns.id, "w0-0"))
        missing = []
        keys = list(acked)
        for start in range(0, len(keys), 100):
            chunk = keys[start : start + 100]
            for key, entry in zip(chunk, await client.bulk_get(ACCOUNT, ns.id, chunk), strict=True):
                if entry is None or entry.value != acked[key]:
                    missing.append(key)
    print(f"{len(acked)} acknowledged writes before SIGKILL, {len(missing)} missing after restart")
    assert not missing


async def test_central_metrics_exported(central_factory: Any) -> None:
    # The update stays pending for the whole test: a busy machine cannot flush it early.
    central = central_factory(propagation_delay=60)
    async with CentralClient(central.grpc) as client:
        ns = await client.submit(CreateNamespaceOp(ACCOUNT, "metrics"))
        await client.submit(PutOp(ACCOUNT, ns.id, WriteItem(key="k", value=b"1")))
        await client.submit(PutOp(ACCOUNT, ns.id, WriteItem(key="k", value=b"2")))
        await client.submit(PutOp(ACCOUNT, ns.id, WriteItem(key="k", value=b"3")))
    text = httpx.get(f"{central.http}/metrics").text
    for name in (
        "edgekv_central_committed_seq",
        "edgekv_writes_total",
        "edgekv_write_duration_seconds_bucket",
        "edgekv_replication_pending_updates",
        "edgekv_replication_coalesced_total",
    ):
        assert re.search(rf'^{name}\{{[^}}]*region="central"', text, re.M), f"{name} missing"
    assert re.search(r'^edgekv_writes_total\{op="put",region="central"\} 3\.0$', text, re.M)
    assert re.search(r'^edgekv_replication_pending_updates\{region="central"\} 1\.0$', text, re.M)
    assert re.search(r'^edgekv_replication_coalesced_total\{region="central"\} 1\.0$', text, re.M)
