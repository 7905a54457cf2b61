"""Propagation lag to 3 replicas, measured by the client: from central's
acknowledgement of a write (REST PUT at central) to the first read of the new value
at each replica, polling. Creates: each replica first answers 404 for the key (so it
holds a negative entry), then the create must reach it on the stream (C1). Updates:
the key is hot (cached) at every replica, central holds the update for up to
--propagation-delay (C2). The replicas' own `edgekv_replication_lag_seconds`
histograms are read as a cross-check (bucket bounds only)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bench.common import Budget, Proc, metric_value, summary_ms
from bench.context import Ctx, value_prefix


async def _poll_until(
    client: httpx.AsyncClient, url: str, want: bytes, deadline: float, interval: float
) -> tuple[float, str]:
    while True:
        r = await client.get(url)
        t = time.perf_counter()
        if r.status_code == 200 and r.content == want:
            return t, r.headers.get("x-edgekv-source", "")
        if t > deadline:
            raise TimeoutError(f"{url} never served {want!r}")
        if interval:
            await asyncio.sleep(interval)


def _buckets(text: str, kind: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("edgekv_replication_lag_seconds_bucket") and f'kind="{kind}"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def _hist_quantiles(text: str, kind: str, before: str = "") -> dict[str, Any]:
    """p50/p99 upper bucket bounds of edgekv_replication_lag_seconds{kind}, counting
    only what was observed after `before` (a previous scrape)."""
    old = _buckets(before, kind)
    buckets = sorted((le, c - old.get(le, 0.0)) for le, c in _buckets(text, kind).items())
    if not buckets or buckets[-1][1] == 0:
        return {"count": 0}
    total = buckets[-1][1]
    out: dict[str, Any] = {"count": int(total)}
    for q in (50, 99):
        for le, c in buckets:
            if c >= total * q / 100:
                out[f"p{q}_le_ms"] = le * 1000
                break
    return out


async def _run(
    ctx: Ctx, central: Proc, replicas: list[Proc], account: str, ns: str, secret: str, delay: float
) -> dict[str, Any]:
    prefix = value_prefix(account, ns)
    hdr = {"authorization": f"Bearer {secret}"}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    budget = Budget(ctx.secs(60, 20))
    async with httpx.AsyncClient(headers=hdr, timeout=10, limits=limits) as c:
        # Replicas started late replay the log first: measure once they are caught up.
        caught_up = await _wait_caught_up(c, replicas, 60)
        before = {r.name: (await c.get(r.http + "/metrics")).text for r in replicas}
        # -- creates
        n_create = int(ctx.secs(300, 30))
        create_lag: dict[str, list[float]] = {r.name: [] for r in replicas}
        sources: dict[str, int] = {}
        for i in range(n_create):
            if budget.left() < budget.seconds / 2:
                break
            key = f"create-{i}"
            val = f"created-{i}".encode()
            for r in replicas:
                got = await c.get(r.http + prefix + key)
                assert got.status_code == 404, got.status_code
            resp = await c.put(
                central.http + prefix + key, content=val, headers={"content-type": "application/octet-stream"}
            )
            resp.raise_for_status()
            ack = time.perf_counter()
            seen = await asyncio.gather(
                *(_poll_until(c, r.http + prefix + key, val, ack + 10, 0) for r in replicas)
            )
            for r, (t, src) in zip(replicas, seen, strict=True):
                create_lag[r.name].append(t - ack)
                sources[src] = sources.get(src, 0) + 1
        # -- updates
        n_keys = int(ctx.secs(10, 5))
        rounds = int(ctx.secs(3, 1))
        update_lag: dict[str, list[float]] = {r.name: [] for r in replicas}
        keys = [f"upd-{i}" for i in range(n_keys)]
        await asyncio.gather(
            *(
                c.put(
                    central.http + prefix + k,
                    content=b"v0",
                    headers={"content-type": "application/octet-stream"},
                )
                for k in keys
            )
        )
        for rnd in range(1, rounds + 1):
            if budget.left() < delay + 5:
                break
            # Make every key hot (served from the cache) at every replica.
            for r in replicas:
                for k in keys:
                    for _ in range(20):
                        g = await c.get(r.http + prefix + k)
                        if g.headers.get("x-edgekv-source") == "cache":
                            break
                        await asyncio.sleep(0.02)
            val = f"v{rnd}".encode()
            acks = await asyncio.gather(*(_put_ack(c, central.http + prefix + k, val) for k in keys))
            polls = [
                _poll_until(c, r.http + prefix + k, val, ack + delay + 10, 0.02)
                for k, ack in zip(keys, acks, strict=True)
                for r in replicas
            ]
            seen = await asyncio.gather(*polls)
            i = 0
            for ack in acks:
                for r in replicas:
                    update_lag[r.name].append(seen[i][0] - ack)
                    i += 1
        hist = {}
        for r in replicas:
            text = (await c.get(r.http + "/metrics")).text
            hist[r.name] = {
                "create": _hist_quantiles(text, "create", before[r.name]),
                "update": _hist_quantiles(text, "update", before[r.name]),
            }
    res: dict[str, Any] = {
        "propagation_delay_s": delay,
        "create": {name: summary_ms(v) for name, v in create_lag.items()},
        "update": {name: summary_ms(v) for name, v in update_lag.items()},
        "create_first_source": sources,
        "replica_histograms": hist,
        "update_poll_interval_ms": 20,
        "caught_up_before_s": caught_up,
    }
    all_c = [x for v in create_lag.values() for x in v]
    all_u = [x for v in update_lag.values() for x in v]
    res["create_all"] = summary_ms(all_c)
    res["update_all"] = summary_ms(all_u)
    return res


async def _wait_caught_up(c: httpx.AsyncClient, replicas: list[Proc], timeout: float) -> float:
    """Until every replica's applied seq reaches the central committed seq it knows."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        lagging = 0
        for r in replicas:
            text = (await c.get(r.http + "/metrics")).text
            applied = metric_value(text, "edgekv_replication_applied_seq") or 0
            committed = metric_value(text, "edgekv_central_committed_seq") or 0
            lagging += applied < committed
        if not lagging:
            break
        await asyncio.sleep(0.2)
    return round(time.perf_counter() - t0, 2)


async def _put_ack(c: httpx.AsyncClient, url: str, val: bytes) -> float:
    r = await c.put(url, content=val, headers={"content-type": "application/octet-stream"})
    r.raise_for_status()
    return time.perf_counter()


def propagation(
    ctx: Ctx, central: Proc, replicas: list[Proc], account: str, ns: str, secret: str, delay: float
) -> None:
    ctx.log(f"propagation: creates and updates to {len(replicas)} replicas")
    ctx.results["propagation"] = asyncio.run(_run(ctx, central, replicas, account, ns, secret, delay))
