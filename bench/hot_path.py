"""The replica's hot read in process: no sockets, no uvicorn, so far less noise than wrk.

    python -m bench.hot_path [--reads N] [--rounds N]

A replica's REST app (`create_app` over `ReplicaBackend`, built as replica/server.py builds
it, with `replica.metrics.observe`) answers a repeat `GET .../values/{key}` of a cached
100-byte value, driven straight through ASGI with a fake scope. The baseline, in the
same rounds, is a bare ASGI callable sending the same status, headers and body: the
ratio (baseline us / replica us, higher is better) is what to compare across commits.
`cached_read_us` is `EdgeState.cached_read` alone (token, namespace, cache lookup,
sketch count, hit count); `hot_response_us` is the app's whole answer as bytes, as
`kvcore.serving.HotReadProtocol` has it written (no ASGI messages, no socket here). Rounds
alternate replica and baseline; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kvcore.clock import ManualClock
from kvcore.metrics import Metrics
from kvcore.model import ChangeBatch, Entry, Namespace, Permission, Snapshot, Token, token_hash
from kvcore.rest.app import create_app
from kvcore.rest.auth import secret_hash_of
from replica.backend import Deadline, ReplicaBackend
from replica.edge import EdgeState, ReadThrough
from replica.metrics import observe

ACCOUNT, NS, SECRET = "a" * 32, "1" * 32, "s" * 40
PATH = f"/client/v4/accounts/{ACCOUNT}/storage/kv/namespaces/{NS}/values/hot"
VALUE = b"v" * 100

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def replica_app() -> tuple[App, EdgeState]:
    clock = ManualClock()
    metrics = Metrics("bench")
    edge = EdgeState(clock=clock, cache_bytes=10**6, admit_threshold=1)
    observe(metrics, edge)
    token = Token("t1", ACCOUNT, Permission.READ, token_hash(SECRET), 0.0)
    edge.apply_batch(ChangeBatch([], 5, 5, snapshot=Snapshot([Namespace(NS, ACCOUNT, "t")], [token])))
    edge.cache.record_read((NS, "hot"))
    edge.after_read_through(ReadThrough((NS, "hot")), Entry("hot", VALUE, None, None, 5), 5)
    backend = ReplicaBackend(edge=edge, central=None, deadline=Deadline(1.0), region="bench")  # type: ignore[arg-type]
    return create_app(backend, metrics), edge


def baseline_app(start: dict[str, Any], body: bytes) -> App:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": body})

    return app


async def per_request_us(app: App, scope: dict[str, Any], n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        pass

    t0 = time.perf_counter()
    for _ in range(n):
        await app(scope, receive, send)
    return (time.perf_counter() - t0) / n * 1e6


async def main(reads: int, rounds: int) -> dict[str, Any]:
    app, edge = replica_app()
    scope = {
        "type": "http",
        "method": "GET",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": [(b"host", b"r"), (b"authorization", f"Bearer {SECRET}".encode())],
    }
    sent: list[dict[str, Any]] = []

    async def keep(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    for _ in range(2):  # the first read takes the full path and leaves the hot-path memo
        sent.clear()
        await app(scope, receive, keep)
    start, body = sent
    if start["status"] != 200 or dict(start["headers"]).get(b"x-edgekv-source") != b"cache":
        raise RuntimeError(f"the hot key is not served from the cache: {start}")
    base = baseline_app(start, body["body"])
    digest = secret_hash_of(f"Bearer {SECRET}")
    hot_response = app.hot_response
    written: list[bytes] = []
    hot_response(scope, written.append)
    if b"".join(written) != b"".join(  # what `HotReadProtocol` writes, as uvicorn would
        [b"HTTP/1.1 200 OK\r\n", *(b"%s: %s\r\n" % h for h in start["headers"]), b"\r\n", body["body"]]
    ):
        raise RuntimeError("the hot read's bytes differ from its ASGI messages")

    def drop(data: bytes) -> None:
        pass

    replica_us, base_us, cached_us, wire_us = [], [], [], []
    for _ in range(rounds):
        replica_us.append(await per_request_us(app, scope, reads))
        base_us.append(await per_request_us(base, scope, reads))
        t0 = time.perf_counter()
        for _ in range(reads):
            hot_response(scope, drop)
        wire_us.append((time.perf_counter() - t0) / reads * 1e6)
        t0 = time.perf_counter()
        for _ in range(reads):
            edge.cached_read(digest, ACCOUNT, NS, "hot")
        cached_us.append((time.perf_counter() - t0) / reads * 1e6)
    ratios = [b / r for b, r in zip(base_us, replica_us, strict=True)]
    return {
        "reads_per_round": reads,
        "rounds": rounds,
        "replica_us": round(statistics.median(replica_us), 3),
        "baseline_us": round(statistics.median(base_us), 3),
        "ratio_vs_baseline": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "cached_read_us": round(statistics.median(cached_us), 3),
        "hot_response_us": round(statistics.median(wire_us), 3),
    }


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reads", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    print(json.dumps(asyncio.run(main(args.reads, args.rounds))))


if __name__ == "__main__":
    cli()
