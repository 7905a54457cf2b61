"""Partition and heal between one replica and central (loopback TCP proxy), under load.

tests/replica/test_e2e_partition.py checks C7 on an idle single-replica cluster with one
request of each kind and one update/create at central. This test cuts the link while
the victim region (eu) is taking writes, keeps a second region (us) writing (creates,
updates and deletes of keys eu has cached, bulk puts) during the partition, and checks:

- during the cut (C7): eu serves its cached keys (the pre-partition values), fails
  strong reads, uncached reads, writes, bulk writes and listings with 503 and the
  Cloudflare envelope, fast, also under concurrency; connected gauge 0, staleness rising;
- nothing acknowledged is lost: every write acknowledged through eu before the cut and
  through us during it is at central (strong reads);
- after the heal: eu reconnects, staleness returns to 0, and every write acknowledged
  elsewhere during the partition is visible at eu (normal reads, cached keys included)
  within the propagation delay plus slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from pathlib import Path

import httpx
import pytest
from helpers.cluster import KV, etag, running, start_central, start_replica, wait_ready_async
from helpers.proxy import TcpProxy
from reliability_support import assert_envelope, gauge, percentile, poll, setup, wait_connected

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DELAY_S = 1.0
SLACK_S = 5.0
CACHED = [f"c{i}" for i in range(20)]
CUT_FOR_S = 4.5  # past the replica's fail-fast threshold (3 s)


async def test_partition_and_heal_under_load_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(3)
    central = start_central(tmp_path, propagation_delay=DELAY_S)
    proxy = TcpProxy(int(central.grpc.rsplit(":", 1)[1]))
    await proxy.start()
    with running(central) as procs:
        kvs: list[KV] = []
        try:
            eu = start_replica(tmp_path, proxy.addr, "eu", wait=False)
            us = start_replica(tmp_path, central.grpc, "us", wait=False)
            procs += [eu, us]
            await wait_ready_async(eu.http, proc=eu)
            await wait_ready_async(us.http, proc=us)
            account, secret, ns = await setup(central, {"eu": eu, "us": us})
            k_eu, k_us, k_c = (KV(p.http, account, secret, timeout=10) for p in (eu, us, central))
            kvs += [k_eu, k_us, k_c]

            # Keys eu has cached, and some it has never read (uncached there).
            for key in CACHED:
                assert (await k_us.put(ns, key, f"{key}:v0".encode())).status_code == 200
            for i in range(10):
                assert (await k_c.put(ns, f"cold{i}", b"cold")).status_code == 200
            for key in CACHED:
                for _ in range(3):
                    r = await k_eu.get(ns, key)
                assert r.headers["x-edgekv-source"] == "cache", key
            pre_cut = {key: (await k_eu.get(ns, key)).content for key in CACHED}

            # eu takes writes when the link is cut: the in-flight ones may or may not land.
            acked_eu: dict[str, bytes] = {}
            maybe_eu: dict[str, bytes] = {}
            cut_now = asyncio.Event()

            async def eu_writer() -> None:
                n = 0
                while True:
                    n += 1
                    key, value = f"e{n % 15}", f"eu-{n}".encode()
                    try:
                        r = await k_eu.put(ns, key, value)
                    except httpx.HTTPError:
                        r = None
                    if r is None or r.status_code != 200:
                        assert cut_now.is_set(), r.text if r is not None else "connection error"
                        maybe_eu[key] = value
                        return
                    acked_eu[key] = value

            writer = asyncio.create_task(eu_writer())
            await asyncio.sleep(0.5)
            log_mark = len(eu.log())
            cut_now.set()
            await proxy.cut()
            cut_at = time.perf_counter()
            await asyncio.wait_for(writer, 10)

            async def disconnected() -> bool:
                return await gauge(eu, "edgekv_replication_connected", "eu") == 0

            await poll(disconnected, 10, "eu disconnected")
            print(
                f"\npartition: {len(acked_eu)} keys acked through eu before the cut, "
                f"{len(maybe_eu)} write(s) in flight at the cut; eu disconnected after "
                f"{time.perf_counter() - cut_at:.2f}s"
            )

            # us keeps writing during the partition; every ack is recorded.
            expect: dict[str, bytes | None] = {}
            for i, key in enumerate(CACHED):
                if i % 4 == 0:
                    r = await k_us.delete(ns, key)
                    expect[key] = None
                else:
                    value = f"{key}:during".encode()
                    r = await k_us.put(ns, key, value)
                    expect[key] = value
                assert r.status_code == 200, r.text
            for i in range(30):
                key, value = f"new{i}", f"new-{i}".encode()
                assert (await k_us.put(ns, key, value)).status_code == 200
                expect[key] = value
            bulk = [{"key": f"bulk{i}", "value": f"b{i}"} for i in range(50)]
            r = await k_us.http.put(f"{k_us.root}/{ns}/bulk", json=bulk)
            assert r.status_code == 200 and r.json()["result"]["successful_key_count"] == 50, r.text
            expect.update({b["key"]: b["value"].encode() for b in bulk})

            # C7 at eu while cut off: cached keys served (the values it had), the rest 503 fast.
            for key in CACHED:
                r = await k_eu.get(ns, key)
                assert r.status_code == 200 and r.content == pre_cut[key], (key, r.status_code)
                assert r.headers["x-edgekv-source"] == "cache"
            staleness = [await gauge(eu, "edgekv_replication_staleness_seconds", "eu")]
            latencies: dict[str, list[float]] = {}

            def failing_calls() -> dict[str, object]:
                return {
                    "strong read of a cached key": lambda: k_eu.get(ns, CACHED[1], strong=True),
                    "uncached read": lambda: k_eu.get(ns, f"cold{rng.randrange(10)}"),
                    "read of a key created elsewhere": lambda: k_eu.get(ns, "new3"),
                    "write": lambda: k_eu.put(ns, "cut-write", b"x"),
                    "delete": lambda: k_eu.delete(ns, CACHED[2]),
                    "bulk put": lambda: k_eu.http.put(f"{k_eu.root}/{ns}/bulk", json=bulk[:2]),
                    "list keys": lambda: k_eu.http.get(f"{k_eu.root}/{ns}/keys"),
                }

            async def timed(what: str, call: object) -> None:
                t0 = time.perf_counter()
                r = await call()  # type: ignore[operator]
                latencies.setdefault(what, []).append(time.perf_counter() - t0)
                assert_envelope(r, 503, 10043)

            while time.perf_counter() - cut_at < CUT_FOR_S:
                for what, call in failing_calls().items():
                    await timed(what, call)
                staleness.append(await gauge(eu, "edgekv_replication_staleness_seconds", "eu"))
                await asyncio.sleep(0.2)
            # 50 concurrent uncached reads: all 503 at once, none hangs.
            t0 = time.perf_counter()
            await asyncio.gather(
                *(timed("concurrent uncached read", failing_calls()["uncached read"]) for _ in range(50))
            )
            burst = time.perf_counter() - t0
            assert await gauge(eu, "edgekv_replication_connected", "eu") == 0
            assert all(b >= a for a, b in itertools.pairwise(staleness)), staleness
            assert staleness[-1] >= CUT_FOR_S - 1.5, staleness
            every = [t for ts in latencies.values() for t in ts]
            print(
                f"during the cut: {len(every)} requests at eu got 503, p50 "
                f"{percentile(every, 0.5) * 1000:.1f} ms, max {max(every) * 1000:.1f} ms "
                f"(per kind max ms: { {k: round(max(v) * 1000, 1) for k, v in latencies.items()} }); "
                f"50 concurrent in {burst * 1000:.0f} ms; "
                f"staleness {staleness[0]:.1f}s -> {staleness[-1]:.1f}s"
            )
            # Before the fail-fast threshold a call waits at most the central timeout (2 s).
            assert max(every) < 2.5, latencies
            assert burst < 2.5

            # Nothing acknowledged is lost (at central, now).
            for key, want in [*acked_eu.items(), *expect.items()]:
                r = await k_c.get(ns, key)
                if want is None:
                    assert r.status_code == 404, (key, r.text)
                elif not (key in maybe_eu and r.content == maybe_eu[key]):  # else: the in-flight write landed
                    assert r.status_code == 200 and r.content == want, (key, r.status_code, r.content)

            proxy.restore()
            healed_at = time.perf_counter()
            reconnect = await wait_connected(eu, "eu", 20)
            assert await gauge(eu, "edgekv_replication_staleness_seconds", "eu") == 0
            since_cut = eu.log()[log_mark:]
            assert "stream up (resumed from seq" in since_cut
            assert "reset the stream" not in since_cut and "reset=True" not in since_cut

            # Everything acknowledged elsewhere during the partition shows at eu.
            pending = dict(expect)

            async def visible() -> bool:
                for key, want in list(pending.items()):
                    r = await k_eu.get(ns, key)
                    if (r.status_code, r.content if r.status_code == 200 else None) == (
                        200 if want is not None else 404,
                        want,
                    ):
                        del pending[key]
                return not pending

            try:
                took = await poll(visible, DELAY_S + SLACK_S, "partition writes visible at eu", 0.05)
            except AssertionError:
                raise AssertionError(f"not visible at eu after the heal: {sorted(pending)[:20]}") from None
            converged = time.perf_counter() - healed_at
            # eu's own acknowledged writes are still there, and it takes writes again.
            for key, value in acked_eu.items():
                r = await k_eu.get(ns, key)
                assert r.content == value or r.content == maybe_eu.get(key), key
            r = await k_eu.put(ns, "after-heal", b"ok")
            assert r.status_code == 200
            assert (await k_eu.get(ns, "after-heal")).content == b"ok"
            assert etag(r) > 0
            print(
                f"heal: eu reconnected {reconnect:.2f}s after restore; all {len(expect)} writes "
                f"acknowledged through us during the cut visible at eu {converged:.2f}s after restore "
                f"({took:.2f}s after reconnect)"
            )
        finally:
            for kv in kvs:
                with contextlib.suppress(Exception):
                    await kv.aclose()
            await proxy.close()
