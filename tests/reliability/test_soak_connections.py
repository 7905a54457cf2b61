"""200 concurrent keep-alive connections for 30 s against one replica.

A mixed read workload (mostly hot keys served from the edge cache, some cold keys read
through to central, some missing keys), at a bounded rate (each connection sends at
most one request every 200 ms: <= 1,000 requests/s, <= 30,000 in all). Raw asyncio
streams speak HTTP/1.1 so the load generator is cheap and every connection is really
its own socket. Asserts: no error response (only the expected 404s), no connection
error, every body right; during the run the replica holds the 200 sockets; afterwards
its file descriptors and threads return to the baseline (small slack) once the
connections are closed. The replica exposes no asyncio task count, so fds and threads
stand in for leaked tasks (a task per connection would hold its socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path

import pytest
from helpers.cluster import KV, metric_value, running, start_central, start_replica, wait_ready_async
from reliability_support import fd_count, percentile, poll, setup, thread_count

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

CONNECTIONS = 200
DURATION_S = 30.0
INTERVAL_S = 0.2  # per connection: the rate bound
HOT, COLD, MISSING = 40, 400, 200
FD_SLACK = 8
THREAD_SLACK = 2


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the replica")
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(status_line.split()[1]), await reader.readexactly(length)


async def test_200_connections_for_30s_no_errors_no_leaks(tmp_path: Path) -> None:
    central = start_central(tmp_path, propagation_delay=5.0)
    with running(central) as procs:
        eu = start_replica(tmp_path, central.grpc, "eu", wait=False)
        procs.append(eu)
        await wait_ready_async(eu.http, proc=eu)
        account, secret, ns = await setup(central, {"eu": eu})
        values = {f"hot{i}": f"hot-{i}-".encode() * 20 for i in range(HOT)}
        values |= {f"cold{i}": f"cold-{i}".encode() for i in range(COLD)}
        async with KV(central.http, account, secret) as kc:
            items = [{"key": k, "value": v.decode()} for k, v in values.items()]
            r = await kc.http.put(f"{kc.root}/{ns}/bulk", json=items)
            assert r.status_code == 200, r.text
        async with KV(eu.http, account, secret) as ke:
            for key in values:  # hot keys read 3x (admitted to the cache), cold ones once
                for _ in range(3 if key.startswith("hot") else 1):
                    assert (await ke.get(ns, key)).status_code == 200
            for i in range(5):
                assert (await ke.get(ns, f"missing{i}")).status_code == 404
            assert (await ke.get(ns, "hot0")).headers["x-edgekv-source"] == "cache"
        await asyncio.sleep(0.5)
        fds_before, threads_before = fd_count(eu.pid), thread_count(eu.pid)

        host, port = eu.http.removeprefix("http://").rsplit(":", 1)
        path = f"/client/v4/accounts/{account}/storage/kv/namespaces/{ns}/values/"
        auth = f"Authorization: Bearer {secret}\r\nHost: {host}:{port}\r\n\r\n".encode()
        stats = {"requests": 0, "hot": 0, "cold": 0, "missing": 0}
        errors: list[str] = []
        latencies: list[float] = []
        opened = asyncio.Event()
        n_open = 0
        deadline = 0.0

        async def connection(c: int) -> None:
            nonlocal n_open
            rng = random.Random(c)
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
            except (OSError, TimeoutError) as exc:
                errors.append(f"connection {c}: connect failed: {exc!r}")
                return
            n_open += 1
            if n_open == CONNECTIONS:
                opened.set()
            try:
                await asyncio.wait_for(opened.wait(), 15)
                await asyncio.sleep(rng.uniform(0, INTERVAL_S))
                while time.monotonic() < deadline:
                    roll = rng.random()
                    kind = "hot" if roll < 0.8 else "cold" if roll < 0.92 else "missing"
                    key = f"{kind}{rng.randrange({'hot': HOT, 'cold': COLD, 'missing': MISSING}[kind])}"
                    t0 = time.perf_counter()
                    writer.write(b"GET " + path.encode() + key.encode() + b" HTTP/1.1\r\n" + auth)
                    status, body = await asyncio.wait_for(_read_response(reader), 10)
                    latencies.append(time.perf_counter() - t0)
                    stats["requests"] += 1
                    stats[kind] += 1
                    want = (404, None) if kind == "missing" else (200, values[key])
                    if status != want[0] or (want[1] is not None and body != want[1]):
                        errors.append(f"connection {c}: {key} -> {status} {body[:100]!r}")
                        return
                    await asyncio.sleep(max(0.0, INTERVAL_S - (time.perf_counter() - t0)))
            except (OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError) as exc:
                errors.append(f"connection {c}: {exc!r}")
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        deadline = time.monotonic() + DURATION_S + 2
        t_start = time.perf_counter()
        tasks = [asyncio.create_task(connection(c)) for c in range(CONNECTIONS)]
        try:
            await asyncio.wait_for(opened.wait(), 15)
            await asyncio.sleep(DURATION_S / 2)
            fds_during = fd_count(eu.pid)
            await asyncio.wait_for(asyncio.gather(*tasks), DURATION_S + 30)
        finally:
            for t in tasks:
                t.cancel()
        elapsed = time.perf_counter() - t_start
        assert not errors, f"{len(errors)} errors:\n" + "\n".join(errors[:20])

        # Once the connections are closed the replica gives its fds back.
        async def fds_back() -> bool:
            return fd_count(eu.pid) <= fds_before + FD_SLACK

        settle = await poll(fds_back, 15, "replica fds back to the baseline", interval=0.1)
        fds_after, threads_after = fd_count(eu.pid), thread_count(eu.pid)
        async with KV(eu.http, account, secret) as ke:
            text = await ke.metrics()
        server_errors = [  # /readyz answers 503 while the replica starts: not part of the soak
            line
            for line in text.splitlines()
            if line.startswith("edgekv_http_requests_total") and 'code="5' in line and "readyz" not in line
        ]
        hits = metric_value(text, "edgekv_cache_requests_total", region="eu", result="hit") or 0
        print(
            f"\nsoak: {stats['requests']} requests over {CONNECTIONS} connections in {elapsed:.1f}s "
            f"({stats['requests'] / elapsed:.0f}/s; {stats}), 0 errors; latency p50 "
            f"{percentile(latencies, 0.5) * 1000:.1f} ms p99 {percentile(latencies, 0.99) * 1000:.1f} ms "
            f"max {max(latencies) * 1000:.0f} ms; cache hits {hits:.0f}; replica fds before {fds_before}, "
            f"during {fds_during}, after {fds_after} ({settle:.1f}s to settle); threads before "
            f"{threads_before}, after {threads_after}"
        )
        assert fds_during >= fds_before + CONNECTIONS, "the 200 connections were not all open at once"
        assert stats["requests"] >= CONNECTIONS * 10, stats
        assert not server_errors, server_errors
        assert fds_after <= fds_before + FD_SLACK
        assert threads_after <= threads_before + THREAD_SLACK
        assert eu.alive
