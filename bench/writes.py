"""Central's durable writes/s (every write acknowledged after its WAL sync), over REST
(wrk PUTs of distinct keys) and gRPC (Python CentralClient), 1 and 64 clients.

Why the REST app has its own route table (kvcore/rest/routing.py) on plain starlette and
no FastAPI: through FastAPI's routing, dependency injection and response classes,
central took ~2,200 writes/s with 64 clients, against 31,000/s from the store
in-process: the framework cost more than the durable write itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

from bench import wrk
from bench.common import Proc, metric_value, profile, profile_under_load, summary_ms
from bench.context import Ctx, value_prefix
from kvcore.store.ops import CreateNamespaceOp

BODY = b"v" * 100


def _grpc(
    central: Proc,
    account: str,
    ns: str,
    clients: int,
    procs: int,
    secs: float,
    tag: str,
    stream: bool = False,
) -> dict[str, Any]:
    per = clients // procs
    cmd = [
        sys.executable,
        "-m",
        "bench.grpc_load",
        "--target",
        central.grpc,
        "--account",
        account,
        "--ns",
        ns,
        "--clients",
        str(per),
        "--seconds",
        str(secs),
        *(["--stream"] if stream else []),
    ]
    running = [
        subprocess.Popen([*cmd, "--tag", f"{tag}{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(procs)
    ]
    outs = [json.loads(p.communicate(timeout=secs + 60)[0]) for p in running]
    lat = [x for o in outs for x in o["latencies"]]
    writes = sum(o["writes"] for o in outs)
    elapsed = max(o["elapsed_s"] for o in outs)
    return {
        "clients": clients,
        "client_processes": procs,
        "writes": writes,
        "errors": sum(o["errors"] for o in outs),
        "wps": round(writes / elapsed, 1),
        **summary_ms(lat),
    }


def durable_writes(ctx: Ctx, central: Proc, account: str, ns: str, wrk_headers: dict[str, str]) -> None:
    secs = ctx.secs(8, 3)
    prefix = value_prefix(account, ns)
    res: dict[str, Any] = {"value_bytes": len(BODY), "seconds": secs}
    ctx.log("writes: REST, 1 connection")
    res["rest_1"] = wrk.run(
        central.http + "/",
        wrk.put_script(prefix, "r1", BODY, wrk_headers),
        seconds=secs,
        connections=1,
        threads=1,
    )
    ctx.log("writes: REST, 64 connections")
    res["rest_64"] = wrk.run(
        central.http + "/",
        wrk.put_script(prefix, "r64", BODY, wrk_headers),
        seconds=secs,
        connections=64,
        threads=2,
    )
    ctx.log("writes: gRPC, 1 client")
    res["grpc_1"] = _grpc(central, account, ns, 1, 1, secs, "g1-")
    ctx.log("writes: gRPC, 64 clients (2 processes x 32 tasks)")
    res["grpc_64"] = _grpc(central, account, ns, 64, 2, secs, "g64-")
    ctx.log("writes: gRPC, 64 clients on the write stream (2 processes x 32 tasks)")
    try:
        res["grpc_64_stream"] = _grpc(central, account, ns, 64, 2, secs, "s64-", stream=True)
    except Exception as exc:  # e.g. measuring a central from before the write stream
        ctx.log(f"writes: gRPC write stream failed: {exc!r}")
    for k in ("rest_1", "rest_64"):
        res[k]["wps"] = res[k]["rps"]
    best = max(res["rest_64"]["wps"], res["grpc_64"]["wps"])
    if best < 5000:
        ctx.log("writes: profiling central under 64 REST writers (target 5,000/s missed)")
        p_secs = ctx.secs(8, 4)
        found = profile_under_load(
            lambda: wrk.run(
                central.http + "/",
                wrk.put_script(prefix, "prof", BODY, wrk_headers),
                seconds=p_secs,
                connections=64,
                threads=2,
            ),
            p_secs,
            ctx.out,
            {"central": (central.pid, "writes-central-rest")},
        )
        res["profile_central_rest"] = found.get("central")
        box2: dict[str, Any] = {}
        g = threading.Thread(
            target=lambda: box2.update(r=_grpc(central, account, ns, 64, 2, p_secs, "prof-"))
        )
        g.start()
        time.sleep(1.5)
        res["profile_central_grpc"] = profile(central.pid, p_secs - 3, ctx.out, "writes-central-grpc")
        g.join()
    try:
        import httpx

        text = httpx.get(central.http + "/metrics", timeout=5).text
        res["central_writes_total_put"] = metric_value(text, "edgekv_writes_total", op="put")
    except Exception:
        pass
    ctx.results["writes"] = res


def store_baseline(ctx: Ctx) -> None:
    """RocksStore's own durable write rate in this process (no RPC, no HTTP): 1 and 64
    asyncio writers sharing group commits, as `bench.store_bench` measures it."""
    import tempfile as _tf

    from bench.store_bench import ACCT, writes_tasks
    from kvcore.store.rocks import RocksStore

    secs = ctx.secs(4, 2)
    ctx.log("writes: RocksStore in-process baseline, 1 and 64 asyncio writers")
    with _tf.TemporaryDirectory(prefix="store-", dir=ctx.tmp) as path, RocksStore(path, sync=True) as store:
        ns = store.run(CreateNamespaceOp(ACCT, "bench")).id
        one = writes_tasks(store, ns, 1, secs, "one")
        many = writes_tasks(store, ns, 64, secs, "many")
        gil = _gil_share_during_sync_writes(path + "-gil")
        probe = gil_probe(path + "-probe")
    ctx.results["store_writes"] = {
        "gil_probe": probe,
        "tasks_1": round(one, 1),
        "tasks_64": round(many, 1),
        "seconds": secs,
        "python_speed_beside_sync_writer": gil,
    }


def gil_probe(path: str, writes: int = 60) -> dict[str, dict[str, float]]:
    """Does rocksdict hold the GIL through the WAL sync? A spinner thread counts loop
    iterations while this thread makes `writes` rocksdict calls of each kind; for each
    call, the iterations the spinner made *during* it, per ms, relative to the spinner's
    rate over the whole probe. ~0: the spinner was shut out for the whole call (the
    GIL was held); ~1: it ran freely (the GIL was released). Robust to a loaded
    machine: it asks whether the spinner could run at all, not how fast. The switch
    interval is lowered to 0.2 ms meanwhile so the handoff itself is not what is
    measured. Kinds: a synced write batch; an unsynced one; `flush_wal(sync=True)`
    after an unsynced one (the same durability)."""
    import statistics as _st
    import sys as _sys
    import threading as _th

    from rocksdict import Rdict, WriteBatch, WriteOptions

    db = Rdict(path)
    synced, unsynced = WriteOptions(), WriteOptions()
    synced.sync = True
    count = [0]
    stop = _th.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            count[0] = n

    old = _sys.getswitchinterval()
    _sys.setswitchinterval(0.0002)
    t = _th.Thread(target=spin, daemon=True)
    t.start()
    time.sleep(0.05)
    start_n, start_t = count[0], time.perf_counter()
    samples: dict[str, list[tuple[int, float]]] = {
        "sync_write": [],
        "flush_wal_sync": [],
        "unsynced_write": [],
    }
    try:
        for i in range(writes):
            for kind in samples:
                b = WriteBatch()
                b.put(f"gil-{kind}-{i}".encode(), BODY)
                if kind == "flush_wal_sync":
                    db.write(b, unsynced)
                n0, t0 = count[0], time.perf_counter()
                if kind == "sync_write":
                    db.write(b, synced)
                elif kind == "flush_wal_sync":
                    db.flush_wal(True)
                else:
                    db.write(b, unsynced)
                samples[kind].append((count[0] - n0, time.perf_counter() - t0))
        rate = (count[0] - start_n) / (time.perf_counter() - start_t)
    finally:
        stop.set()
        t.join()
        _sys.setswitchinterval(old)
        db.close()
    out: dict[str, dict[str, float]] = {}
    for kind, xs in samples.items():
        out[kind] = {
            "median_call_ms": round(_st.median(d for _, d in xs) * 1000, 3),
            "spinner_speed_during_call": round(_st.median(n / d / rate for n, d in xs if d > 0), 2),
        }
    return out


def _gil_share_during_sync_writes(path: str, secs: float = 1.5) -> float:
    """How fast a pure-Python loop runs while another thread does synced rocksdict
    writes (what the store's group commit does), relative to alone. ~1.0: the GIL is
    released while the WAL is synced; ~0.5: it is held through the fsync."""
    import threading as _th

    from rocksdict import Rdict, WriteBatch, WriteOptions

    db = Rdict(path)
    wo = WriteOptions()
    wo.sync = True

    def spin() -> int:
        n, end = 0, time.perf_counter() + secs
        while time.perf_counter() < end:
            n += 1
        return n

    alone = spin()
    stop = _th.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            b = WriteBatch()
            b.put(f"gil-{i}".encode(), BODY)
            db.write(b, wo)
            i += 1

    t = _th.Thread(target=writer)
    t.start()
    beside = spin()
    stop.set()
    t.join()
    db.close()
    return round(beside / alone, 2)
