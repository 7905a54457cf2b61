"""Expiration bounds (issue 11) through real processes: REST at a replica (raw, multipart,
bulk), central's gRPC KV service, the `edgekv kv` CLI and the Python binding.

The processes read the system clock, so the exact low edge `floor(now) + 60` is sent
right after a second starts and judged only when the answer came back within that same
second (otherwise it is tried again); tests/kvcore/test_expiration_bounds.py holds the
edges exactly with an injected clock.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from helpers.cluster import KV, create_account, start_central, start_replica, stop_all

from kvcore.client import KVNamespace
from kvcore.errors import ValidationError
from kvcore.model import WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import BulkPutOp, PutOp

MAX = 2**31 - 1


async def _at_second_start(send: Callable[[int], Awaitable[httpx.Response]]) -> httpx.Response:
    """`send(floor(now))` early in a second, repeated until it completes within that second."""
    for _ in range(10):
        time.sleep(1.02 - (time.time() % 1.0))  # just after a second boundary
        start = time.time()
        r = await send(math.floor(start))
        if math.floor(time.time()) == math.floor(start):
            return r
    raise AssertionError("no request completed within one second in 10 tries")


async def test_bounds_on_every_write_path(tmp_path: Path) -> None:
    central = start_central(tmp_path)
    replica = start_replica(tmp_path, central.grpc, "eu")
    try:
        account, secret = await create_account(central.grpc, known_at=[replica.http])
        async with KV(replica.http, account, secret) as kv:
            ns = await kv.create_namespace("bounds")
            values = f"{kv.root}/{ns}/values"

            async def raw(now_s: int) -> httpx.Response:
                return await kv.put(ns, "raw", b"v", expiration=now_s + 60)

            async def multipart(now_s: int) -> httpx.Response:
                files = {"value": ("value", b"v"), "metadata": (None, "{}", "application/json")}
                return await kv.http.put(f"{values}/mp", files=files, params={"expiration": now_s + 60})

            async def bulk(now_s: int) -> httpx.Response:
                body = [{"key": "bulk", "value": "v", "expiration": now_s + 60}]
                return await kv.http.put(f"{kv.root}/{ns}/bulk", json=body)

            for send in (raw, multipart, bulk):
                r = await _at_second_start(send)
                assert r.status_code == 200, (send.__name__, r.text)
            assert (await kv.put(ns, "ttl", b"v", expiration_ttl=60)).status_code == 200

            now_ms = int(time.time() * 1000)
            for params, words in (
                ({"expiration": now_ms}, "milliseconds"),
                ({"expiration": MAX + 1}, "milliseconds"),
                ({"expiration_ttl": 1099511627776}, "milliseconds"),
                ({"expiration_ttl": 59}, "at least 60"),
                ({"expiration": int(time.time()) + 30}, "at least 60 seconds"),
            ):
                for r in (
                    await kv.put(ns, "bad", b"v", **params),
                    await kv.http.put(f"{values}/bad", files={"value": ("value", b"v")}, params=params),
                    await kv.http.put(f"{kv.root}/{ns}/bulk", json=[{"key": "bad", "value": "v", **params}]),
                ):
                    assert r.status_code == 400 and words in r.json()["errors"][0]["message"], r.text
            assert (await kv.get(ns, "bad", strong=True)).status_code == 404

        # gRPC: an absolute expiration, as a replica forwards it: bounds and "in the future".
        async with CentralClient(central.grpc) as grpc_client:
            ok = await grpc_client.submit(
                PutOp(account, ns, WriteItem("g", b"v", expiration=int(time.time()) + 30))
            )
            assert ok.seq > 0
            for exp, words in ((now_ms, "milliseconds"), (MAX + 1, "milliseconds"), (1000, "greater than")):
                with pytest.raises(ValidationError, match=words):
                    await grpc_client.submit(PutOp(account, ns, WriteItem("g2", b"v", expiration=exp)))
                with pytest.raises(ValidationError, match=words):
                    await grpc_client.submit(BulkPutOp(account, ns, [WriteItem("g3", b"v", expiration=exp)]))

        # The binding and the CLI refuse before sending, with the server's message.
        with KVNamespace(replica.http, account, ns, secret) as binding:
            with pytest.raises(ValidationError, match="milliseconds"):
                binding.put("b", "v", expiration=now_ms)
            binding.put("b", "v", expiration_ttl=60)
        env = {"EDGEKV_ENDPOINT": replica.http, "EDGEKV_ACCOUNT_ID": account, "EDGEKV_API_TOKEN": secret}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "edgekv", "kv", *args, "--namespace-id", ns],
                env={**_env(), **env},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        p = cli("key", "put", "c", "v", "--expiration", str(now_ms))
        assert p.returncode == 1 and "milliseconds" in p.stderr, p.stderr
        p = cli("key", "put", "c", "v", "--ttl", "59")
        assert p.returncode == 1 and "at least 60" in p.stderr, p.stderr
        assert cli("key", "put", "c", "v", "--ttl", "60").returncode == 0
        bulk_file = tmp_path / "bulk.json"
        bulk_file.write_text(
            json.dumps([{"key": "ok", "value": "v"}, {"key": "x", "value": "v", "expiration": now_ms}])
        )
        p = cli("bulk", "put", str(bulk_file))
        assert p.returncode == 2 and "item 1" in p.stderr and "milliseconds" in p.stderr, p.stderr
        r = httpx.get(
            f"{central.http}/client/v4/accounts/{account}/storage/kv/namespaces/{ns}/values/ok",
            headers={"authorization": f"Bearer {secret}"},
        )
        assert r.status_code == 404  # the file failed whole: nothing was sent
    finally:
        stop_all([replica, central])


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
