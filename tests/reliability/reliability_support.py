"""Shared pieces of the reliability suite: bounded polling, metrics of a process, a
fresh account and namespace known to every replica, the failure-envelope check and
/proc counters of a process. Everything runs against real processes on loopback
(`helpers.cluster`); every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from helpers.cluster import KV, Proc, create_account, metric_value


async def poll(
    cond: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.02
) -> float:
    """Await `cond()` until it holds; the seconds it took (AssertionError after `timeout`)."""
    t0 = time.perf_counter()
    while True:
        try:
            if await cond():
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass  # a process that is (re)starting: try again
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def metric(base: str, name: str, **labels: str) -> float | None:
    async with httpx.AsyncClient(timeout=5) as client:
        text: str = (await client.get(f"{base}/metrics")).text
    value: float | None = metric_value(text, name, **labels)
    return value


async def gauge(p: Proc, name: str, region: str, **labels: str) -> float:
    value = await metric(p.http, name, region=region, **labels)
    assert value is not None, f"{name} not exported by {p.name}"
    return value


async def counter(p: Proc, name: str, region: str, **labels: str) -> float:
    """A counter that is absent until first incremented reads as 0."""
    value = await metric(p.http, name, region=region, **labels)
    return 0.0 if value is None else value


async def committed_seq(central: Proc) -> int:
    return int(await gauge(central, "edgekv_central_committed_seq", "central"))


async def wait_connected(replica: Proc, region: str, timeout: float) -> float:
    async def up() -> bool:
        return await gauge(replica, "edgekv_replication_connected", region) == 1

    return await poll(up, timeout, f"{region}: edgekv_replication_connected 1", interval=0.05)


async def wait_caught_up(central: Proc, replicas: dict[str, Proc], timeout: float) -> None:
    """Every replica has applied (at least) central's committed seq."""
    target = await committed_seq(central)

    async def caught_up() -> bool:
        for region, p in replicas.items():
            if await gauge(p, "edgekv_replication_applied_seq", region) < target:
                return False
        return True

    await poll(caught_up, timeout, f"replicas caught up to seq {target}", interval=0.05)


async def setup(central: Proc, replicas: dict[str, Proc], title: str = "rel") -> tuple[str, str, str]:
    """A fresh write account and namespace, applied (token and namespace) at every replica:
    (account, secret, namespace id)."""
    account, secret = await create_account(central.grpc)
    async with KV(central.http, account, secret) as kc:
        ns = await kc.create_namespace(title)
    await wait_caught_up(central, replicas, 10)
    return account, secret, ns


def assert_envelope(r: httpx.Response, status: int | None = None, code: int | None = None) -> dict[str, Any]:
    """A 4xx (or `status`) with Cloudflare's failure envelope, exactly."""
    what = f"{r.request.method} {str(r.request.url)[:160]} -> {r.status_code} {r.text[:300]!r}"
    if status is not None:
        assert r.status_code == status, what
    else:
        assert 400 <= r.status_code < 500, what
    assert r.headers.get("content-type", "").startswith("application/json"), what
    body: dict[str, Any] = r.json()
    assert set(body) >= {"success", "errors", "messages", "result"}, what
    assert body["success"] is False and body["result"] is None and body["messages"] == [], what
    assert isinstance(body["errors"], list) and body["errors"], what
    for e in body["errors"]:
        assert isinstance(e.get("code"), int) and isinstance(e.get("message"), str) and e["message"], what
    if code is not None:
        assert body["errors"][0]["code"] == code, what
    return body


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line")


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


@dataclass
class WriteLedger:
    """What writers under a fault know of their writes: per key, the last acknowledged
    (200) value, and the values of later writes whose answer was lost (`maybe`: each may
    or may not have committed). A key whose write is acknowledged again is decided by it."""

    acked: dict[str, bytes] = field(default_factory=dict)
    maybe: dict[str, set[bytes]] = field(default_factory=dict)
    acked_count: int = 0
    failed_count: int = 0

    async def put(self, kv: KV, ns: str, key: str, value: bytes) -> bool:
        """PUT through `kv` and record the outcome; whether it was acknowledged."""
        try:
            r: httpx.Response | None = await kv.put(ns, key, value)
        except httpx.HTTPError:
            r = None
        if r is not None and r.status_code == 200:
            self.acked[key] = value
            self.maybe.pop(key, None)
            self.acked_count += 1
            return True
        self.failed_count += 1
        self.maybe.setdefault(key, set()).add(value)
        return False

    def holds(self, key: str, r: httpx.Response) -> bool:
        """Whether a read of `key` shows no acknowledged write lost."""
        return r.status_code == 200 and (
            r.content == self.acked[key] or r.content in self.maybe.get(key, set())
        )
