"""Operational promises end to end: bootstrap from the environment, the size threshold
of values pushed on the stream, a 25 MiB value through a replica, and C7's last
clause (a replica whose resume point fell out of central's log drops its cache)."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from pathlib import Path

from helpers.cluster import (
    KV,
    Proc,
    etag,
    start_central,
    start_replica,
    stop_all,
    wait_ready_async,
    wait_token_known,
)
from helpers.proxy import TcpProxy

from kvcore.model import ChangeBatch, Permission, WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import CreateNamespaceOp, PutOp


async def test_bootstrap_account_and_token_from_environment(tmp_path: Path) -> None:
    account, token = secrets.token_hex(16), "boot-" + secrets.token_urlsafe(24)
    env = {"EDGEKV_BOOTSTRAP_ACCOUNT": account, "EDGEKV_BOOTSTRAP_TOKEN": token}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        central = start_central(tmp_path)
        try:
            async with KV(central.http, account, token) as kv:
                ns = await kv.create_namespace("boot")
                assert (await kv.put(ns, "k", b"v")).status_code == 200
            # Restarting with the same environment creates nothing new.
            central.stop()
            central.start()
            await wait_ready_async(central.http, proc=central)
            async with CentralClient(central.grpc) as client:
                assert len(await client.list_tokens(account)) == 1
        finally:
            central.stop()
        # The same secret claimed for another account is refused at start.
        os.environ["EDGEKV_BOOTSTRAP_ACCOUNT"] = "f" * 32
        proc = subprocess.run(list(central.args), capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode != 0 and "another account" in (proc.stdout + proc.stderr)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def test_push_value_threshold(tmp_path: Path) -> None:
    central = start_central(tmp_path, propagation_delay=0, extra=("--push-value-max-bytes", "1KiB"))
    try:
        async with CentralClient(central.grpc) as client:
            ns = await client.submit(CreateNamespaceOp("a" * 32, "push"))
            start = (await client.submit(PutOp("a" * 32, ns.id, WriteItem(key="first", value=b"x")))).seq
            got: list[ChangeBatch] = []

            async def follow() -> None:
                async for batch in client.subscribe("r", start):
                    got.append(batch)

            task = asyncio.create_task(follow())
            small = await client.submit(PutOp("a" * 32, ns.id, WriteItem(key="small", value=b"s" * 1024)))
            big = await client.submit(PutOp("a" * 32, ns.id, WriteItem(key="big", value=b"b" * 1025)))
            deadline = time.monotonic() + 20  # ends when the change arrives; generous when busy
            while time.monotonic() < deadline and not any(c.seq == big.seq for b in got for c in b.changes):
                await asyncio.sleep(0.01)
            task.cancel()
            changes = {c.seq: c for b in got for c in b.changes}
            assert changes[small.seq].has_value and changes[small.seq].value == b"s" * 1024
            assert not changes[big.seq].has_value, "a create over the threshold travels as an invalidation"
    finally:
        central.stop()


async def test_25_mib_value_through_a_replica(tmp_path: Path) -> None:
    central = start_central(tmp_path, propagation_delay=0)
    replica = start_replica(tmp_path, central.grpc, "eu")
    try:
        async with CentralClient(central.grpc) as client:
            account = "e" * 32
            _, token = await client.create_token(account, Permission.WRITE)
        await wait_token_known(replica.http, account, token)
        value = os.urandom(25 * 1024 * 1024)
        async with KV(replica.http, account, token, timeout=60) as kv:
            ns = await kv.create_namespace("big")
            put = await kv.put(ns, "big", value)
            assert put.status_code == 200, put.text
            for strong in (False, True):
                r = await kv.get(ns, "big", strong=strong)
                assert r.status_code == 200 and r.content == value
            too_big = await kv.put(ns, "bigger", value + b"x")
            assert too_big.status_code == 413 and too_big.json()["success"] is False
    finally:
        stop_all([replica, central])


async def test_replica_drops_its_cache_when_its_log_position_is_gone(tmp_path: Path) -> None:
    """C7, last clause: cut off while central trims past its resume point, the replica
    is reset on reconnect and serves the new value, not its stale cached one."""
    central = start_central(tmp_path, propagation_delay=60, extra=("--log-retention", "10"))
    proxy = TcpProxy(int(central.grpc.rsplit(":", 1)[1]))
    await proxy.start()
    replica: Proc | None = None
    try:
        replica = start_replica(tmp_path, proxy.addr, "eu", wait=False)
        await wait_ready_async(replica.http, proc=replica)
        async with CentralClient(central.grpc) as client:
            account = "f" * 32
            _, token = await client.create_token(account, Permission.WRITE)
        await wait_token_known(replica.http, account, token)
        async with KV(replica.http, account, token) as kv, KV(central.http, account, token) as direct:
            ns = await kv.create_namespace("trim")
            assert (await kv.put(ns, "k", b"old")).status_code == 200
            for _ in range(3):
                r = await kv.get(ns, "k")
            assert r.headers["x-edgekv-source"] == "cache" and r.content == b"old"

            await proxy.cut()
            # While it is cut off: an update (held 60 s at central) and enough other
            # writes that central's log no longer reaches back to the replica's position.
            assert (await direct.put(ns, "k", b"new")).status_code == 200
            for i in range(30):
                await direct.put(ns, f"filler{i}", b"x")
            assert (await kv.get(ns, "k")).content == b"old"  # C7: keeps serving what it has
            await asyncio.sleep(1.5)  # central trims its log in the background
            proxy.restore()

            deadline = time.monotonic() + 15
            while True:
                r = await kv.get(ns, "k")
                if r.status_code == 200 and r.content == b"new":
                    break
                assert time.monotonic() < deadline, "the replica kept serving a stale value after a reset"
                await asyncio.sleep(0.1)
            assert etag(r) > 0
            assert "reset the stream" in replica.log()
    finally:
        if replica is not None:
            replica.stop()
        await proxy.close()
        central.stop()
