"""The hot-key cache seen from outside: real central and a replica with a 1 MiB cache,
observed through HTTP and /metrics."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.cluster import (
    KV,
    Proc,
    caught_up,
    create_account,
    metric_value,
    start_central,
    start_replica,
    stop_all,
)
from helpers.eventually import eventually

pytestmark = pytest.mark.timeout(120)

CACHE_BYTES = 1024 * 1024
HOT_REPORT_INTERVAL_S = 1.0


@dataclass
class Edge:
    central: Proc
    replica: Proc


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    tmp: Path = tmp_path_factory.mktemp("cache")
    central = start_central(tmp, propagation_delay=2.0)
    procs = [central]
    try:
        # Hot-key reports every second (default 5 s): a test that needs its key reported
        # waits several report rounds, not one with a thin margin.
        procs.append(
            start_replica(
                tmp,
                central.grpc,
                "eu",
                cache_bytes=CACHE_BYTES,
                extra=("--hot-report-interval", str(HOT_REPORT_INTERVAL_S)),
            )
        )
        yield Edge(central, procs[1])
    finally:
        stop_all(list(reversed(procs)))


@dataclass
class Clients:
    central: KV
    replica: KV
    ns: str


@pytest.fixture
async def kv(edge: Edge) -> AsyncIterator[Clients]:
    account, secret = await create_account(edge.central.grpc, known_at=[edge.replica.http])
    kc, kr = KV(edge.central.http, account, secret), KV(edge.replica.http, account, secret)
    try:
        ns = await kc.create_namespace("cache")

        async def ns_known() -> bool:
            return (await kr.namespace(ns)).status_code == 200

        await eventually(ns_known, 20, "the namespace at the replica")
        # Central answers for the replica until the stream brings the namespace: reads
        # are cached only once the replica's own directory has it.
        await caught_up(kc, kr)
        yield Clients(kc, kr, ns)
    finally:
        await kc.aclose()
        await kr.aclose()


async def m(kv: KV, name: str, **labels: str) -> float:
    return metric_value(await kv.metrics(), name, region="eu", **labels) or 0.0


async def test_a_key_read_above_the_threshold_becomes_a_hit(kv: Clients) -> None:
    assert (await kv.central.put(kv.ns, "hot", b"x" * 100)).status_code == 200
    hits0 = await m(kv.replica, "edgekv_cache_requests_total", result="hit")
    sources = [(await kv.replica.get(kv.ns, "hot")).headers["x-edgekv-source"] for _ in range(5)]
    # Threshold 2: the first two reads go to central, the second one admits the key.
    assert sources == ["read-through", "read-through", "cache", "cache", "cache"]
    assert await m(kv.replica, "edgekv_cache_requests_total", result="hit") == hits0 + 3


async def test_a_key_read_once_stays_cold(kv: Clients) -> None:
    assert (await kv.central.put(kv.ns, "cold", b"y" * 100)).status_code == 200
    keys0 = await m(kv.replica, "edgekv_cache_keys")
    admissions0 = await m(kv.replica, "edgekv_cache_admissions_total")
    misses0 = await m(kv.replica, "edgekv_cache_requests_total", result="miss")
    r = await kv.replica.get(kv.ns, "cold")
    assert r.status_code == 200 and r.headers["x-edgekv-source"] == "read-through"
    assert await m(kv.replica, "edgekv_cache_keys") == keys0
    assert await m(kv.replica, "edgekv_cache_admissions_total") == admissions0
    r = await kv.replica.get(kv.ns, "cold")  # the next read is still a miss
    assert r.headers["x-edgekv-source"] == "read-through"
    assert await m(kv.replica, "edgekv_cache_requests_total", result="miss") == misses0 + 2


async def test_missing_keys_are_cached_negatively(kv: Clients) -> None:
    neg0 = await m(kv.replica, "edgekv_cache_requests_total", result="negative_hit")
    for _ in range(3):
        r = await kv.replica.get(kv.ns, "nothing")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == 10009
    assert await m(kv.replica, "edgekv_cache_requests_total", result="negative_hit") == neg0 + 2


async def test_the_byte_bound_holds_under_a_random_workload(kv: Clients) -> None:
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(150)]

    async def write(key: str) -> None:
        size = rng.choice([64, 1000, 10_000, 60_000, 200_000])
        assert (await kv.central.put(kv.ns, key, bytes([rng.randrange(256)]) * size)).status_code == 200

    sem = asyncio.Semaphore(8)

    async def bounded(coro: object) -> None:
        async with sem:
            await coro  # type: ignore[misc]

    await asyncio.gather(*(bounded(write(k)) for k in keys))
    weights = [1 / (i + 1) for i in range(len(keys))]  # Zipf-like popularity
    peak = 0.0
    for round_ in range(10):
        batch = rng.choices(keys, weights, k=150)

        async def read(key: str) -> None:
            r = await kv.replica.get(kv.ns, key)
            assert r.status_code == 200

        await asyncio.gather(*(bounded(read(k)) for k in batch))
        if round_ % 3 == 2:  # values change size under the cache
            await asyncio.gather(*(bounded(write(k)) for k in rng.sample(keys, 20)))
        used = await m(kv.replica, "edgekv_cache_bytes")
        assert used <= CACHE_BYTES
        peak = max(peak, used)
    print(
        f"\ncache: peak {peak:.0f} of {CACHE_BYTES} bytes, "
        f"{await m(kv.replica, 'edgekv_cache_keys'):.0f} keys, "
        f"{await m(kv.replica, 'edgekv_cache_admissions_total'):.0f} admissions, "
        f"{await m(kv.replica, 'edgekv_cache_evictions_total'):.0f} evictions"
    )
    assert await m(kv.replica, "edgekv_cache_evictions_total") > 0
    assert await m(kv.replica, "edgekv_cache_keys") > 0
    assert peak > CACHE_BYTES / 2


async def test_every_replica_metric_of_the_design_is_exported_with_the_region(kv: Clients) -> None:
    await kv.central.put(kv.ns, "m", b"1")
    updates0 = await m(kv.replica, "edgekv_replication_lag_seconds_count", kind="update")
    await kv.central.put(kv.ns, "m", b"2")

    async def update_applied() -> bool:  # the update's lazy flush (2 s), applied at the replica
        return await m(kv.replica, "edgekv_replication_lag_seconds_count", kind="update") > updates0

    await eventually(update_applied, 20, "the update applied at the replica")
    await kv.replica.get(kv.ns, "m")
    text = await kv.replica.metrics()
    expected = {
        "edgekv_http_requests_total": {},
        "edgekv_http_request_duration_seconds_bucket": {},
        "edgekv_cache_requests_total": {"result": "hit"},
        "edgekv_cache_bytes": {},
        "edgekv_cache_keys": {},
        "edgekv_cache_evictions_total": {},
        "edgekv_cache_admissions_total": {},
        "edgekv_replication_applied_seq": {},
        "edgekv_central_committed_seq": {},
        "edgekv_replication_lag_seconds_bucket": {"kind": "create"},
        "edgekv_replication_lag_seconds_count": {"kind": "update"},
        "edgekv_replication_connected": {},
        "edgekv_replication_staleness_seconds": {},
    }
    for name, labels in expected.items():
        assert metric_value(text, name, region="eu", **labels) is not None, name
    for result in ("hit", "miss", "negative_hit"):
        assert metric_value(text, "edgekv_cache_requests_total", region="eu", result=result) is not None
    assert (metric_value(text, "edgekv_replication_lag_seconds_count", region="eu", kind="update") or 0) >= 1
    samples = [ln for ln in text.splitlines() if ln.startswith("edgekv_")]
    assert samples and all(re.search(r'region="eu"', ln) for ln in samples)


async def test_reported_hot_keys_get_fresh_values_not_invalidations(kv: Clients) -> None:
    assert (await kv.central.put(kv.ns, "warm", b"v1")).status_code == 200

    # The module's replica is shared and its cache small: the earlier tests' keys are
    # read more often than this one, and W-TinyLFU may refuse it until its own reads
    # outnumber theirs (or evict it again when the lazy flush brings their values).
    # What is tested is what an update does to a cached hot key, so read it until it
    # is cached, then again after the hot-set reports, before the update.
    async def cached() -> bool:
        return (await kv.replica.get(kv.ns, "warm")).headers["x-edgekv-source"] == "cache"

    await eventually(cached, 20, "the key cached")
    # The replica reports its hot set every HOT_REPORT_INTERVAL_S: a few rounds of it.
    await asyncio.sleep(3.5 * HOT_REPORT_INTERVAL_S)
    await eventually(cached, 20, "the key cached again")
    await asyncio.sleep(1.5 * HOT_REPORT_INTERVAL_S)
    assert (await kv.central.put(kv.ns, "warm", b"v2")).status_code == 200
    deadline = time.monotonic() + 20  # the lazy flush is 2 s; a busy machine adds to it
    while True:
        r = await kv.replica.get(kv.ns, "warm")
        # Before the lazy flush the old copy, after it the new one: both from the cache.
        assert r.headers["x-edgekv-source"] == "cache", r.headers
        if r.content == b"v2":
            break
        assert time.monotonic() < deadline, "the update never reached the replica's cache"
        await asyncio.sleep(0.05)
