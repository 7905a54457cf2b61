"""Durable writes through central's gRPC API: `clients` concurrent asyncio tasks on
one channel, each putting distinct keys back to back for `seconds`. Prints JSON.

    python -m bench.grpc_load --target H:P --account A --ns N --clients 32 --seconds 8 --tag t [--stream]

With --stream the client is `CentralClient(stream_writes=True)` (its default): the same
`submit(PutOp)` calls, carried many per message on the write stream (as replicas forward
writes); without it, `stream_writes=False`: one unary `Put` call per write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from kvcore.model import WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import PutOp

VALUE = b"v" * 100


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--account", required=True)
    ap.add_argument("--ns", required=True)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--tag", default="g")
    ap.add_argument("--stream", action="store_true", help="puts on the write stream, not unary Put")
    a = ap.parse_args()
    lat: list[float] = []
    errors = 0
    try:
        client = CentralClient(a.target, stream_writes=a.stream)
    except TypeError:  # measuring code from before the write stream: unary only
        client = CentralClient(a.target)
    async with client:
        await client.submit(PutOp(a.account, a.ns, WriteItem(f"{a.tag}-warm", VALUE)))
        stop = time.monotonic() + a.seconds

        async def run(w: int) -> None:
            nonlocal errors
            n = 0
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    await client.submit(PutOp(a.account, a.ns, WriteItem(f"{a.tag}-{w}-{n}", VALUE)))
                except Exception:
                    errors += 1
                lat.append(time.perf_counter() - t0)
                n += 1

        start = time.monotonic()
        await asyncio.gather(*(run(w) for w in range(a.clients)))
        elapsed = time.monotonic() - start
    print(json.dumps({"writes": len(lat), "errors": errors, "elapsed_s": elapsed, "latencies": lat}))


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
