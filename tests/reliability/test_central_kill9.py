"""kill -9 of central during a mixed write load sent through three regions at once.

Workers write (puts, updates, deletes, bulk puts) through the replicas, each worker on
its own keys and through a different region on every operation, while readers warm
the regions' caches. Every acknowledged (2xx) write is recorded per key, with its
version (ETag) for single puts. Central is SIGKILLed mid-run and restarted on the same
ports and data dir. Then (C6) a strong read of every key returns the last acknowledged
value, or the value of the one write that was in flight for that key at the kill (not
acknowledged: it may or may not have landed); and (C7 reconnect, C2) every replica
reconnects and all regions converge on the strong value within the propagation delay
plus slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from helpers.cluster import KV, etag, restart, running, start_central, start_replica, wait_ready_async
from reliability_support import committed_seq, percentile, poll, setup, wait_connected

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

DELAY_S = 1.0
REGIONS = ("us", "eu", "ap")
WORKERS = 9
KEYS_PER_WORKER = 12
RUN_BEFORE_KILL_S = 1.5
MAX_RUN_BEFORE_KILL_S = 10.0
TARGET_ACKED = 300
SLACK_S = 5.0


@dataclass(frozen=True)
class Outcome:
    """What a key holds after one write: `value` None for a delete; `version` when known."""

    value: bytes | None
    version: int | None = None
    op: str = "put"


def _label(o: Outcome) -> str:
    return "deleted" if o.value is None else f"{o.value.decode()}@{o.version}"


async def test_acknowledged_writes_survive_central_kill9_and_regions_converge(tmp_path: Path) -> None:
    rng = random.Random(8)
    central = start_central(tmp_path, propagation_delay=DELAY_S)
    with running(central) as procs:
        replicas = {r: start_replica(tmp_path, central.grpc, r, wait=False) for r in REGIONS}
        procs.extend(replicas.values())
        for p in replicas.values():
            await wait_ready_async(p.http, proc=p)
        account, secret, ns = await setup(central, replicas)
        kvs = {r: KV(p.http, account, secret, timeout=15) for r, p in replicas.items()}
        acked: dict[str, Outcome] = {}
        maybe: dict[str, list[Outcome]] = {}
        counts = {"put": 0, "delete": 0, "bulk": 0, "failed": 0}
        stop = asyncio.Event()

        async def worker(w: int) -> None:
            keys = [f"w{w}-k{i}" for i in range(KEYS_PER_WORKER)]
            live: set[str] = set()
            n = 0
            while not stop.is_set():
                n += 1
                region = REGIONS[(w + n) % len(REGIONS)]
                kv = kvs[region]
                roll = rng.random()
                if roll < 0.2 and live:
                    key = rng.choice(sorted(live))
                    pending = {key: Outcome(None, op="delete")}
                    call = kv.delete(ns, key)
                elif roll < 0.4:
                    chosen = rng.sample(keys, rng.randint(2, 6))
                    pending = {k: Outcome(f"{k}:{n}:{region}:bulk".encode(), op="bulk") for k in chosen}
                    body = [{"key": k, "value": o.value.decode()} for k, o in pending.items() if o.value]
                    call = kv.http.put(f"{kv.root}/{ns}/bulk", json=body)
                else:
                    key = rng.choice(keys)
                    pending = {key: Outcome(f"{key}:{n}:{region}".encode())}
                    call = kv.put(ns, key, pending[key].value or b"")
                try:
                    r = await call
                    ok = r.status_code == 200 and r.json()["success"] is True
                    if ok and pending[next(iter(pending))].op == "bulk":
                        result = r.json()["result"]
                        ok = (
                            result["successful_key_count"] == len(pending) and not result["unsuccessful_keys"]
                        )
                except httpx.HTTPError:
                    ok = False
                if not ok:
                    # Not acknowledged: it may or may not have landed. Stop this worker so
                    # no later write of these keys can be ordered after it.
                    for k, o in pending.items():
                        maybe.setdefault(k, []).append(o)
                    counts["failed"] += 1
                    return
                for k, o in pending.items():
                    if o.op == "put":
                        o = Outcome(o.value, etag(r))
                    acked[k] = o
                    (live.discard if o.value is None else live.add)(k)
                counts[next(iter(pending.values())).op] += 1

        async def reader(region: str) -> None:
            # Warm the caches (C3 puts the writing region's own writes there too).
            kv = kvs[region]
            while not stop.is_set():
                w, i = rng.randrange(WORKERS), rng.randrange(KEYS_PER_WORKER)
                with contextlib.suppress(httpx.HTTPError):
                    await kv.get(ns, f"w{w}-k{i}")

        try:
            tasks = [asyncio.create_task(worker(w)) for w in range(WORKERS)]
            readers = [asyncio.create_task(reader(r)) for r in REGIONS]
            # Kill mid-run once enough writes are acknowledged (bounded: slow disks ack fewer).
            started = time.monotonic()
            while time.monotonic() - started < MAX_RUN_BEFORE_KILL_S and (
                time.monotonic() - started < RUN_BEFORE_KILL_S
                or sum(counts[k] for k in ("put", "delete", "bulk")) < TARGET_ACKED
            ):
                await asyncio.sleep(0.05)
            seq_before = await committed_seq(central)
            acked_before_kill = sum(counts[k] for k in ("put", "delete", "bulk"))
            log_marks = {r: len(p.log()) for r, p in replicas.items()}
            central.kill9()  # mid-run: every worker has a write in flight or about to be
            killed_at = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*readers), 30)
            acked_ops = sum(counts[k] for k in ("put", "delete", "bulk"))
            print(
                f"\ncentral kill -9: {acked_ops} acknowledged write ops ({counts}), "
                f"{len(acked)} keys, committed seq {seq_before} shortly before the kill; "
                f"{acked_ops - acked_before_kill} acked after the seq sample"
            )
            assert acked_ops > 100, f"the load did not run: {counts}"
            assert counts["failed"] >= 1, "no write was cut off by the kill"

            await asyncio.to_thread(restart, central)
            restarted = time.perf_counter()
            reconnect = {r: await wait_connected(p, r, 20) for r, p in replicas.items()}
            print(
                f"central back {restarted - killed_at:.2f}s after the kill; replicas reconnected "
                f"{ {r: round(t, 2) for r, t in reconnect.items()} }s after that"
            )
            for r, p in replicas.items():  # resumed from their persisted seq, not reset (C7)
                since_kill = p.log()[log_marks[r] :]
                assert "stream up (resumed from seq" in since_kill, p.name
                assert "reset the stream" not in since_kill and "reset=True" not in since_kill, p.name
            assert await committed_seq(central) >= max((o.version or 0 for o in acked.values()), default=0)

            # C6: every acknowledged write is readable (strong reads, through every region).
            strong: dict[str, tuple[int, bytes | None, int | None]] = {}
            lost: list[str] = []
            keys = sorted(set(acked) | set(maybe))
            for i, key in enumerate(keys):
                kv = kvs[REGIONS[i % len(REGIONS)]]
                r = await kv.get(ns, key, strong=True)
                assert r.status_code in (200, 404), (key, r.status_code, r.text)
                value = r.content if r.status_code == 200 else None
                version = etag(r) if r.status_code == 200 else None
                strong[key] = (r.status_code, value, version)
                allowed = [acked[key]] if key in acked else [Outcome(None, op="never acked")]
                allowed += maybe.get(key, [])
                fine = any(
                    o.value == value and (o.version is None or version is None or version >= o.version)
                    for o in allowed
                )
                if not fine:
                    lost.append(f"{key}: read {value!r}@{version}, allowed {[_label(o) for o in allowed]}")
            in_flight_landed = sum(
                1 for k, (_, v, _) in strong.items() if k in maybe and (k not in acked or v != acked[k].value)
            )
            print(
                f"after restart: {len(keys)} keys checked, {len(lost)} lost, "
                f"{in_flight_landed} keys hold a write that was in flight at the kill"
            )
            assert not lost, "\n".join(lost[:20])

            # Every region converges on the strong value (C2 after the reconnect).
            async def converge(want: dict[str, tuple[int, bytes | None, int | None]], what: str) -> float:
                t0 = time.perf_counter()
                done: set[tuple[str, str]] = set()
                mismatched: list[str] = []
                per_key: dict[str, float] = {}

                async def converged() -> bool:
                    mismatched.clear()
                    for key, (status, value, version) in want.items():
                        for region, kv in kvs.items():
                            if (region, key) in done:
                                continue
                            r = await kv.get(ns, key)
                            got = (r.status_code, r.content if r.status_code == 200 else None)
                            if got == (status, value) and (version is None or etag(r) == version):
                                done.add((region, key))
                            else:
                                mismatched.append(f"{region} {key}: {got} != {(status, value)}")
                        if all((region, key) in done for region in kvs):
                            per_key.setdefault(key, time.perf_counter() - t0)
                    return not mismatched

                try:
                    took = await poll(converged, DELAY_S + SLACK_S, what, interval=0.1)
                except AssertionError:
                    raise AssertionError(f"{what}: not converged:\n" + "\n".join(mismatched[:20])) from None
                lat = list(per_key.values())
                print(
                    f"{what}: all {len(REGIONS)} regions serve the same {len(want)} keys after {took:.2f}s "
                    f"(per key p50 {percentile(lat, 0.5):.2f}s, max {max(lat):.2f}s)"
                )
                return took

            await converge(strong, "converged after the reconnect")

            # New writes after the restart get versions above everything before the kill (no
            # seq reuse) and reach every region: updates of keys the regions now cache.
            top = max([o.version or 0 for o in acked.values()] + [v or 0 for _, _, v in strong.values()])
            after: dict[str, tuple[int, bytes | None, int | None]] = {}
            for i, key in enumerate(strong):
                region = REGIONS[i % len(REGIONS)]
                value = f"{key}:after-restart:{region}".encode()
                r = await kvs[region].put(ns, key, value)
                assert r.status_code == 200, r.text
                assert etag(r) > top, (key, etag(r), top)
                after[key] = (200, value, etag(r))
            await converge(after, "updates after the restart")
        finally:
            stop.set()
            for kv in kvs.values():
                await kv.aclose()
