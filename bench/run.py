"""`make bench`: edgekv against baselines measured in the same run.

    python -m bench.run [--quick] [--only hot,cold,writes,propagation,list,memory] [--keys N]

Sections (each bounded in time; about 10 minutes in all on 2 cores):
  writes       central's durable writes/s over REST (wrk) and gRPC, 1 and 64 clients,
               against RocksStore's own group-commit rate in-process (bench.store_bench)
  regional     writes through a replica against writes straight to central (wrk, 64
               connections, bench.regional)
  hot          a replica's hot-key reads (wrk, 32 connections) against a bare ASGI app
               under the same uvicorn settings and against Miniflare (Workers + KV)
  propagation  create and update lag to 3 replicas (central --propagation-delay 2)
  list         1,000-key pages from a namespace of 1,000,000 keys (bulk-loaded)
  cold         read-through at a replica that caches nothing
  memory       central's RSS with 1,000,000 keys; a replica's RSS under Zipf reads
               with --cache-bytes 64MiB
  cache        the hot-key policy's hit ratio against LRU and Belady's OPT on simulated
               traces, and its cost per read (bench.cache_sim; in-process, no servers)
  geo          a replica 40 ms each way from central: Zipf reads + 5% writes, against
               reading from central through the same latency (bench.geo)
  centrals     durable REST writes/s, 64 conns: PostgreSQL via 2 centrals vs RocksDB
               via 1; create lag from central A to a replica of central B (bench.centrals)

Prints a table (bench.report) and writes bench/results.json (and py-spy profiles of the limiting
process where a target is missed, in bench/profiles/). Needs wrk and, for the
Miniflare baseline, node with miniflare in bench/.miniflare (`make bench` installs both).
Loopback only; every process started here is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import bigns, cache_sim, centrals, geo, propagation, reads, regional, writes
from bench.common import KV, ROOT, Proc, create_account, env_info, running, start_central, start_replica
from bench.context import Ctx
from bench.report import notes, render, table

RESULTS = ROOT / "bench" / "results.json"
PROFILES = ROOT / "bench" / "profiles"
SECTIONS = ("writes", "regional", "hot", "propagation", "list", "cold", "memory", "cache", "geo", "centrals")
PROPAGATION_DELAY = 2.0
CACHE_BYTES = 64 * 2**20


def _section(ctx: Ctx, name: str, fn: Callable[[], None]) -> None:
    t0 = time.monotonic()
    try:
        fn()
    except Exception as exc:
        ctx.log(f"{name}: FAILED {exc!r}")
        ctx.results.setdefault("errors", {})[name] = traceback.format_exc()[-3000:]
    ctx.results.setdefault("section_seconds", {})[name] = round(time.monotonic() - t0, 1)


async def _namespace(central: Proc, title: str) -> tuple[str, str, str]:
    account, secret = await create_account(central.grpc)
    async with KV(central.http, account, secret) as kv:
        ns = await kv.create_namespace(title)
    return account, secret, ns


def cluster_a(ctx: Ctx, only: set[str]) -> None:
    """writes, hot reads, propagation: one central (propagation delay 2 s)."""
    if not only & {"writes", "regional", "hot", "propagation"}:
        return
    with running() as procs:
        central = start_central(ctx.tmp, propagation_delay=PROPAGATION_DELAY, name="central-a")
        procs.append(central)
        account, secret, ns = asyncio.run(_namespace(central, "bench"))
        auth = {"Authorization": f"Bearer {secret}"}
        if "writes" in only:
            _section(ctx, "writes-store", lambda: writes.store_baseline(ctx))
            _section(ctx, "writes", lambda: writes.durable_writes(ctx, central, account, ns, auth))
        if not only & {"regional", "hot", "propagation"}:
            return
        r1 = start_replica(ctx.tmp, central.grpc, "us", cache_bytes=CACHE_BYTES)
        procs.append(r1)
        if "hot" in only:
            asyncio.run(_put(central, account, secret, ns, reads.HOT_KEY, reads.HOT_VALUE))
            _section(ctx, "hot", lambda: reads.hot_read(ctx, r1, account, ns, secret, auth))
        # After the hot reads: the replica then serves them with the cache it started with.
        if "regional" in only:
            _section(ctx, "regional", lambda: regional.regional_writes(ctx, central, r1, account, ns, auth))
        if "propagation" in only:
            r2 = start_replica(ctx.tmp, central.grpc, "eu", cache_bytes=CACHE_BYTES)
            procs.append(r2)
            r3 = start_replica(ctx.tmp, central.grpc, "ap", cache_bytes=CACHE_BYTES)
            procs.append(r3)
            _section(
                ctx,
                "propagation",
                lambda: propagation.propagation(
                    ctx, central, [r1, r2, r3], account, ns, secret, PROPAGATION_DELAY
                ),
            )


async def _put(central: Proc, account: str, secret: str, ns: str, key: str, value: bytes) -> None:
    async with KV(central.http, account, secret) as kv:
        (await kv.put(ns, key, value)).raise_for_status()


def cluster_b(ctx: Ctx, only: set[str], n_keys: int) -> None:
    """The 1,000,000-key namespace: load, list, cold reads, memory."""
    if not only & {"list", "cold", "memory"}:
        return
    with running() as procs:
        # A short change log: replicas started after the load begin from a snapshot
        # instead of replaying a million creates.
        central = start_central(ctx.tmp, name="central-b", extra=["--log-retention", "10000"])
        procs.append(central)
        account, secret, ns = asyncio.run(_namespace(central, "big"))
        auth = {"Authorization": f"Bearer {secret}"}
        loaded = 0

        def do_load() -> None:
            nonlocal loaded
            loaded = bigns.load(ctx, central, account, ns, n_keys)

        _section(ctx, "load", do_load)
        if not loaded:
            return
        bigns.central_memory(ctx, central, loaded)
        cold = start_replica(
            ctx.tmp, central.grpc, "cold", cache_bytes=CACHE_BYTES, extra=["--admit-threshold", "1000000"]
        )
        procs.append(cold)
        if "list" in only:
            _section(ctx, "list", lambda: bigns.list_pages(ctx, central, cold, account, ns, secret))
        if "cold" in only:
            _section(
                ctx,
                "cold",
                lambda: reads.cold_read(ctx, cold, central, account, ns, loaded, bigns.KEY_FORMAT, auth),
            )
        cold.stop()
        if "memory" in only:
            mem = start_replica(
                ctx.tmp, central.grpc, "mem", cache_bytes=CACHE_BYTES, extra=["--admit-threshold", "1"]
            )
            procs.append(mem)
            _section(
                ctx, "memory", lambda: bigns.replica_memory(ctx, mem, account, ns, loaded, CACHE_BYTES, auth)
            )
        bigns.central_memory(ctx, central, loaded)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs and 100,000 keys (a smoke test)")
    ap.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    ap.add_argument("--keys", type=int, default=0, help="keys in the big namespace (default 1,000,000)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {sorted(unknown)}")
    n_keys = a.keys or (100_000 if a.quick else 1_000_000)
    PROFILES.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="edgekv-bench-", dir=ROOT / "bench"))
    ctx = Ctx(tmp=tmp, out=PROFILES, quick=a.quick)
    ctx.results["env"] = env_info() | {"quick": a.quick, "sections": sorted(only)}
    try:
        cluster_a(ctx, only)
        cluster_b(ctx, only, n_keys)
        if "cache" in only:
            _section(ctx, "cache", lambda: cache_sim.section(ctx))
        if "geo" in only:
            _section(ctx, "geo", lambda: geo.geo(ctx))
        if "centrals" in only:
            _section(ctx, "centrals", lambda: centrals.centrals(ctx))
    finally:
        logs = {p.name: p.read_text(errors="replace")[-2000:] for p in tmp.glob("*.log")}
        if ctx.results.get("errors"):
            ctx.results["logs_tail"] = logs
        shutil.rmtree(tmp, ignore_errors=True)
    rows = table(ctx.results)
    ctx.results["table"] = rows
    ctx.results["notes"] = notes(ctx.results)
    ctx.results["env"]["total_seconds"] = round(time.monotonic() - ctx.started, 1)
    a.out.write_text(json.dumps(ctx.results, indent=2, default=str) + "\n")
    print()
    print(render(rows))
    print()
    for n in ctx.results["notes"]:
        print("note:", n)
    if ctx.results.get("errors"):
        print("sections that failed:", ", ".join(ctx.results["errors"]))
    print(f"\nresults: {a.out.relative_to(ROOT) if a.out.is_relative_to(ROOT) else a.out}")


if __name__ == "__main__":
    main()
