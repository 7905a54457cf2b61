"""kill -9 of the PostgreSQL primary under writes through two centrals, then promotion of
its synchronous standby (issue 14: "The database fails over").

The primary runs with `synchronous_commit=on` and `synchronous_standby_names` naming the
standby (tests/lib/helpers/pg_replication.py), so a commit is acknowledged only once the
standby has flushed it. Centrals A and B are given the multi-host URL
`postgresql://…@primary,standby/db?target_session_attrs=read-write`; replica `eu`
follows A. Writers PUT through both centrals' REST APIs, recording every acknowledged
write. The primary is SIGKILLed and the standby promoted (what Patroni does in
production). Then, with the same central processes (no restart):
- every acknowledged write is there (strong reads through each central): 0 lost;
- both centrals take writes again, on their own;
- the replica still follows: a create through B after the failover reaches `eu`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from helpers.cluster import KV, create_account, running, start_central, start_replica
from helpers.pg_replication import sync_pair
from reliability_support import WriteLedger, poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WRITERS_PER_CENTRAL = 3
KEYS_PER_WRITER = 15
RESUME_BOUND_S = 60.0


async def test_no_acknowledged_write_lost_when_primary_dies_and_centrals_resume(tmp_path: Path) -> None:
    with sync_pair() as pair:
        url = pair.create_database("edgekv")
        extra = ["--store", url]
        a = start_central(tmp_path, name="central-a", propagation_delay=0.5, extra=extra)
        with running(a) as procs:
            b = start_central(tmp_path, name="central-b", propagation_delay=0.5, extra=extra)
            procs.append(b)
            eu = start_replica(tmp_path, a.grpc, "eu")
            procs.append(eu)
            account, secret = await create_account(a.grpc)
            kva, kvb = KV(a.http, account, secret, timeout=10), KV(b.http, account, secret, timeout=10)
            kv_eu = KV(eu.http, account, secret)
            try:
                ns = await kva.create_namespace("dbfailover")
                ledger = WriteLedger()
                acked_after_promote = [0]
                promoted = asyncio.Event()
                stop = asyncio.Event()

                async def writer(kv: KV, w: str) -> None:
                    n = 0
                    while not stop.is_set():
                        n += 1
                        key, value = f"{w}-k{n % KEYS_PER_WRITER}", f"{w}:{n}".encode()
                        if await ledger.put(kv, ns, key, value):
                            acked_after_promote[0] += promoted.is_set()
                        else:
                            await asyncio.sleep(0.1)

                tasks = [
                    asyncio.create_task(writer(kv, f"{name}{i}"))
                    for name, kv in (("a", kva), ("b", kvb))
                    for i in range(WRITERS_PER_CENTRAL)
                ]
                await poll(lambda: _at_least(ledger.acked_count, 150), 30, "150 acknowledged writes")
                pair.primary.kill9()
                killed_at = time.monotonic()
                acked_at_kill = ledger.acked_count
                await asyncio.to_thread(pair.promote)
                promoted.set()
                promote_s = time.monotonic() - killed_at
                resumed_s = await poll(
                    lambda: _at_least(acked_after_promote[0], 60),
                    RESUME_BOUND_S,
                    "writes after promotion",
                )
                stop.set()
                await asyncio.gather(*tasks)
                print(
                    f"\nprimary kill -9: {acked_at_kill} writes acknowledged before, standby promoted after "
                    f"{promote_s:.2f}s, writes resumed {resumed_s:.2f}s after that; "
                    f"{ledger.acked_count} acknowledged ({acked_after_promote[0]} after the promotion), "
                    f"{ledger.failed_count} failed"
                )
                assert a.alive and b.alive, "a central exited instead of reconnecting"

                # Both centrals take writes, and each serves every acknowledged write.
                for kv in (kva, kvb):
                    r = await kv.put(ns, "after", b"failover")
                    assert r.status_code == 200, r.text
                lost = []
                for i, (key, value) in enumerate(ledger.acked.items()):
                    r = await (kva, kvb)[i % 2].get(ns, key)
                    if not ledger.holds(key, r):
                        lost.append(f"{key}: {r.status_code} {r.content!r}, acknowledged {value!r}")
                assert not lost, f"{len(lost)} acknowledged writes lost:\n" + "\n".join(lost[:20])

                # A's stream still follows the (new) primary's log: a create through B reaches eu.
                r = await kvb.put(ns, "created-after-failover", b"yes")
                assert r.status_code == 200, r.text

                async def at_eu() -> bool:
                    got = await kv_eu.get(ns, "created-after-failover")
                    return got.status_code == 200 and got.content == b"yes"

                await poll(at_eu, 15, "a create after the failover served by eu")
            finally:
                for kv in (kva, kvb, kv_eu):
                    await kv.aclose()


async def _at_least(count: int, n: int) -> bool:
    return count >= n
