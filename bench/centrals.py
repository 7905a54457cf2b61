"""Central beyond one machine (issue 14): durable REST writes/s with 64 clients on
PostgreSQL through 2 centrals against RocksDB through 1, in the same run, and the
create lag across centrals (a create written through central A, served by a replica
of central B).

Writes are wrk PUTs of distinct keys (every write a create), acknowledged once
durable: RocksDB syncs its WAL; PostgreSQL runs with `fsync=on` and
`synchronous_commit=on`, on a throwaway server (tests/lib/helpers/postgres.py) on this
machine. The 64 connections are one wrk with 64 against the RocksDB central, and two
wrk processes with 32 each against the two PostgreSQL centrals. The two setups take
turns (`ROUNDS` each, RocksDB first) and the median round of each is compared.
Create lag is measured by the client: from A's acknowledgement of the PUT to the
first read of the value at B's replica, which answered 404 for the key just before.
The client polls every POLL_S (its resolution): without a pause its poll is a busy
loop competing for the cores it shares with both centrals, the replica and
PostgreSQL, and the tail of the lag it measured was of its own making.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

import httpx

from bench import wrk
from bench.common import KV, Proc, create_account, running, start_central, start_replica, summary_ms
from bench.context import Ctx, value_prefix
from bench.propagation import _poll_until, _wait_caught_up
from bench.writes import BODY

ROUNDS = 3
CONNECTIONS = 64
GOAL_RATIO = 0.5
POLL_S = 0.001
PG_SETTINGS = {"fsync": "on", "synchronous_commit": "on", "max_connections": "200"}


async def _namespace(central: Proc, title: str) -> tuple[str, str, str]:
    account, secret = await create_account(central.grpc)
    async with KV(central.http, account, secret) as kv:
        ns = await kv.create_namespace(title)
    return account, secret, ns


def _wrk_puts(
    centrals: list[Proc], prefix: str, tag: str, auth: dict[str, str], secs: float
) -> dict[str, Any]:
    """CONNECTIONS connections split evenly over `centrals`, one wrk each, at once."""
    per = CONNECTIONS // len(centrals)
    out: dict[int, dict[str, Any]] = {}

    def one(i: int, c: Proc) -> None:
        script = wrk.put_script(prefix, f"{tag}-{i}", BODY, auth)
        out[i] = wrk.run(
            c.http + "/", script, seconds=secs, connections=per, threads=1 if per < 64 else 2, errors_ok=True
        )

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(centrals)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = [out[i] for i in range(len(centrals))]
    # Only acknowledged (2xx) writes count; wrk's rps counts every response.
    ok_per_s = [(r["requests"] - r["err_status"]) / (r["duration_us"] / 1e6) for r in runs]
    return {
        "wps": round(sum(ok_per_s), 1),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "p50_ms": max(r["p50_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "per_central": [round(x, 1) for x in ok_per_s],
    }


def _rocks_round(ctx: Ctx, rnd: int, secs: float) -> dict[str, Any]:
    with running() as procs:
        c = start_central(ctx.tmp, name=f"rocks-{rnd}")
        procs.append(c)
        account, secret, ns = asyncio.run(_namespace(c, "bench"))
        return _wrk_puts(
            [c], value_prefix(account, ns), f"rocks{rnd}", {"Authorization": f"Bearer {secret}"}, secs
        )


def _pg_round(ctx: Ctx, url: str, rnd: int, secs: float, lag: dict[str, Any] | None) -> dict[str, Any]:
    with running() as procs:
        a = start_central(ctx.tmp, name=f"pg-a-{rnd}", propagation_delay=2, extra=["--store", url])
        procs.append(a)
        b = start_central(ctx.tmp, name=f"pg-b-{rnd}", propagation_delay=2, extra=["--store", url])
        procs.append(b)
        account, secret, ns = asyncio.run(_namespace(a, f"bench-{rnd}"))
        auth = {"Authorization": f"Bearer {secret}"}
        res = _wrk_puts([a, b], value_prefix(account, ns), f"pg{rnd}", auth, secs)
        if lag is not None:
            replica = start_replica(ctx.tmp, b.grpc, f"lag{rnd}")
            procs.append(replica)
            lag.update(asyncio.run(_create_lag(ctx, a, replica, account, ns, secret)))
        return res


async def _create_lag(ctx: Ctx, a: Proc, replica: Proc, account: str, ns: str, secret: str) -> dict[str, Any]:
    prefix = value_prefix(account, ns)
    lags: list[float] = []
    n = int(ctx.secs(300, 50))
    deadline = time.monotonic() + ctx.secs(60, 20)
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {secret}"}, timeout=10) as c:
        await _wait_caught_up(c, [replica], 60)  # the write rounds left a log to replay
        for i in range(n):
            if time.monotonic() > deadline:
                break
            key, val = f"lag-{i}", f"created-{i}".encode()
            assert (await c.get(replica.http + prefix + key)).status_code == 404
            r = await c.put(
                a.http + prefix + key, content=val, headers={"content-type": "application/octet-stream"}
            )
            r.raise_for_status()
            ack = time.perf_counter()
            seen, _ = await _poll_until(c, replica.http + prefix + key, val, ack + 10, POLL_S)
            lags.append(seen - ack)
    return summary_ms(lags)


def centrals(ctx: Ctx) -> None:
    """The `centrals` section: results['centrals'] = {rocks, pg, ratio, create_lag_b}."""
    from helpers.postgres import postgres_server

    secs = ctx.secs(8, 3)
    rocks: list[dict[str, Any]] = []
    pg: list[dict[str, Any]] = []
    lag: dict[str, Any] = {}
    with postgres_server(PG_SETTINGS) as server:
        for rnd in range(ROUNDS):
            ctx.log(f"centrals: round {rnd + 1}/{ROUNDS}, RocksDB through 1 central, {CONNECTIONS} conns")
            rocks.append(_rocks_round(ctx, rnd, secs))
            ctx.log(f"centrals: round {rnd + 1}/{ROUNDS}, PostgreSQL through 2 centrals, {CONNECTIONS} conns")
            url = server.create_database(f"bench_{rnd}")
            pg.append(_pg_round(ctx, url, rnd, secs, lag if rnd == ROUNDS - 1 else None))
    r_wps = statistics.median(x["wps"] for x in rocks)
    p_wps = statistics.median(x["wps"] for x in pg)
    ctx.results["centrals"] = {
        "seconds": secs,
        "connections": CONNECTIONS,
        "rocks_1_central": rocks,
        "pg_2_centrals": pg,
        "rocks_wps": r_wps,
        "pg_wps": p_wps,
        "ratio": round(p_wps / r_wps, 2) if r_wps else None,
        "goal_ratio": GOAL_RATIO,
        "create_lag_a_to_b_replica": lag,
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Table rows (metric, edgekv, baseline, ratio, target, met) for bench/run.py."""
    c = r.get("centrals")
    if not c:
        return []
    out: list[tuple[str, str, str, str, str, bool | None]] = []
    ratio = c["ratio"] or 0.0
    out.append(
        (
            "durable writes/s, REST 64 conns, PostgreSQL via 2 centrals",
            f"{c['pg_wps']:,.0f}",
            f"{c['rocks_wps']:,.0f} RocksDB via 1 central",
            f"{ratio:.2f}x",
            f">= {GOAL_RATIO}x",
            ratio >= GOAL_RATIO,
        )
    )
    lag = c.get("create_lag_a_to_b_replica") or {}
    if lag.get("n"):
        out.append(
            (
                "create lag p50 / p99 ms, central A -> replica of B",
                f"{lag['p50_ms']:.1f} / {lag['p99_ms']:.1f}",
                "-",
                "-",
                "p99 < 100 ms",
                lag["p99_ms"] < 100,
            )
        )
    return out
