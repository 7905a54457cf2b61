"""Waiting for what another process does: poll a condition until it holds or a generous
deadline passes, instead of a fixed sleep that a busy 2-core CI machine outlasts.

    await eventually(lambda: token_known(kv), 10, "token at the replica")
    eventually_sync(lambda: http.get(url).status_code == 200, 30, "central ready")
    entry = await reconnected(lambda: client.get(account, ns, "k"), 15)

Deadlines here bound a wait, they assert no latency: a test that asserts a latency says
so with its own bound. `eventually` and `eventually_sync` return the seconds the wait
took (for a test's printout), `reconnected` the call's result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kvcore.errors import Unavailable

T = TypeVar("T")


async def eventually(
    cond: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: str,
    *,
    interval_s: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> float:
    """Await `cond()` until it is true; the seconds it took. An exception in `retry_on`
    (e.g. httpx.HTTPError while a process restarts) counts as false. AssertionError naming
    `what` after `timeout_s`."""
    t0 = time.monotonic()
    while True:
        try:
            if await cond():
                return time.monotonic() - t0
        except retry_on:
            pass
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(interval_s)


def eventually_sync(
    cond: Callable[[], bool],
    timeout_s: float,
    what: str,
    *,
    interval_s: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> float:
    """`eventually` for synchronous tests and fixtures."""
    t0 = time.monotonic()
    while True:
        try:
            if cond():
                return time.monotonic() - t0
        except retry_on:
            pass
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(interval_s)


async def reconnected(call: Callable[[], Awaitable[T]], timeout_s: float = 15.0) -> T:
    """The result of `call()` (a gRPC call through a client made before its server was
    killed or restarted), retried while it fails with Unavailable: the client's channel may
    still be inside gRPC's reconnect backoff (up to 2 s, kvcore.rpc.security), failing
    calls fast until it reconnects. The last Unavailable is raised after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await call()
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
