"""A stuck subscriber slows neither writers nor the other regions, and is reset.

A raw gRPC subscriber (its own channel, like another replica) takes the first batch of
the change stream and then never reads again, while a heavy create load with 8 KiB
values (pushed on the stream with their value) runs against central. Measured in the
same test: write throughput with the stuck reader against a baseline burst without
it, and the create lag to a real replica (eu) sampled by probe writes during both
bursts. Central must reset the stuck subscriber once its queue passes the limit
(`--subscriber-queue-changes`, small here), and never the healthy replica.
tests/central/test_stream.py checks a stuck subscriber against writes at the default
queue limit; this one adds the real replica, the lag bound and the reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from helpers.cluster import running, start_central, start_replica, wait_ready_async
from reliability_support import committed_seq, counter, gauge, percentile, setup

from kvcore.model import WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import PutOp

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

QUEUE_LIMIT = 1000
BURST = 2000
CONCURRENCY = 32
VALUE = b"v" * 8192
LAG_BOUND_S = 1.0
MIN_THROUGHPUT_RATIO = 0.4


async def test_stuck_subscriber_does_not_slow_writes_or_other_regions(tmp_path: Path) -> None:
    central = start_central(
        tmp_path,
        propagation_delay=1.0,
        extra=("--subscriber-queue-changes", str(QUEUE_LIMIT)),
    )
    with running(central) as procs:
        eu = start_replica(tmp_path, central.grpc, "eu", wait=False)
        procs.append(eu)
        await wait_ready_async(eu.http, proc=eu)
        account, _, ns = await setup(central, {"eu": eu})
        writer = CentralClient(central.grpc, timeout_s=10)
        other = CentralClient(central.grpc, timeout_s=10)
        stuck = None
        try:

            async def probe_lags(stop: asyncio.Event, lags: list[float], tag: str) -> None:
                """Every 100 ms: a create, and how long until eu has applied it."""
                i = 0
                while not stop.is_set():
                    i += 1
                    res = await writer.submit(
                        PutOp(account, ns, WriteItem(key=f"probe-{tag}-{i}", value=b"p"))
                    )
                    assert res.created
                    t0 = time.perf_counter()
                    while await gauge(eu, "edgekv_replication_applied_seq", "eu") < res.seq:
                        if time.perf_counter() - t0 > 10:
                            raise AssertionError(f"eu never applied create seq {res.seq}")
                        await asyncio.sleep(0.005)
                    lags.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.1)

            async def burst(tag: str, n: int = BURST) -> tuple[float, list[float]]:
                sem = asyncio.Semaphore(CONCURRENCY)

                async def one(i: int) -> None:
                    async with sem:
                        await writer.submit(PutOp(account, ns, WriteItem(key=f"{tag}-{i}", value=VALUE)))

                stop, lags = asyncio.Event(), list[float]()
                prober = asyncio.create_task(probe_lags(stop, lags, tag))
                start = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(n)))
                rate = n / (time.perf_counter() - start)
                stop.set()
                await asyncio.wait_for(prober, 15)
                return rate, lags

            await burst("warmup", 300)  # the first burst pays for warming up central
            baseline, base_lags = await burst("base")
            assert await counter(central, "edgekv_replication_resets_total", "central") == 0

            # The stuck one: takes its first batch, then never reads again.
            stuck = other.subscribe("stuck", await committed_seq(central))
            first = await asyncio.wait_for(stuck.__anext__(), 10)
            assert first.snapshot is not None
            loaded, lags = await burst("loaded")
            resets = await counter(central, "edgekv_replication_resets_total", "central")
            subscribers = await gauge(central, "edgekv_replication_subscribers", "central")
            print(
                f"\nstuck subscriber: writes/s baseline {baseline:.0f}, with the stuck reader "
                f"{loaded:.0f} (x{loaded / baseline:.2f}); create lag to eu p50/max "
                f"baseline {percentile(base_lags, 0.5) * 1000:.0f}/{max(base_lags) * 1000:.0f} ms, "
                f"loaded {percentile(lags, 0.5) * 1000:.0f}/{max(lags) * 1000:.0f} ms "
                f"({len(lags)} probes); central resets {resets:.0f}, subscribers {subscribers:.0f}"
            )
            assert len(lags) >= 3, "the loaded burst was too short to probe"
            assert max(lags) < LAG_BOUND_S, lags
            assert loaded >= baseline * MIN_THROUGHPUT_RATIO
            # The stuck subscriber was reset once its queue passed the limit; the healthy
            # replica never was.
            assert resets == 1, resets
            assert "(stuck) fell behind; resetting it" in central.log()
            assert "(eu) fell behind" not in central.log()
            assert "reset the stream" not in eu.log()
            assert await gauge(eu, "edgekv_replication_connected", "eu") == 1

            # When the stuck reader reads again, it gets what was in flight and then the reset
            # (drop your cache, start over from this snapshot), not an unbounded backlog.
            drained = 0

            async def until_reset() -> bool:
                nonlocal drained
                async for batch in stuck:
                    drained += len(batch.changes)
                    if batch.reset:
                        return batch.snapshot is not None
                return False

            assert await asyncio.wait_for(until_reset(), 20)
            print(f"the stuck reader drained {drained} buffered changes, then got the reset")
            assert drained < BURST
        finally:
            if stuck is not None:
                with contextlib.suppress(Exception):
                    await stuck.aclose()  # type: ignore[attr-defined]
            await writer.close()
            await other.close()
