"""kill -9 of one of two centrals on one PostgreSQL store, under writes through its replica
(issue 14: "A central dies").

Central A and central B share a throwaway PostgreSQL database. Replica `eu` names
`--central A,B`, so it streams from A and forwards its writes to A; replica `us` names
only B. Four writers PUT through `eu`, each on its own keys, recording every
acknowledged (200) write. A is SIGKILLed mid-run. Then:
- `eu` switches to B within 5 s: from the kill to its stream being up again at B and a
  write through `eu` being acknowledged again;
- it resumes from its persisted seq: no reset (the log is shared);
- 0 acknowledged writes are lost: a strong read of every key (answered by B) returns
  the last acknowledged value, or the value of the one write that was in flight for that
  key at the kill;
- both regions converge on those values (C2, propagation delay 0.5 s).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from helpers.cluster import KV, Proc, create_account, running, start_central, start_replica
from reliability_support import WriteLedger, poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DELAY_S = 0.5
WRITERS = 4
KEYS_PER_WRITER = 15
SWITCH_BOUND_S = 5.0


def _store_central(tmp: Path, url: str, name: str) -> Proc:
    return start_central(tmp, name=name, propagation_delay=DELAY_S, extra=["--store", url])


async def test_replica_switches_central_within_5s_and_loses_no_acknowledged_write(
    tmp_path: Path, pg_url: str
) -> None:
    a = _store_central(tmp_path, pg_url, "central-a")
    with running(a) as procs:
        b = _store_central(tmp_path, pg_url, "central-b")
        procs.append(b)
        eu = start_replica(tmp_path, f"{a.grpc},{b.grpc}", "eu")
        procs.append(eu)
        us = start_replica(tmp_path, b.grpc, "us")
        procs.append(us)
        account, secret = await create_account(a.grpc, known_at=[eu.http, us.http])
        async with KV(eu.http, account, secret, timeout=10) as kv, KV(us.http, account, secret) as kv_us:
            ns = await kv.create_namespace("failover")
            ledger = WriteLedger()
            acked_after_kill: list[float] = []
            killed_at = 0.0
            stop = asyncio.Event()

            async def writer(w: int) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    key, value = f"w{w}-k{n % KEYS_PER_WRITER}", f"w{w}:{n}".encode()
                    if await ledger.put(kv, ns, key, value):
                        if killed_at and not acked_after_kill:
                            acked_after_kill.append(time.monotonic() - killed_at)
                    else:
                        await asyncio.sleep(0.02)

            tasks = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
            await poll(lambda: _acked_at_least(ledger, 100), 30, "100 acknowledged writes")
            mark = len(eu.log())
            a.kill9()
            killed_at = time.monotonic()

            async def stream_up_at_b() -> bool:
                return "stream up (resumed from seq" in eu.log()[mark:]

            stream_s = await poll(stream_up_at_b, 15, "eu's stream up again")
            await poll(lambda: _true(bool(acked_after_kill)), 15, "a write acknowledged after the kill")
            at_switch = ledger.acked_count
            await poll(lambda: _acked_at_least(ledger, at_switch + 100), 30, "100 writes after the switch")
            stop.set()
            await asyncio.gather(*tasks)

            since = eu.log()[mark:]
            print(
                f"\nkill -9 of central A: eu's stream up at B after {stream_s:.2f}s, first write "
                f"acknowledged {acked_after_kill[0]:.2f}s after the kill; "
                f"{ledger.acked_count} writes acknowledged, {ledger.failed_count} failed"
            )
            assert f"switching to {b.grpc}" in since, since[-3000:]
            assert "reset=True" not in since and "reset the stream" not in since, since[-3000:]
            assert stream_s < SWITCH_BOUND_S and acked_after_kill[0] < SWITCH_BOUND_S

            lost = []
            for key, value in ledger.acked.items():
                r = await kv.get(ns, key, strong=True)
                if not ledger.holds(key, r):
                    lost.append(f"{key}: {r.status_code} {r.content!r}, acknowledged {value!r}")
            assert not lost, "\n".join(lost[:20])

            async def converged() -> bool:
                for key in ledger.acked:
                    for region_kv in (kv, kv_us):
                        r = await region_kv.get(ns, key)
                        if r.status_code != 200 or r.content != (await kv.get(ns, key, strong=True)).content:
                            return False
                return True

            took = await poll(converged, DELAY_S + 10, "both regions serve the strong values", 0.2)
            print(f"both regions converged {took:.2f}s after the writes stopped")


async def _acked_at_least(ledger: WriteLedger, n: int) -> bool:
    return ledger.acked_count >= n


async def _true(value: bool) -> bool:
    return value
