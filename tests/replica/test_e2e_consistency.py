"""C1-C5 end to end: real central (propagation delay 2 s) and three real replicas."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import AsyncIterator

import pytest
from helpers.cluster import KV, create_account, etag, metric_value
from replica_support import PROPAGATION_DELAY_S, Cluster

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def kvs(cluster: Cluster) -> AsyncIterator[dict[str, KV]]:
    """A fresh account: clients of central ("central") and of every replica, token known everywhere."""
    account, secret = await create_account(cluster.central.grpc)
    clients = {p.name.removeprefix("replica-"): KV(p.http, account, secret) for p in cluster.all}
    try:
        for kv in clients.values():
            await wait_until(lambda kv=kv: _authorized(kv), 5.0, "token at every replica")  # type: ignore[misc]
        yield clients
    finally:
        for kv in clients.values():
            await kv.aclose()


async def _authorized(kv: KV) -> bool:
    return (await kv.list_namespaces()).status_code != 401


async def wait_until(cond: object, timeout: float, what: str, interval: float = 0.01) -> float:
    """Poll an async predicate; returns the seconds it took. Fails after `timeout`."""
    t0 = time.perf_counter()
    while True:
        if await cond():  # type: ignore[operator]
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def namespace(kvs: dict[str, KV], title: str) -> str:
    """Create at central and wait until every replica knows it (pushed at once)."""
    ns = await kvs["central"].create_namespace(title)
    for region, kv in kvs.items():
        if region != "central":
            await wait_until(lambda kv=kv: _ns_known(kv, ns), 5.0, f"namespace at {region}")  # type: ignore[misc]
    return ns


async def _ns_known(kv: KV, ns: str) -> bool:
    return (await kv.namespace(ns)).status_code == 200


async def make_hot(kv: KV, ns: str, key: str, expect: bytes) -> None:
    """Read until the replica serves the key from its cache."""
    for _ in range(10):
        r = await kv.get(ns, key)
        assert r.status_code == 200 and r.content == expect, (r.status_code, r.content)
        if r.headers.get("x-edgekv-source") == "cache":
            return
    raise AssertionError(f"{key} never became a cache hit at {kv.base}")


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    ms = [statistics.median(xs) * 1000, p99 * 1000, xs[-1] * 1000]
    return f"n={len(xs)} p50={ms[0]:.1f}ms p99={ms[1]:.1f}ms max={ms[2]:.1f}ms"


REPLICAS = ("us", "eu", "ap")


async def test_c1_create_is_visible_at_every_replica_right_after_a_404(kvs: dict[str, KV]) -> None:
    ns = await namespace(kvs, "c1")
    latencies: list[float] = []
    negative_before = {
        r: metric_value(await kvs[r].metrics(), "edgekv_cache_requests_total", result="negative_hit") or 0
        for r in REPLICAS
    }
    for i in range(30):
        key = f"new-{i}"
        for r in REPLICAS:
            for _ in range(2):  # the second 404 is served from the negative cache
                assert (await kvs[r].get(ns, key)).status_code == 404
        writer = "central" if i % 2 == 0 else REPLICAS[i % 3]
        assert (await kvs[writer].put(ns, key, b"v%d" % i)).status_code == 200
        t0 = time.perf_counter()

        async def visible(r: str, key: str = key, t0: float = t0) -> float:
            while True:
                resp = await kvs[r].get(ns, key)
                if resp.status_code == 200:
                    assert resp.content.startswith(b"v")
                    return time.perf_counter() - t0
                assert resp.status_code == 404
                assert time.perf_counter() - t0 < 2.0, f"create of {key} not visible at {r}"
                await asyncio.sleep(0.002)

        latencies += await asyncio.gather(*(visible(r) for r in REPLICAS if r != writer))
    print(f"\nC1 create -> visible at the other replicas: {summary(latencies)}")
    assert max(latencies) < 0.25
    for r in REPLICAS:
        after = (
            metric_value(await kvs[r].metrics(), "edgekv_cache_requests_total", result="negative_hit") or 0
        )
        assert after > negative_before[r], "404s were not cached negatively"


async def test_c2_updates_and_deletes_reach_every_replica_within_the_delay(kvs: dict[str, KV]) -> None:
    ns = await namespace(kvs, "c2")
    bound = PROPAGATION_DELAY_S + 1.0
    assert (await kvs["central"].put(ns, "hot", b"one")).status_code == 200
    for r in REPLICAS:
        await wait_until(lambda r=r: _has(kvs[r], ns, "hot", b"one"), 1.0, f"create at {r}")  # type: ignore[misc]
        await make_hot(kvs[r], ns, "hot", b"one")

    assert (await kvs["central"].put(ns, "hot", b"two")).status_code == 200
    took = await asyncio.gather(
        *(wait_until(lambda r=r: _has(kvs[r], ns, "hot", b"two"), bound, f"update at {r}") for r in REPLICAS)  # type: ignore[misc]
    )
    print(f"\nC2 update -> visible at every replica (delay {PROPAGATION_DELAY_S}s): {summary(list(took))}")
    assert max(took) <= bound

    for r in REPLICAS:
        await make_hot(kvs[r], ns, "hot", b"two")
    assert (await kvs["us"].delete(ns, "hot")).status_code == 200
    took = await asyncio.gather(
        *(wait_until(lambda r=r: _gone(kvs[r], ns, "hot"), bound, f"delete at {r}") for r in REPLICAS)  # type: ignore[misc]
    )
    print(f"C2 delete -> 404 at every replica: {summary(list(took))}")
    assert max(took) <= bound


async def _has(kv: KV, ns: str, key: str, value: bytes) -> bool:
    r = await kv.get(ns, key)
    return r.status_code == 200 and r.content == value


async def _gone(kv: KV, ns: str, key: str) -> bool:
    return (await kv.get(ns, key)).status_code == 404


async def test_c3_the_writing_region_reads_its_write(kvs: dict[str, KV]) -> None:
    ns = await namespace(kvs, "c3")
    eu = kvs["eu"]
    put = await eu.put(ns, "k", b"first")
    r = await eu.get(ns, "k")
    assert r.status_code == 200 and r.content == b"first" and etag(r) == etag(put)
    await make_hot(eu, ns, "k", b"first")
    await make_hot(kvs["us"], ns, "k", b"first")
    for i in range(5):
        put = await eu.put(ns, "k", b"v%d" % i)
        r = await eu.get(ns, "k")
        assert r.content == b"v%d" % i and etag(r) == etag(put)
        assert r.headers["x-edgekv-source"] == "cache"
    # Another region still serves its cached copy until the lazy flush (C2, not C3).
    assert (await kvs["us"].get(ns, "k")).status_code == 200
    assert (await eu.delete(ns, "k")).status_code == 200
    assert (await eu.get(ns, "k")).status_code == 404


async def test_c4_no_replica_goes_back_to_an_older_version(kvs: dict[str, KV]) -> None:
    ns = await namespace(kvs, "c4")
    keys = [f"k{i}" for i in range(4)]
    stop = asyncio.Event()
    rng = random.Random(4)
    writes = 0
    reads = 0
    violations: list[str] = []

    async def writer(name: str) -> None:
        nonlocal writes
        n = 0
        while not stop.is_set():
            key = rng.choice(keys)
            via = rng.choice(["central", *REPLICAS])
            if rng.random() < 0.1:
                await kvs[via].delete(ns, key)
            else:
                n += 1
                assert (await kvs[via].put(ns, key, f"{name}-{n}".encode())).status_code == 200
            writes += 1
            await asyncio.sleep(rng.uniform(0, 0.02))

    async def reader(region: str) -> None:
        # One sequential client: each read starts after the previous one answered.
        nonlocal reads
        seen: dict[str, int] = {}
        while not stop.is_set():
            key = rng.choice(keys)
            r = await kvs[region].get(ns, key)
            reads += 1
            if r.status_code == 200:
                v = etag(r)
                if v < seen.get(key, 0):
                    violations.append(f"{region} {key}: version {v} after {seen[key]}")
                seen[key] = max(v, seen.get(key, 0))
            else:
                assert r.status_code == 404, r.text

    tasks = [asyncio.create_task(writer(f"w{i}")) for i in range(2)]
    tasks += [asyncio.create_task(reader(r)) for r in REPLICAS for _ in range(2)]
    await asyncio.sleep(6.0)
    stop.set()
    await asyncio.gather(*tasks)
    print(f"\nC4: {writes} writes, {reads} reads, {len(violations)} violations")
    assert not violations, violations[:10]
    assert writes > 50 and reads > 300


async def test_c5_strong_read_is_answered_by_central(kvs: dict[str, KV]) -> None:
    ns = await namespace(kvs, "c5")
    eu = kvs["eu"]
    assert (await kvs["central"].put(ns, "k", b"old")).status_code == 200
    await wait_until(lambda: _has(eu, ns, "k", b"old"), 1.0, "create at eu")
    await make_hot(eu, ns, "k", b"old")
    assert (await kvs["central"].put(ns, "k", b"new")).status_code == 200
    eventual = await eu.get(ns, "k")
    strong = await eu.get(ns, "k", strong=True)
    assert strong.status_code == 200 and strong.content == b"new"
    assert strong.headers["x-edgekv-source"] == "read-through"
    # The eventual read was still the cached copy (the update is held for up to 2 s).
    assert eventual.content == b"old" and eventual.headers["x-edgekv-source"] == "cache"
