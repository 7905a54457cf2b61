"""Writes through a replica against writes straight to central, in the same run.

wrk PUTs of distinct 100-byte values with 64 connections, once at central's REST API
and once at a replica's (which forwards each write to central and applies it to its
cache before answering). Rounds alternate central and replica so drift on a shared
machine hits both alike; the ratio is the median of the per-round ratios.

Each round also records how busy each process's event-loop thread was (CPU seconds of
its main thread per second of the round, 1.0 = a whole core): the process near 1.0 is
the one that limits the round; below it, the round waited on something else (the
other process, the WAL sync, the machine, or the GIL held by another of the process's
own threads: central's store writer, whose CPU `cpu_us_per_write` counts).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import wrk
from bench.common import Proc, cpu_s, profile_under_load
from bench.context import Ctx, value_prefix

BODY = b"v" * 100
CONNECTIONS = 64
ROUNDS = 3


def regional_writes(
    ctx: Ctx, central: Proc, replica: Proc, account: str, ns: str, wrk_headers: dict[str, str]
) -> None:
    secs = ctx.secs(8, 3)
    prefix = value_prefix(account, ns)
    rounds: list[dict[str, Any]] = []
    for r in range(ROUNDS):
        row: dict[str, Any] = {}
        for name, proc in (("central", central), ("replica", replica)):
            ctx.log(f"regional writes: round {r + 1}, {name}, {CONNECTIONS} connections")
            c0, r0 = cpu_s(central.pid), cpu_s(replica.pid)
            cl0, rl0 = cpu_s(central.pid, main_thread=True), cpu_s(replica.pid, main_thread=True)
            t0 = time.monotonic()
            row[name] = w = wrk.run(
                proc.http + "/",
                wrk.put_script(prefix, f"rw{r}{name[0]}", BODY, wrk_headers),
                seconds=secs,
                connections=CONNECTIONS,
                threads=2,
            )
            n = max(1, w["requests"])
            w["central_cpu_us_per_write"] = round((cpu_s(central.pid) - c0) / n * 1e6, 1)
            w["replica_cpu_us_per_write"] = round((cpu_s(replica.pid) - r0) / n * 1e6, 1)
            wall_s = time.monotonic() - t0  # the interval the CPU figures span
            w["central_loop_busy"] = round((cpu_s(central.pid, main_thread=True) - cl0) / wall_s, 2)
            w["replica_loop_busy"] = round((cpu_s(replica.pid, main_thread=True) - rl0) / wall_s, 2)
        row["ratio"] = round(row["replica"]["rps"] / row["central"]["rps"], 3)
        rounds.append(row)
    res: dict[str, Any] = {
        "value_bytes": len(BODY),
        "connections": CONNECTIONS,
        "seconds": secs,
        "rounds": rounds,
        "central_wps": statistics.median(x["central"]["rps"] for x in rounds),
        "replica_wps": statistics.median(x["replica"]["rps"] for x in rounds),
        "ratio": statistics.median(x["ratio"] for x in rounds),
        "ratio_range": [min(x["ratio"] for x in rounds), max(x["ratio"] for x in rounds)],
        "cpu_us_per_write": {
            f"{via}_{proc}": statistics.median(x[via][f"{proc}_cpu_us_per_write"] for x in rounds)
            for via in ("central", "replica")
            for proc in ("central", "replica")
        },
        "loop_busy": {
            f"{via}_{proc}": statistics.median(x[via][f"{proc}_loop_busy"] for x in rounds)
            for via in ("central", "replica")
            for proc in ("central", "replica")
        },
    }
    ctx.log("regional writes: profiling replica and central under replica writes")
    p_secs = ctx.secs(8, 4)
    found = profile_under_load(
        lambda: wrk.run(
            replica.http + "/",
            wrk.put_script(prefix, "rwprof", BODY, wrk_headers),
            seconds=p_secs,
            connections=CONNECTIONS,
            threads=2,
        ),
        p_secs,
        ctx.out,
        {"replica": (replica.pid, "rw-replica"), "central": (central.pid, "rw-central")},
    )
    res["profile_replica"] = found.get("replica")
    res["profile_central"] = found.get("central")
    ctx.results["regional_writes"] = res
    ctx.log(f"regional writes: ratio {res['ratio']} (rounds {res['ratio_range']})")
