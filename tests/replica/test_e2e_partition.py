"""C7 (a replica cut off from central) and restart from the persisted resume point,
with real processes; the partition is a loopback TCP proxy the test cuts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from helpers.cluster import (
    KV,
    caught_up,
    create_account,
    metric_value,
    restart,
    start_central,
    start_replica,
    stop_all,
    wait_ready_async,
)
from helpers.proxy import TcpProxy

from replica.resume import read_safe_seq

pytestmark = pytest.mark.timeout(120)

DELAY_S = 2.0


async def poll(cond: object, timeout: float, what: str, interval: float = 0.02) -> float:
    t0 = time.perf_counter()
    while True:
        if await cond():  # type: ignore[operator]
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def gauge(kv: KV, name: str, **labels: str) -> float:
    value = metric_value(await kv.metrics(), name, region="eu", **labels)
    assert value is not None, name
    return value


async def setup_account(central_grpc: str, central_http: str, replica_http: str) -> tuple[KV, KV, str]:
    account, secret = await create_account(central_grpc)
    kc, kr = KV(central_http, account, secret), KV(replica_http, account, secret)

    async def token_known() -> bool:
        return (await kr.list_namespaces()).status_code == 200

    await poll(token_known, 5, "token at the replica")
    ns = await kc.create_namespace("p")

    async def ns_known() -> bool:
        return (await kr.namespace(ns)).status_code == 200

    await poll(ns_known, 5, "namespace at the replica")
    await caught_up(kc, kr)  # in the replica's own directory, not only answered by central
    return kc, kr, ns


async def test_c7_partition_serves_cache_fails_fast_and_converges(tmp_path: Path) -> None:
    central = start_central(tmp_path, propagation_delay=DELAY_S)
    procs = [central]
    proxy = TcpProxy(int(central.grpc.rsplit(":", 1)[1]))
    await proxy.start()
    try:
        replica = start_replica(tmp_path, proxy.addr, "eu", wait=False)
        procs.append(replica)
        await wait_ready_async(replica.http, proc=replica)
        kc, kr, ns = await setup_account(central.grpc, central.http, replica.http)
        assert (await kc.put(ns, "cached", b"v1")).status_code == 200
        assert (await kc.put(ns, "uncached", b"u")).status_code == 200
        for _ in range(4):
            r = await kr.get(ns, "cached")
        assert r.headers["x-edgekv-source"] == "cache"
        assert await gauge(kr, "edgekv_replication_connected") == 1
        assert await gauge(kr, "edgekv_replication_staleness_seconds") == 0

        await proxy.cut()

        async def disconnected() -> bool:
            return await gauge(kr, "edgekv_replication_connected") == 0

        await poll(disconnected, 10, "edgekv_replication_connected 0")
        # Cached keys are still served.
        r = await kr.get(ns, "cached")
        assert r.status_code == 200 and r.content == b"v1" and r.headers["x-edgekv-source"] == "cache"
        # Uncached reads and writes fail fast with 503 and the Cloudflare envelope.
        timings = {}
        for what, call in {
            "uncached read": lambda: kr.get(ns, "uncached"),
            "write": lambda: kr.put(ns, "new", b"x"),
            "delete": lambda: kr.delete(ns, "cached"),
            "list keys": lambda: kr.http.get(f"{kr.root}/{ns}/keys"),
        }.items():
            t0 = time.perf_counter()
            r = await call()
            timings[what] = time.perf_counter() - t0
            assert r.status_code == 503, (what, r.status_code, r.text)
            body = r.json()
            assert body["success"] is False and body["result"] is None
            assert body["errors"][0]["code"] == 10043
            assert timings[what] < 3.0, timings
        # Staleness grows while cut off; past a few seconds calls are not even attempted.
        s1 = await gauge(kr, "edgekv_replication_staleness_seconds")
        await asyncio.sleep(3.2)
        s2 = await gauge(kr, "edgekv_replication_staleness_seconds")
        assert s2 > s1 + 3
        t0 = time.perf_counter()
        assert (await kr.get(ns, "uncached")).status_code == 503
        fast = time.perf_counter() - t0
        print(f"\nC7: 503 latencies while cut {({k: round(v * 1000, 1) for k, v in timings.items()})} ms, "
              f"after {s2:.1f}s down {fast * 1000:.1f} ms")  # fmt: skip
        assert fast < 0.5

        # Central moves on meanwhile.
        assert (await kc.put(ns, "cached", b"v2")).status_code == 200
        assert (await kc.put(ns, "created", b"c")).status_code == 200

        proxy.restore()
        t0 = time.perf_counter()

        async def connected() -> bool:
            return await gauge(kr, "edgekv_replication_connected") == 1

        await poll(connected, 20, "reconnect")
        reconnect = time.perf_counter() - t0

        async def converged() -> bool:
            a, b = await kr.get(ns, "cached"), await kr.get(ns, "created")
            return a.content == b"v2" and b.status_code == 200

        await poll(converged, DELAY_S + 3, "convergence after reconnect")
        converge = time.perf_counter() - t0
        print(f"C7: reconnected {reconnect:.2f}s after restore, converged after {converge:.2f}s")
        assert await gauge(kr, "edgekv_replication_staleness_seconds") == 0
        assert (await kr.put(ns, "new", b"x")).status_code == 200
        await kc.aclose()
        await kr.aclose()
    finally:
        await proxy.close()
        stop_all(list(reversed(procs)))


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
async def test_restart_resumes_from_the_persisted_seq(tmp_path: Path, how: str) -> None:
    central = start_central(tmp_path, propagation_delay=DELAY_S)
    procs = [central]
    try:
        replica = start_replica(tmp_path, central.grpc, "eu", wait=False)
        procs.append(replica)
        await wait_ready_async(replica.http, proc=replica)
        kc, kr, ns = await setup_account(central.grpc, central.http, replica.http)
        for i in range(20):
            assert (await kc.put(ns, f"k{i}", b"one")).status_code == 200

        async def applied_all() -> bool:
            committed = metric_value(await kc.metrics(), "edgekv_central_committed_seq", region="central")
            return await gauge(kr, "edgekv_replication_applied_seq") >= (committed or 0) > 0

        await poll(applied_all, 10, "replica caught up")
        if how == "sigterm":
            assert replica.stop() == 0
        else:
            replica.kill9()
        persisted = read_safe_seq(str(replica.data_dir))
        assert persisted is not None and persisted > 0

        # While it is down: updates, deletes and creates at central.
        for i in range(5):
            assert (await kc.put(ns, f"k{i}", b"two")).status_code == 200
        assert (await kc.delete(ns, "k5")).status_code == 200
        assert (await kc.put(ns, "late", b"new")).status_code == 200

        await asyncio.to_thread(restart, replica, wait=False)
        await wait_ready_async(replica.http, proc=replica)
        await poll(applied_all, DELAY_S + 5, "replica caught up after restart")
        log = replica.log()
        assert f"resuming from seq {persisted}" in log
        assert f"stream up (resumed from seq {persisted}, reset=False)" in log
        assert "reset the stream" not in log
        assert f"from seq {persisted}" in central.log()
        assert (await kr.get(ns, "late")).content == b"new"
        assert (await kr.get(ns, "k0")).content == b"two"
        assert (await kr.get(ns, "k5")).status_code == 404
        await kc.aclose()
        await kr.aclose()
    finally:
        stop_all(list(reversed(procs)))
