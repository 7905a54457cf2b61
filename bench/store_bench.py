"""Micro-benchmark of RocksStore: durable writes/s with 1 vs 64 writers, point reads/s.

    python -m bench.store_bench [--seconds 4]

Every write is synced (WriteOptions.sync=True). One writer pays one fsync per put;
64 concurrent writers share fsyncs through group commit, so their throughput should
be many times higher. Runs in a temp dir, about 5 x `--seconds` in total.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time

from kvcore.model import WriteItem
from kvcore.store.ops import BulkPutOp, CreateNamespaceOp, PutOp
from kvcore.store.rocks import RocksStore

ACCT = "bench"
VALUE = b"x" * 100


def writes_threads(store: RocksStore, ns: str, writers: int, seconds: float, tag: str) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * writers

    def run(w: int) -> None:
        n = 0
        while time.monotonic() < stop:
            store.run(PutOp(ACCT, ns, WriteItem(f"{tag}-{w}-{n}", VALUE)))
            n += 1
        counts[w] = n

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - start)


def writes_tasks(store: RocksStore, ns: str, writers: int, seconds: float, tag: str) -> float:
    async def main() -> float:
        stop = time.monotonic() + seconds
        counts = [0] * writers

        async def run(w: int) -> None:
            n = 0
            while time.monotonic() < stop:
                await store.submit(PutOp(ACCT, ns, WriteItem(f"{tag}-{w}-{n}", VALUE)))
                n += 1
            counts[w] = n

        start = time.monotonic()
        await asyncio.gather(*(run(w) for w in range(writers)))
        return sum(counts) / (time.monotonic() - start)

    return asyncio.run(main())


def reads(store: RocksStore, ns: str, keys: list[str], seconds: float) -> float:
    stop = time.monotonic() + seconds
    n = 0
    start = time.monotonic()
    while time.monotonic() < stop:
        for key in keys[:1000]:
            store.get(ACCT, ns, key)
        n += min(len(keys), 1000)
    return n / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each phase")
    args = parser.parse_args()
    s = args.seconds

    with tempfile.TemporaryDirectory(prefix="edgekv-bench-") as path, RocksStore(path, sync=True) as store:
        ns = store.run(CreateNamespaceOp(ACCT, "bench")).id
        one = writes_threads(store, ns, 1, s, "one")
        many = writes_threads(store, ns, 64, s, "thr")
        many_async = writes_tasks(store, ns, 64, s, "aio")
        store.run(BulkPutOp(ACCT, ns, [WriteItem(f"read-{i:06d}", VALUE) for i in range(10_000)]))
        read_keys = [f"read-{i:06d}" for i in range(0, 10_000, 7)]
        point = reads(store, ns, read_keys, s)

    print(f"durable writes/s, 1 writer:              {one:10,.0f}")
    print(f"durable writes/s, 64 writer threads:     {many:10,.0f}  ({many / one:.1f}x)")
    print(f"durable writes/s, 64 asyncio tasks:      {many_async:10,.0f}  ({many_async / one:.1f}x)")
    print(f"point reads/s (1 thread):                {point:10,.0f}")


if __name__ == "__main__":
    main()
