"""Failover between centrals (issue 14, part 4), with real processes on loopback.

`--central A,B`: a replica (and `CentralClient`, which `edgekv token` uses) uses the
first address that works and moves on when it fails. Here the second "central" is the
same RocksDB store served again on another port after a kill -9 of the first, which is
what a replica sees when one of several centrals on a shared store dies: the log it
resumes from is the same, so it must resume without a reset.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from helpers.cluster import EDGEKV, KV, create_account, running, start_central, start_replica
from reliability_support import gauge, poll, wait_connected

from edgekv.dev import free_port
from kvcore.errors import Unavailable
from kvcore.model import Condition, Permission, WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.rpc.failover import CentralAddresses
from kvcore.settings import SettingsError, check_addr_list
from kvcore.store.ops import CreateNamespaceOp, PutOp


def test_address_list_is_validated() -> None:
    assert check_addr_list("127.0.0.1:1, 127.0.0.1:2", "--central") == ["127.0.0.1:1", "127.0.0.1:2"]
    for bad in ("", " , ", "127.0.0.1:1,nope", "127.0.0.1:1,127.0.0.1:1"):
        with pytest.raises(SettingsError, match="--central"):
            check_addr_list(bad, "--central")


def test_rotation_moves_once_per_failure_in_order() -> None:
    addrs = CentralAddresses(["a:1", "b:2", "c:3"])
    assert addrs.current == "a:1"
    assert addrs.failed(0) and addrs.current == "b:2"
    assert not addrs.failed(0), "a second report of the same failure moved the rotation again"
    assert addrs.failed(1) and addrs.failed(2) and addrs.current == "a:1"
    assert addrs.switches == 3
    single = CentralAddresses(["a:1"])
    assert not single.failed(0) and single.current == "a:1"


async def test_client_skips_a_dead_central_for_reads_writes_and_tokens(tmp_path: Path) -> None:
    central = start_central(tmp_path)
    dead = f"127.0.0.1:{free_port()}"
    with running(central):
        async with CentralClient(f"{dead},{central.grpc}", timeout_s=5) as client:
            # A write to a refused port never left: it is retried on the next central.
            token, _ = await client.create_token("a" * 32, Permission.WRITE)
            ns = await client.submit(CreateNamespaceOp("a" * 32, "failover"))
            put = await client.submit(PutOp("a" * 32, ns.id, WriteItem(key="k", value=b"v"), Condition()))
            entry, _ = await client.get("a" * 32, ns.id, "k")
            assert entry is not None and entry.value == b"v" and entry.version == put.seq
            assert token.id in {t.id for t in await client.list_tokens("a" * 32)}
            async for batch in client.subscribe("eu", 0):
                assert batch.committed_seq >= put.seq
                break
        # Only dead addresses: the caller gets Unavailable (a 503 at a replica), not a hang.
        async with CentralClient(f"{dead},127.0.0.1:{free_port()}", timeout_s=2) as client:
            t0 = time.monotonic()
            with pytest.raises(Unavailable):
                await client.get("a" * 32, ns.id, "k")
            assert time.monotonic() - t0 < 4


async def test_replica_fails_over_after_central_kill9_without_reset(tmp_path: Path) -> None:
    """kill -9 of the replica's central under writes through the replica; the store comes
    back at the second address: the replica switches, resumes from its seq, loses nothing."""
    first = start_central(tmp_path, propagation_delay=0.5)
    second_grpc_port = free_port()
    second_addr = f"127.0.0.1:{second_grpc_port}"
    with running(first) as procs:
        replica = start_replica(tmp_path, f"{first.grpc},{second_addr}", "eu")
        procs.append(replica)
        account, secret = await create_account(first.grpc, known_at=[replica.http])
        async with KV(replica.http, account, secret, timeout=10) as kv:
            ns = await kv.create_namespace("failover")
            acked: dict[str, bytes] = {}
            counts = {"acked": 0, "failed": 0}
            stop = asyncio.Event()

            async def writer(w: int) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    key, value = f"w{w}-{n % 20}", f"w{w}:{n}".encode()
                    try:
                        r = await kv.put(ns, key, value)
                    except httpx.HTTPError:
                        r = None
                    if r is not None and r.status_code == 200:
                        acked[key] = value
                        counts["acked"] += 1
                    else:
                        counts["failed"] += 1
                        acked.pop(key, None)  # the outcome of this key is now unknown
                        await asyncio.sleep(0.05)

            tasks = [asyncio.create_task(writer(w)) for w in range(4)]
            await poll(lambda: _at_least(counts, 40), 20, "40 acknowledged writes")
            seq_before = await gauge(replica, "edgekv_replication_applied_seq", "eu")
            mark = len(replica.log())
            first.kill9()
            killed_at = time.monotonic()
            second = start_central(tmp_path, propagation_delay=0.5, grpc_port=second_grpc_port)
            procs.append(second)
            await wait_connected(replica, "eu", 10)
            switched_s = time.monotonic() - killed_at
            acked_at_switch = counts["acked"]
            await poll(lambda: _at_least(counts, acked_at_switch + 40), 20, "writes after the switch")
            stop.set()
            await asyncio.gather(*tasks)

            since = replica.log()[mark:]
            print(f"\nreplica switched {switched_s:.2f}s after the kill; {counts['failed']} failed writes")
            assert f"switching to {second_addr}" in since, since[-3000:]
            assert "reset=True" not in since and "reset the stream" not in since, since[-3000:]
            assert await gauge(replica, "edgekv_replication_applied_seq", "eu") > seq_before
            assert switched_s < 10
            for key, value in acked.items():
                r = await kv.get(ns, key, strong=True)
                assert (r.status_code, r.content) == (200, value), key


async def _at_least(counts: dict[str, int], n: int) -> bool:
    return counts["acked"] >= n


def test_token_command_takes_the_same_list(tmp_path: Path) -> None:
    central = start_central(tmp_path)
    dead = f"127.0.0.1:{free_port()}"
    with running(central):
        made = subprocess.run(
            [*EDGEKV, "token", "create", "--central", f"{dead},{central.grpc}", "--account", "b" * 32,
             "--json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        token_id = json.loads(made.stdout)["id"]
        listed = subprocess.run(
            [*EDGEKV, "token", "list", "--central", f"{central.grpc},{dead}", "--json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert listed.returncode == 0 and token_id in {t["id"] for t in json.loads(listed.stdout)}
        bad = subprocess.run(
            [*EDGEKV, "token", "list", "--central", f"{central.grpc},nope"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode == 2 and "--central" in bad.stderr


def test_dev_gives_each_replica_every_central_round_robin_first() -> None:
    from edgekv.dev import _rotated

    assert [_rotated(["a:1", "b:2"], i) for i in range(3)] == ["a:1,b:2", "b:2,a:1", "a:1,b:2"]
    assert _rotated(["a:1"], 5) == "a:1"


def test_only_a_call_that_never_reached_central_counts_as_not_sent() -> None:
    from grpc import StatusCode
    from grpc.aio import AioRpcError, Metadata

    from kvcore.rpc.errors import CODE_KEY
    from kvcore.rpc.failover import _never_sent

    refused = "failed to connect to all addresses; last error: UNAVAILABLE: Connection refused"
    assert _never_sent(AioRpcError(StatusCode.UNAVAILABLE, Metadata(), Metadata(), refused))
    assert not _never_sent(AioRpcError(StatusCode.UNAVAILABLE, Metadata(), Metadata(), "Socket closed"))
    # Central's own 503 (its database refused it) came from central: the write may be in.
    answered = AioRpcError(StatusCode.UNAVAILABLE, Metadata(), Metadata((CODE_KEY, "10043")), refused)
    assert not _never_sent(answered)
