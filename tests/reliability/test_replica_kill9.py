"""kill -9 of a replica under load, and restart: it resumes from its persisted seq (no
reset) and never serves a version older than one it served before the kill (C4 across
a crash).

Updates keep flowing through another region (and through the victim itself until it
dies: its own acknowledged writes count as served, C3) while a reader walks the keys
at the victim and records the highest version (ETag) it saw per key. After the
restart the same reads must never return a lower version, while the updates go on;
and the region converges on central's values. tests/replica/test_e2e_partition.py
covers a restart of an idle replica; this one crashes it mid-load with hot keys cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest
from helpers.cluster import KV, etag, restart, running, start_central, start_replica, wait_ready_async
from reliability_support import counter, gauge, poll, setup, wait_caught_up, wait_connected

from replica.resume import read_safe_seq

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DELAY_S = 1.0
KEYS = [f"hot{i}" for i in range(24)]
SLACK_S = 5.0


async def test_replica_kill9_resumes_from_persisted_seq_and_never_goes_back(tmp_path: Path) -> None:
    central = start_central(tmp_path, propagation_delay=DELAY_S)
    with running(central) as procs:
        eu = start_replica(tmp_path, central.grpc, "eu", wait=False)
        us = start_replica(tmp_path, central.grpc, "us", wait=False)
        procs += [eu, us]
        await wait_ready_async(eu.http, proc=eu)
        await wait_ready_async(us.http, proc=us)
        account, secret, ns = await setup(central, {"eu": eu, "us": us})
        k_us, k_eu, k_c = (KV(p.http, account, secret, timeout=5) for p in (us, eu, central))
        served: dict[str, int] = {}  # highest version eu served (or acknowledged) per key
        regressions: list[str] = []
        reads = {"before": 0, "after": 0}
        stop_writes = asyncio.Event()
        try:
            for key in KEYS:
                assert (await k_us.put(ns, key, f"{key}:0".encode())).status_code == 200
            await wait_caught_up(central, {"eu": eu, "us": us}, 5)
            for key in KEYS:  # hot at eu: read enough to be admitted to its cache
                for _ in range(3):
                    r = await k_eu.get(ns, key)
                    assert r.status_code == 200
                    served[key] = max(served.get(key, 0), etag(r))

            async def updater(kv: KV, keys: list[str], tag: str, count_as_served: bool) -> int:
                n = 0
                while not stop_writes.is_set():
                    n += 1
                    key = keys[n % len(keys)]
                    try:
                        r = await kv.put(ns, key, f"{key}:{tag}{n}".encode())
                    except httpx.HTTPError:
                        if count_as_served:
                            return n  # the victim died
                        raise
                    if r.status_code != 200:
                        assert count_as_served, r.text
                        return n
                    if count_as_served:
                        served[key] = max(served.get(key, 0), etag(r))
                    await asyncio.sleep(0.005)
                return n

            async def read_at_eu(phase: str, until: float) -> None:
                # Sequential per key, so versions must be non-decreasing (C4).
                while time.monotonic() < until:
                    for key in KEYS:
                        # Compare with what was served or acknowledged before this read started
                        # (a write acknowledged while the read is in flight may or may not show).
                        floor = served.get(key, 0)
                        try:
                            r = await k_eu.get(ns, key)
                        except httpx.HTTPError:
                            return  # killed
                        if r.status_code != 200:
                            return
                        v = etag(r)
                        if v < floor:
                            regressions.append(f"{phase}: {key} served {v} after {floor}")
                        served[key] = max(served.get(key, 0), v)
                        reads[phase] += 1

            w_us = asyncio.create_task(updater(k_us, KEYS, "us", False))
            w_eu = asyncio.create_task(updater(k_eu, KEYS[::3], "eu", True))
            reader = asyncio.create_task(read_at_eu("before", time.monotonic() + 60))
            await asyncio.sleep(2.0)
            applied_before = await gauge(eu, "edgekv_replication_applied_seq", "eu")
            log_mark = len(eu.log())
            eu.kill9()
            await asyncio.wait_for(reader, 10)
            await asyncio.wait_for(w_eu, 10)
            served_before = dict(served)
            persisted = read_safe_seq(str(eu.data_dir))
            assert persisted is not None and persisted > 0
            resets_before = await counter(central, "edgekv_replication_resets_total", "central")

            await asyncio.sleep(1.0)  # updates go on through us while eu is down
            t0 = time.perf_counter()
            await asyncio.to_thread(restart, eu, wait=False)
            await wait_ready_async(eu.http, proc=eu)
            ready = time.perf_counter() - t0
            await wait_connected(eu, "eu", 10)
            applied_after = await gauge(eu, "edgekv_replication_applied_seq", "eu")
            print(
                f"\nreplica kill -9: applied seq {applied_before:.0f} shortly before the kill, "
                f"persisted safe seq {persisted}, ready {ready:.2f}s after restart at applied seq "
                f"{applied_after:.0f}; {reads['before']} reads before the kill"
            )
            log = eu.log()[log_mark:]
            assert f"resuming from seq {persisted}" in log
            assert f"stream up (resumed from seq {persisted}, reset=False)" in log
            assert "reset the stream" not in log and "reset=True" not in log
            assert applied_after >= persisted
            assert f"(eu) from seq {persisted}" in central.log()

            # No version older than one served before the kill, while updates continue.
            await read_at_eu("after", time.monotonic() + 2.5)
            stop_writes.set()
            n_us = await asyncio.wait_for(w_us, 10)
            assert not regressions, "\n".join(regressions[:20])
            assert reads["after"] > 5 * len(KEYS), reads
            for key, v in served_before.items():
                assert served[key] >= v

            # And the region converges on central's values.
            async def converged() -> bool:
                for key in KEYS:
                    a, b = await k_eu.get(ns, key), await k_c.get(ns, key)
                    if (a.content, etag(a)) != (b.content, etag(b)):
                        return False
                    if etag(a) < served[key]:
                        regressions.append(f"converging: {key} {etag(a)} < {served[key]}")
                return True

            took = await poll(converged, DELAY_S + SLACK_S, "eu converged", interval=0.1)
            assert not regressions, "\n".join(regressions[:20])
            assert await counter(central, "edgekv_replication_resets_total", "central") == resets_before == 0
            print(
                f"{reads['after']} reads after the restart, none older; {n_us} updates through us; "
                f"eu converged {took:.2f}s after the writes stopped"
            )
        finally:
            stop_writes.set()
            for kv in (k_us, k_eu, k_c):
                with contextlib.suppress(Exception):
                    await kv.aclose()
