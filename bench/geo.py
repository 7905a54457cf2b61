"""Geo: a replica 40 ms (each way) from central, under Zipf reads plus 5% writes.

    python -m bench.geo [--quick]       (or: python -m bench.run --only geo)

Central's gRPC port is reached only through the test proxy (tests/lib/helpers/proxy.py)
with `latency_s=0.040`, so every read-through, forwarded write and change-stream
message crosses an 80 ms round trip, as between regions. Clients sit next to the
replica (loopback) and run the workload:

- `KEYS` keys (loaded at central first), read with Zipf popularity (s = `ZIPF_S`),
  and 5% of operations are PUTs of a Zipf-chosen key, through the replica;
- `WORKERS` concurrent clients, a warm-up then a measured phase (time-bounded).

The baseline runs the same workload against central's REST port through the same
40 ms proxy: reading every key from central, as a client far from central would
without an edge. Reported: read p50/p99 (ms), the share of edge reads served from
the replica's cache (`x-edgekv-source: cache`), write p50/p99, and the p50 ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import random
import shutil
import sys
import tempfile
import time
from itertools import accumulate
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    KV,
    ROOT,
    Proc,
    create_account,
    free_port,
    running,
    start_central,
    start_replica,
    summary_ms,
    wait_listening,
)
from bench.context import Ctx, value_prefix
from kvcore.model import WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import BulkPutOp

LATENCY_S = 0.040
KEY_FORMAT = "geo-%06d"
KEYS = 2_000
ZIPF_S = 0.99
WRITE_FRACTION = 0.05
WORKERS = 8  # few enough that latency, not the 2 shared cores, is what is measured
VALUE = b"g" * 100

from helpers.proxy import TcpProxy  # noqa: E402  (importable once bench.common put tests/ on sys.path)


class ProxyProc:
    """A `TcpProxy` in a process of its own (`python -m bench.geo --proxy ...`), so the
    workload's client does not delay its timers; stopped by its pid."""

    def __init__(self, tmp: Path, name: str, upstream_addr: str, latency_s: float) -> None:
        self.addr = f"127.0.0.1:{free_port()}"
        port = self.addr.rsplit(":", 1)[1]
        args = [sys.executable, "-m", "bench.geo", "--proxy", upstream_addr, "--listen", port]
        args += ["--latency", str(latency_s)]
        self.proc = Proc(name, args, tmp / f"{name}.log", "", tmp).start()
        try:
            wait_listening(self.proc, [self.addr], timeout_s=15)
        except BaseException:
            self.proc.stop()
            raise


async def _serve_proxy(upstream: str, port: int, latency_s: float) -> None:
    proxy = TcpProxy(int(upstream.rsplit(":", 1)[1]), latency_s=latency_s)
    await proxy.start(port)
    await asyncio.Event().wait()  # until killed


def _zipf_cumulative(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights of ranks 0..n-1: bisect a uniform draw to sample a rank."""
    return list(accumulate(1.0 / (r + 1) ** s for r in range(n)))


async def _workload(
    base: str, account: str, ns: str, secret: str, warmup_s: float, measure_s: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    cum = _zipf_cumulative(KEYS, ZIPF_S)
    total = cum[-1]
    perm = list(range(KEYS))
    rng.shuffle(perm)
    prefix = base + value_prefix(account, ns)
    reads: list[float] = []
    by_source: dict[str, list[float]] = {}
    writes: list[float] = []
    sources: dict[str, int] = {}
    errors = 0
    start = time.monotonic()
    measure_from = start + warmup_s
    stop_at = measure_from + measure_s
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    async with httpx.AsyncClient(
        headers={"authorization": f"Bearer {secret}"}, timeout=10, limits=limits
    ) as client:

        async def worker(wid: int) -> None:
            nonlocal errors
            wr = random.Random(seed * 1000 + wid)
            while (now := time.monotonic()) < stop_at:
                key = KEY_FORMAT % perm[bisect.bisect(cum, wr.random() * total)]
                write = wr.random() < WRITE_FRACTION
                t0 = time.perf_counter()
                try:
                    if write:
                        r = await client.put(prefix + key, content=VALUE)
                    else:
                        r = await client.get(prefix + key)
                except httpx.HTTPError:
                    errors += 1
                    continue
                took = time.perf_counter() - t0
                if r.status_code != 200:
                    errors += 1
                    continue
                if now < measure_from:
                    continue
                if write:
                    writes.append(took)
                else:
                    reads.append(took)
                    src = r.headers.get("x-edgekv-source", "central")
                    sources[src] = sources.get(src, 0) + 1
                    by_source.setdefault(src, []).append(took)

        await asyncio.gather(*(worker(i) for i in range(WORKERS)))
    n_reads = len(reads)
    return {
        "reads": summary_ms(reads),
        "reads_by_source": {src: summary_ms(v) for src, v in by_source.items()},
        "writes": summary_ms(writes),
        "reads_per_s": round(n_reads / measure_s),
        "sources": sources,
        "hit_ratio": round(sources.get("cache", 0) / n_reads, 4) if n_reads else None,
        "errors": errors,
    }


def geo(ctx: Ctx) -> None:
    """The geo section: its own central, a replica and central's REST behind 40 ms."""
    warmup, measure = ctx.secs(10, 3), ctx.secs(30, 8)
    with running() as procs:
        central = start_central(ctx.tmp, name="central-geo")
        procs.append(central)
        account, secret, ns = _namespace_retrying(central)
        asyncio.run(_load(central, account, ns))
        grpc_wan = ProxyProc(ctx.tmp, "wan-grpc", central.grpc, LATENCY_S)
        procs.append(grpc_wan.proc)
        http_wan = ProxyProc(ctx.tmp, "wan-http", central.http.removeprefix("http://"), LATENCY_S)
        procs.append(http_wan.proc)
        replica = start_replica(ctx.tmp, grpc_wan.addr, "geo", cache_bytes="64MiB")
        procs.append(replica)
        ctx.log(f"geo: edge workload ({WORKERS} clients, {warmup:.0f}+{measure:.0f} s)")
        edge = asyncio.run(_workload(replica.http, account, ns, secret, warmup, measure, 1))
        ctx.log(f"geo: central-through-WAN workload ({WORKERS} clients, {warmup:.0f}+{measure:.0f} s)")
        far = asyncio.run(_workload("http://" + http_wan.addr, account, ns, secret, warmup, measure, 1))
    res = {
        "latency_ms_each_way": LATENCY_S * 1000,
        "keys": KEYS,
        "zipf_s": ZIPF_S,
        "write_fraction": WRITE_FRACTION,
        "workers": WORKERS,
        "warmup_s": warmup,
        "measure_s": measure,
        "edge": edge,
        "central_via_wan": far,
        "p50_ratio": round(edge["reads"]["p50_ms"] / far["reads"]["p50_ms"], 3),
        "p99_ratio": round(edge["reads"]["p99_ms"] / far["reads"]["p99_ms"], 3),
    }
    ctx.results["geo"] = res
    ctx.log(
        f"geo: edge reads p50 {edge['reads']['p50_ms']} / p99 {edge['reads']['p99_ms']} ms, "
        f"hit ratio {edge['hit_ratio']}; central via WAN p50 {far['reads']['p50_ms']} / "
        f"p99 {far['reads']['p99_ms']} ms"
    )


async def _load(central: Proc, account: str, ns: str) -> None:
    """Every key, written at central directly (no latency) before the replica starts."""
    async with CentralClient(central.grpc) as client:
        for lo in range(0, KEYS, 5_000):
            items = [WriteItem(KEY_FORMAT % i, VALUE) for i in range(lo, min(KEYS, lo + 5_000))]
            res = await client.submit(BulkPutOp(account, ns, items))
            if res.unsuccessful_keys:
                raise RuntimeError(f"geo: load failed for {len(res.unsuccessful_keys)} keys")


def _namespace_retrying(central: Proc) -> tuple[str, str, str]:
    """An account, token and namespace (central's gRPC may lag its HTTP readiness)."""
    for attempt in range(5):
        try:
            return asyncio.run(_namespace(central))
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


async def _namespace(central: Proc) -> tuple[str, str, str]:
    account, secret = await create_account(central.grpc)
    async with KV(central.http, account, secret) as kv:
        ns = await kv.create_namespace("geo")
    return account, secret, ns


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Table rows (metric, edgekv, baseline, ratio) for bench.run's table."""
    g = r.get("geo")
    if not g:
        return []
    e, f = g["edge"], g["central_via_wan"]
    lat = f"{g['latency_ms_each_way']:.0f} ms each way"

    def trio(x: dict[str, Any]) -> str:
        return f"{x['p50_ms']:.1f} / {x['p99_ms']:.1f} / {x['mean_ms']:.1f}"

    by = e.get("reads_by_source", {})
    mean_ratio = e["reads"]["mean_ms"] / f["reads"]["mean_ms"]
    hit_p50 = by.get("cache", {}).get("p50_ms", float("nan"))
    miss_p50 = by.get("read-through", {}).get("p50_ms", float("nan"))
    return [
        (
            f"geo read p50 / p99 / mean ms (edge, {lat})",
            trio(e["reads"]),
            f"{trio(f['reads'])} central via WAN",
            f"{g['p50_ratio']:.2f}x / {g['p99_ratio']:.2f}x / {mean_ratio:.2f}x",
        ),
        (
            f"geo edge hit ratio (Zipf {g['zipf_s']}, {g['write_fraction'] * 100:.0f}% writes)",
            f"{e['hit_ratio'] * 100:.1f}%" if e["hit_ratio"] is not None else "-",
            f"{g['keys']:,} keys, {g['workers']} clients; p50 of hits {hit_p50:.1f} ms, "
            f"of read-throughs {miss_p50:.1f} ms",
            "-",
        ),
        (
            "geo write p50 / p99 ms (through the replica)",
            f"{e['writes']['p50_ms']:.1f} / {e['writes']['p99_ms']:.1f}",
            f"{f['writes']['p50_ms']:.1f} / {f['writes']['p99_ms']:.1f} central via WAN",
            "-",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--proxy", metavar="UPSTREAM", help="serve a latency proxy to UPSTREAM (internal)")
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--latency", type=float, default=LATENCY_S)
    a = ap.parse_args()
    if a.proxy:
        asyncio.run(_serve_proxy(a.proxy, a.listen, a.latency))
        return
    tmp = Path(tempfile.mkdtemp(prefix="edgekv-geo-", dir=ROOT / "bench"))
    ctx = Ctx(tmp=tmp, out=tmp, quick=a.quick)
    try:
        geo(ctx)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(ctx.results["geo"], indent=2))
    for row in rows(ctx.results):
        print(" | ".join(row))


if __name__ == "__main__":
    main()
