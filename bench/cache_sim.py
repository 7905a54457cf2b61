"""Trace-driven simulator of the replica's hot-key policy, against LRU and Belady's OPT.

    python -m bench.cache_sim [--reads N] [--keys N] [--markdown]

The policy is driven exactly as the replica drives it (`ReplicaBackend.get`): the
same `EdgeState` the replica builds (`EdgeState.from_settings`, with
`ReplicaSettings`' defaults), every read asked of `edge.read_local` (which counts it),
and after a miss central's answer given to `edge.after_read_through`. Only the network
is left out.
Time is a virtual clock advanced by 1/`READS_PER_S` per read, so the sketch's
time decay ticks as it would at that read rate.

Every entry has the same size (fixed-width keys, 100-byte values), so a cache of
`n` entries is `n * entry_size(...)` bytes and LRU and OPT can count in entries.
OPT is Belady's MIN with bypass (a missed key is not cached if its next read is
further away than every cached key's): the best any policy can do on the trace,
knowing the future. "Best fixed set" is the most read `n` keys in hindsight (per
half for the shift), each missed once: on a stationary trace no online policy can
beat it in expectation, so OPT minus it is out of any online policy's reach. Hit
ratios count every read, including the first read of a key (a compulsory miss for
every policy).

Traces (seeded, `--keys` keys, `--reads` reads each):
  zipf-0.8, zipf-0.99  Zipf popularity with s = 0.8 / 0.99, ranks shuffled over keys
  zipf+scans           zipf-0.99 with a one-off scan of 10,000 never-read keys after
                       every 40,000 reads (20% of reads are scans)
  shift                zipf-0.99 whose rank -> key map is redrawn halfway: a new hot set

The cost figures: `policy_us_per_read` is the whole simulated read path per read
(record, lookup, and on a miss the install with its evictions) divided by reads;
`hit_us` is one cache hit's `record_read` + `lookup` (the replica's hot path), and
`lru_us_per_read` an `OrderedDict` LRU's per-read cost on the same trace, for scale.

Figures behind kvcore/cache's constants (hit ratios of this simulator):
- `SAMPLE_PER_ENTRY` = 40 (halve the sketch every 40 x the entries, not TinyLFU's and
  Caffeine's 10 x): better by 0.4-0.9 points on the stationary traces, worse by 1.2
  points after the popularity shift with the 10% cache, still ahead of LRU there.
- the sketch hashes with Python's `hash()`, mixed: about twice as fast as blake2b
  over an encoded key.
- `SKETCH_MAX_COUNT` = 15 (not 255): 73.5% against 72.8% hits after the shift with
  the 10% cache, the same on stationary traces.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from kvcore.cache import entry_size
from kvcore.model import ChangeBatch, Entry, Namespace, Snapshot
from kvcore.settings import ReplicaSettings
from replica.edge import EdgeState, ReadThrough

NS = "5" * 32
ACCOUNT = "a" * 32
VALUE = b"v" * 100
READS_PER_S = 20_000.0
SCAN_EVERY = 40_000
SCAN_LEN = 10_000
CACHE_FRACTIONS = (0.01, 0.10)
TRACES = ("zipf-0.8", "zipf-0.99", "zipf+scans", "shift")


def key_name(i: int) -> str:
    return f"k{i:09d}"  # fixed width: every entry charges the same bytes


ENTRY_BYTES = entry_size(NS, key_name(0), VALUE)


class SimClock:
    """A virtual clock (kvcore.clock.Clock): seconds move only when the simulator says."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return 1_700_000_000.0 + self.t

    def monotonic(self) -> float:
        return self.t


# -- traces ------------------------------------------------------------------------


def _zipf_sampler(n_keys: int, s: float, rng: random.Random) -> Callable[[int], list[int]]:
    cum = list(accumulate(1.0 / (r + 1) ** s for r in range(n_keys)))
    total = cum[-1]
    rand = rng.random

    def draw(n: int) -> list[int]:
        return [bisect.bisect(cum, rand() * total) for _ in range(n)]

    return draw


def _ranks_to_keys(ranks: list[int], n_keys: int, rng: random.Random) -> list[int]:
    perm = list(range(n_keys))
    rng.shuffle(perm)
    return [perm[r] for r in ranks]


def make_trace(name: str, n_keys: int, n_reads: int, seed: int = 1) -> list[int]:
    """Key ids of one trace; ids >= n_keys are scan keys, each read once."""
    rng = random.Random(f"{name}/{seed}")
    if name in ("zipf-0.8", "zipf-0.99"):
        draw = _zipf_sampler(n_keys, float(name.split("-")[1]), rng)
        return _ranks_to_keys(draw(n_reads), n_keys, rng)
    draw = _zipf_sampler(n_keys, 0.99, rng)
    if name == "shift":
        half = n_reads // 2
        return _ranks_to_keys(draw(half), n_keys, rng) + _ranks_to_keys(draw(n_reads - half), n_keys, rng)
    if name == "zipf+scans":
        zipf = _ranks_to_keys(draw(n_reads), n_keys, rng)
        out: list[int] = []
        next_scan = n_keys
        i = 0
        while len(out) < n_reads:
            out.extend(zipf[i : i + SCAN_EVERY])
            i += SCAN_EVERY
            scan = min(SCAN_LEN, n_reads - len(out))
            out.extend(range(next_scan, next_scan + scan))
            next_scan += scan
        return out[:n_reads]
    raise ValueError(f"unknown trace {name!r}")


# -- the replica's policy ----------------------------------------------------------


def new_edge(capacity_entries: int, clock: SimClock) -> EdgeState:
    """An EdgeState built as replica/server.py builds it, with the replica's defaults."""
    settings = ReplicaSettings(
        region="sim", central="127.0.0.1:1", data_dir="-", cache_bytes=capacity_entries * ENTRY_BYTES
    )
    edge = EdgeState.from_settings(settings, clock)
    snap = Snapshot(namespaces=[Namespace(NS, ACCOUNT, "sim")], tokens=[])
    edge.apply_batch(ChangeBatch(changes=[], safe_seq=1, committed_seq=1, snapshot=snap))
    return edge


def simulate_policy(trace: list[int], capacity_entries: int) -> dict[str, float]:
    """The replica's read path over `trace`: hit ratio and seconds spent."""
    clock = SimClock()
    edge = new_edge(capacity_entries, clock)
    names = [key_name(i) for i in range(max(trace) + 1)]
    tick = 1.0 / READS_PER_S
    read_local, after_read_through = edge.read_local, edge.after_read_through
    hits = 0
    t0 = time.perf_counter()
    for i in trace:
        clock.t += tick
        name = names[i]
        read = read_local((NS, name), ACCOUNT)
        if not isinstance(read, ReadThrough):
            hits += 1
            continue
        # The read-through's answer: central's value at its committed seq.
        after_read_through(read, Entry(name, VALUE, None, None, 1), 1)
    spent = time.perf_counter() - t0
    assert edge.cache.bytes_used <= capacity_entries * ENTRY_BYTES
    return {"hit_ratio": hits / len(trace), "seconds": spent, "us_per_read": spent / len(trace) * 1e6}


def hit_cost_us(n: int = 200_000) -> float:
    """µs of one cache hit on the replica's hot path: `record_read` + `lookup`."""
    clock = SimClock()
    edge = new_edge(1000, clock)
    refs = [(NS, key_name(i)) for i in range(64)]
    for _ in range(3):
        for ref in refs:
            edge.cache.record_read(ref)
            if edge.lookup(ref) is None:
                edge.after_read_through(ReadThrough(ref), Entry(ref[1], VALUE, None, None, 1), 1)
    assert all(edge.lookup(r) is not None for r in refs)
    record, lookup = edge.cache.record_read, edge.lookup
    seq = refs * (n // len(refs))
    t0 = time.perf_counter()
    for ref in seq:
        record(ref)
        lookup(ref)
    return (time.perf_counter() - t0) / len(seq) * 1e6


# -- baselines ---------------------------------------------------------------------


def simulate_lru(trace: list[int], capacity: int) -> dict[str, float]:
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    t0 = time.perf_counter()
    for k in trace:
        if k in cache:
            cache.move_to_end(k)
            hits += 1
        else:
            cache[k] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    spent = time.perf_counter() - t0
    return {"hit_ratio": hits / len(trace), "us_per_read": spent / len(trace) * 1e6}


def simulate_topk(trace: list[int], capacity: int, phases: int = 1) -> float:
    """The best fixed set in hindsight: per phase, the `capacity` most read keys, each
    missed on its first read. On a stationary (IRM) trace no online policy does better
    in expectation (it is the A0 policy, which knows every key's probability), so the
    distance from here to OPT is the price of not knowing the future."""
    hits = 0
    step = len(trace) // phases
    for p in range(phases):
        part = trace[p * step : (p + 1) * step if p < phases - 1 else len(trace)]
        hits += sum(n - 1 for _, n in Counter(part).most_common(capacity))
    return hits / len(trace)


def simulate_opt(trace: list[int], capacity: int) -> float:
    """Belady's MIN with bypass: on a miss with a full cache, drop whichever of the
    cached keys and the newcomer is read again furthest in the future."""
    n = len(trace)
    never = n + 1
    next_use = [never] * n
    last: dict[int, int] = {}
    for i in range(n - 1, -1, -1):
        k = trace[i]
        next_use[i] = last.get(k, never)
        last[k] = i
    cached: dict[int, int] = {}  # key -> its next read
    heap: list[tuple[int, int]] = []  # (-next read, key), lazily deleted
    hits = 0
    for i, k in enumerate(trace):
        nxt = next_use[i]
        if k in cached:
            hits += 1
        elif len(cached) >= capacity:
            while True:
                far, victim = heap[0]
                if cached.get(victim) == -far:
                    break
                heapq.heappop(heap)
            if -far <= nxt:
                continue  # bypass: the newcomer is the one read furthest away
            heapq.heappop(heap)
            del cached[victim]
        if nxt == never:
            cached.pop(k, None)  # never read again: no use holding it
            continue
        cached[k] = nxt
        heapq.heappush(heap, (-nxt, k))
    return hits / n


# -- the run -----------------------------------------------------------------------


def run(
    n_keys: int = 100_000, n_reads: int = 1_000_000, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every trace x cache size: hit ratios of the policy, LRU and OPT, and costs."""
    rows: list[dict[str, Any]] = []
    t_all = time.monotonic()
    for name in TRACES:
        trace = make_trace(name, n_keys, n_reads)
        for frac in CACHE_FRACTIONS:
            cap = int(n_keys * frac)
            pol = simulate_policy(trace, cap)
            lru = simulate_lru(trace, cap)
            opt = simulate_opt(trace, cap)
            topk = simulate_topk(trace, cap, 2 if name == "shift" else 1)
            row = {
                "trace": name,
                "cache_pct": round(frac * 100),
                "cache_entries": cap,
                "policy": round(pol["hit_ratio"], 4),
                "lru": round(lru["hit_ratio"], 4),
                "opt": round(opt, 4),
                "topk": round(topk, 4),
                "policy_us_per_read": round(pol["us_per_read"], 2),
                "lru_us_per_read": round(lru["us_per_read"], 2),
            }
            rows.append(row)
            log(
                f"cache sim {name:>10} {row['cache_pct']:>2}%: policy {row['policy']:.4f}  "
                f"lru {row['lru']:.4f}  opt {row['opt']:.4f}  top-k {row['topk']:.4f}  "
                f"({row['policy_us_per_read']} us/read)"
            )
    worst_gap = max(r["opt"] - r["policy"] for r in rows)
    worst_vs_lru = min(r["policy"] - r["lru"] for r in rows)
    return {
        "keys": n_keys,
        "reads_per_trace": n_reads,
        "entry_bytes": ENTRY_BYTES,
        "rows": rows,
        "hit_us": round(hit_cost_us(), 3),
        "worst_gap_to_opt_points": round(worst_gap * 100, 2),
        "worst_vs_lru_points": round(worst_vs_lru * 100, 2),
        "seconds": round(time.monotonic() - t_all, 1),
    }


GOAL_GAP_TO_OPT = 0.05  # issue 15: within 5 points of Belady, never behind LRU


def section(ctx: Any) -> None:
    """`make bench`'s cache section (bench.run): the simulator, results in ctx.results."""
    n_reads = 200_000 if ctx.quick else 1_000_000
    ctx.log(f"cache sim: {len(TRACES)} traces x {len(CACHE_FRACTIONS)} sizes, {n_reads:,} reads each")
    ctx.results["cache_sim"] = run(100_000, n_reads, log=ctx.log)


def rows(r: dict[str, Any]) -> list[tuple[Any, ...]]:
    """bench.run table rows: (metric, edgekv, baseline, ratio, target, met)."""
    res = r.get("cache_sim")
    if not res:
        return []
    out: list[tuple[Any, ...]] = []
    for x in res["rows"]:
        ok = x["policy"] >= x["opt"] - GOAL_GAP_TO_OPT and x["policy"] >= x["lru"]
        out.append(
            (
                f"hit ratio %, {x['trace']}, cache {x['cache_pct']}% of keys (sim)",
                f"{x['policy'] * 100:.1f}",
                f"LRU {x['lru'] * 100:.1f}, OPT {x['opt'] * 100:.1f}, fixed {x['topk'] * 100:.1f}",
                f"{x['policy'] / x['opt']:.2f}x OPT",
                ">= OPT-5, >= LRU",
                ok,
            )
        )
    pol = sum(x["policy_us_per_read"] for x in res["rows"]) / len(res["rows"])
    lru = sum(x["lru_us_per_read"] for x in res["rows"]) / len(res["rows"])
    out.append(
        (
            "replica read path us/read (sim: all reads / a hit)",
            f"{pol:.2f} / {res['hit_us']:.2f}",
            f"{lru:.2f} bare OrderedDict LRU (no sketch, no install)",
            f"{pol / lru:.1f}x",
        )
    )
    return out


def markdown(res: dict[str, Any]) -> str:
    """The README table: hit ratio (%) of the policy, LRU and OPT per trace and size."""
    out = [
        "| trace | cache | policy | LRU | OPT | best fixed set | policy - OPT | policy - LRU "
        "| policy µs/read |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in res["rows"]:
        out.append(
            f"| {r['trace']} | {r['cache_pct']}% ({r['cache_entries']:,}) | {r['policy'] * 100:.1f} | "
            f"{r['lru'] * 100:.1f} | {r['opt'] * 100:.1f} | {r['topk'] * 100:.1f} | "
            f"{(r['policy'] - r['opt']) * 100:+.1f} | "
            f"{(r['policy'] - r['lru']) * 100:+.1f} | {r['policy_us_per_read']:.2f} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--reads", type=int, default=1_000_000)
    ap.add_argument("--markdown", action="store_true", help="print the README table")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args()
    res = run(a.keys, a.reads)
    if a.json:
        print(json.dumps(res, indent=2))
    print(markdown(res))
    print(
        f"hit (record_read + lookup): {res['hit_us']} us; worst gap to OPT "
        f"{res['worst_gap_to_opt_points']} points; worst vs LRU {res['worst_vs_lru_points']:+} points; "
        f"{res['seconds']} s"
    )


if __name__ == "__main__":
    main()
