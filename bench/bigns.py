"""One namespace of 1,000,000 keys: bulk load through gRPC BulkPut, list pages with
cursors, central's RSS, and a replica's RSS under a Zipf read workload.

The replica's RSS is what sets kvcore.cache.policy.ENTRY_OVERHEAD_BYTES (1,024):
tracemalloc counts ~780 B of objects per cached entry besides its bytes, but RSS
shows ~1,000 B per entry of a small value (charged 64 B each, a "64 MiB" cache of
small values took ~450 MiB); the W-TinyLFU queues (an OrderedDict node per entry)
added ~70 B per entry by tracemalloc over the sampled LFU's dense list, hence 1,024
rather than 960.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bench import wrk
from bench.common import Budget, Proc, metric_value, rss_mib, summary_ms
from bench.context import Ctx, keys_path, value_prefix
from kvcore.model import WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import BulkPutOp

KEY_FORMAT = "key-%07d"
VALUE_BYTES = 64
BATCH = 10_000


def _value(i: int) -> bytes:
    return f"{i:07d}".encode().ljust(VALUE_BYTES, b"x")


async def _load(ctx: Ctx, central: Proc, account: str, ns: str, n: int, budget_s: float) -> dict[str, Any]:
    budget = Budget(budget_s)
    loaded = 0
    start = time.perf_counter()
    batch_s: list[float] = []
    async with CentralClient(central.grpc) as client:
        next_batch = 0
        n_batches = n // BATCH

        async def worker() -> None:
            nonlocal next_batch, loaded
            while next_batch < n_batches and not budget.over():
                b = next_batch
                next_batch += 1
                items = [WriteItem(KEY_FORMAT % i, _value(i)) for i in range(b * BATCH, (b + 1) * BATCH)]
                t0 = time.perf_counter()
                res = await client.submit(BulkPutOp(account, ns, items))
                batch_s.append(time.perf_counter() - t0)
                loaded += BATCH
                del res
                if b % 20 == 0:
                    ctx.log(f"load: {loaded:,} keys")

        await asyncio.gather(*(worker() for _ in range(2)))
    elapsed = time.perf_counter() - start
    return {
        "keys": loaded,
        "target_keys": n,
        "seconds": round(elapsed, 1),
        "keys_per_s": round(loaded / elapsed),
        "batch": BATCH,
        "value_bytes": VALUE_BYTES,
        "concurrent_batches": 2,
        "batch_latency": summary_ms(batch_s),
        "truncated": loaded < n,
    }


def load(ctx: Ctx, central: Proc, account: str, ns: str, n: int) -> int:
    ctx.log(f"load: {n:,} keys via BulkPut x {BATCH:,}")
    res = asyncio.run(_load(ctx, central, account, ns, n, ctx.secs(240, 60)))
    ctx.results["load"] = res
    ctx.log(f"load: {res['keys']:,} keys in {res['seconds']} s ({res['keys_per_s']:,}/s)")
    return int(res["keys"])


def _list_pages(base: str, path: str, secret: str, pages: int) -> dict[str, Any]:
    lat: list[float] = []
    cursor = ""
    seen = 0
    with httpx.Client(headers={"authorization": f"Bearer {secret}"}, timeout=10) as c:
        c.get(base + path, params={"limit": 10})  # connection up
        for _ in range(pages):
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            t0 = time.perf_counter()
            r = c.get(base + path, params=params)
            lat.append(time.perf_counter() - t0)
            r.raise_for_status()
            body = r.json()
            seen += len(body["result"])
            cursor = body["result_info"].get("cursor") or ""
            if not cursor:
                break
    return {"pages": len(lat), "keys_seen": seen, "page_size": 1000, **summary_ms(lat)}


def list_pages(ctx: Ctx, central: Proc, replica: Proc | None, account: str, ns: str, secret: str) -> None:
    pages = int(ctx.secs(200, 30))
    ctx.log(f"list: {pages} pages of 1,000 keys at central")
    res: dict[str, Any] = {"central": _list_pages(central.http, keys_path(account, ns), secret, pages)}
    if replica is not None:
        ctx.log(f"list: {pages} pages of 1,000 keys at a replica")
        res["replica"] = _list_pages(replica.http, keys_path(account, ns), secret, pages)
    ctx.results["list"] = res


def central_memory(ctx: Ctx, central: Proc, n_keys: int) -> None:
    ctx.results.setdefault("memory", {})["central"] = {
        "keys": n_keys,
        "rss_mib": round(rss_mib(central.pid), 1),
    }


def replica_memory(
    ctx: Ctx,
    replica: Proc,
    account: str,
    ns: str,
    n_keys: int,
    cache_bytes: int,
    wrk_headers: dict[str, str],
) -> None:
    """Zipf reads over all keys until the cache is full (or the time is up); RSS after
    each 10 s step. The replica admits a key on its first read (--admit-threshold 1)
    so the cache fills as fast as read-through allows."""
    prefix = value_prefix(account, ns)
    script = wrk.zipf_script(prefix, n_keys, KEY_FORMAT, wrk_headers)
    budget = Budget(ctx.secs(90, 20))
    steps: list[dict[str, Any]] = []
    idle = rss_mib(replica.pid)
    ctx.log("memory: Zipf reads at a replica with a 64 MiB cache")
    while not budget.over():
        run = wrk.run(
            replica.http + "/", script, seconds=min(10, max(1, budget.left())), connections=32, threads=2
        )
        text = httpx.get(replica.http + "/metrics", timeout=5).text
        step = {
            "t_s": round(budget.seconds - budget.left(), 1),
            "rss_mib": round(rss_mib(replica.pid), 1),
            "cache_bytes": metric_value(text, "edgekv_cache_bytes"),
            "cache_keys": metric_value(text, "edgekv_cache_keys"),
            "hits": metric_value(text, "edgekv_cache_requests_total", result="hit"),
            "misses": metric_value(text, "edgekv_cache_requests_total", result="miss"),
            "rps": run["rps"],
            "errors": run["errors"],
        }
        steps.append(step)
        ctx.log(f"memory: {step}")
        if (step["cache_bytes"] or 0) >= 0.97 * cache_bytes:
            break
    last = steps[-1]
    first = steps[0]
    peak = max(s["rss_mib"] for s in steps)
    keys = last["cache_keys"] or 0
    cb = last["cache_bytes"] or 0
    # Marginal RSS per cached entry between the first and the last step (the first
    # 10 s also pay for start-up growth: buffers, pools, the sketch's pages).
    d_keys = keys - (first["cache_keys"] or 0)
    per_entry = (last["rss_mib"] - first["rss_mib"]) * 2**20 / d_keys if d_keys > 1000 else None
    res: dict[str, Any] = {
        "keys": n_keys,
        "admit_threshold": 1,
        "cache_bound_mib": cache_bytes / 2**20,
        "rss_idle_mib": round(idle, 1),
        "rss_peak_mib": peak,
        "rss_final_mib": last["rss_mib"],
        "cache_fill": round(cb / cache_bytes, 3),
        "cache_keys": keys,
        "rss_bytes_per_cached_entry": round(per_entry) if per_entry else None,
        "charged_bytes_per_entry": round(cb / keys) if keys else None,
        "steps": steps,
    }
    if keys and per_entry:
        # RSS with the cache full, at the measured marginal cost per entry.
        full_keys = cache_bytes / (cb / keys)
        res["rss_projected_full_mib"] = round(last["rss_mib"] + (full_keys - keys) * per_entry / 2**20, 1)
    ctx.results.setdefault("memory", {})["replica"] = res
