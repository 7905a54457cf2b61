"""Hot-read latency from one Worker on workerd: through the KV binding (the replica's
workerd listener) against through `fetch` to the same replica's REST API, in one run.

    .venv/bin/python -m bench.workers [--rounds 300] [--loop 200]

One central, one replica (`--workerd-addr`), one workerd running
`bench/workerd_worker/worker.js`; a 100-byte key read until it sits in the edge cache.
Two measures, each with the two paths interleaved so machine noise hits both alike:

- single reads: `--rounds` requests per path, each one Worker request doing one read,
  timed by the client (so they include the request into the Worker, the same for both);
  a `noop` Worker request is the floor, so `read - noop` is the read itself;
- loops: the Worker does `--loop` sequential reads in one request; the client's wall
  time divided by the loop size is the cost of one read inside the Worker.

Prints a table and writes `bench/results-workers.json`. Needs `make workerd`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, create_account, free_port, pct, running, start_central, start_replica
from kvcore.workerd.config import KvBinding, WorkerSpec

WORKER = ROOT / "bench" / "workerd_worker" / "worker.js"
RESULTS = ROOT / "bench" / "results-workers.json"
HOT_KEY = "hot"
HOT_VALUE = b"v" * 100
PATHS = ("noop", "binding", "rest")


async def _setup(central_grpc: str, central_http: str) -> tuple[str, str, str]:
    account, secret = await create_account(central_grpc)
    root = f"{central_http}/client/v4/accounts/{account}/storage/kv/namespaces"
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {secret}"}) as http:
        created = (await http.post(root, json={"title": "bench-workers"})).raise_for_status()
        ns = created.json()["result"]["id"]
        (await http.put(f"{root}/{ns}/values/{HOT_KEY}", content=HOT_VALUE)).raise_for_status()
    return account, secret, ns


def _timed(http: httpx.Client, url: str) -> float:
    t0 = time.perf_counter()
    r = http.get(url)
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return elapsed


def measure(worker_url: str, rounds: int, loop: int) -> dict[str, Any]:
    single: dict[str, list[float]] = {p: [] for p in PATHS}
    looped: dict[str, list[float]] = {p: [] for p in PATHS}
    with httpx.Client(timeout=60) as http:
        for path in PATHS:  # warm: connections, the edge cache (admission after 2 reads)
            for _ in range(20):
                _timed(http, f"{worker_url}/{path}?key={HOT_KEY}&n=1")
        for _ in range(rounds):
            for path in PATHS:
                single[path].append(_timed(http, f"{worker_url}/{path}?key={HOT_KEY}&n=1"))
        for _ in range(max(3, rounds // 50)):
            for path in PATHS:
                looped[path].append(_timed(http, f"{worker_url}/{path}?key={HOT_KEY}&n={loop}") / loop)
    out: dict[str, Any] = {"rounds": rounds, "loop": loop}
    for path in PATHS:
        ms = [s * 1000 for s in single[path]]
        out[path] = {
            "request_p50_ms": round(pct(ms, 50), 3),
            "request_p99_ms": round(pct(ms, 99), 3),
            "loop_per_read_ms": round(statistics.median(looped[path]) * 1000, 4),
        }
    floor = out["noop"]["request_p50_ms"]
    for path in ("binding", "rest"):
        out[path]["read_p50_ms"] = round(out[path]["request_p50_ms"] - floor, 3)
    out["ratio_rest_over_binding_p50"] = round(out["rest"]["read_p50_ms"] / out["binding"]["read_p50_ms"], 2)
    out["ratio_rest_over_binding_loop"] = round(
        out["rest"]["loop_per_read_ms"] / out["binding"]["loop_per_read_ms"], 2
    )
    return out


def run(rounds: int, loop: int) -> dict[str, Any]:
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "lib"))
    from helpers.workerd import start_workerd

    tmp = Path(tempfile.mkdtemp(prefix="edgekv-bench-workers-"))
    workerd_addr = f"127.0.0.1:{free_port()}"
    with running() as procs:
        central = start_central(tmp)
        procs.append(central)
        replica = start_replica(tmp, central.grpc, "us", extra=["--workerd-addr", workerd_addr])
        procs.append(replica)
        account, secret, ns = asyncio.run(_setup(central.grpc, central.http))
        listen = f"127.0.0.1:{free_port()}"
        spec = WorkerSpec(
            "bench",
            WORKER,
            listen,
            kv=[KvBinding("KV", workerd_addr, secret, ns)],
            text={"EDGEKV_API": replica.http, "ACCOUNT_ID": account, "NAMESPACE_ID": ns, "API_TOKEN": secret},
            fetch_loopback=True,
        )
        procs.append(start_workerd(tmp, [spec]))
        deadline = time.monotonic() + 10
        while True:  # the token reaches the replica on the change stream
            r = httpx.get(f"http://{listen}/binding?key={HOT_KEY}&n=1")
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return measure(f"http://{listen}", rounds, loop)


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--loop", type=int, default=200)
    args = parser.parse_args()
    result = run(args.rounds, args.loop)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"hot read of a 100-byte value from one Worker ({args.rounds} rounds, loops of {args.loop}):")
    print(f"{'path':10} {'request p50':>12} {'request p99':>12} {'read p50':>10} {'per read in a loop':>20}")
    for path in PATHS:
        r = result[path]
        read = f"{r['read_p50_ms']:.3f}" if "read_p50_ms" in r else "-"
        print(
            f"{path:10} {r['request_p50_ms']:>10.3f}ms {r['request_p99_ms']:>10.3f}ms {read:>8}ms "
            f"{r['loop_per_read_ms']:>18.4f}ms"
        )
    print(
        f"REST via fetch / binding: {result['ratio_rest_over_binding_p50']}x (single reads, p50 minus noop), "
        f"{result['ratio_rest_over_binding_loop']}x (loops)"
    )


if __name__ == "__main__":
    main()
