"""The write stream (Writes.WriteStream) against a real central: many writes per
message, per-write results (a 412 or a 400 fails that write alone), the cluster
secret, C6 for streamed writes (every acknowledged write survives SIGKILL), and a
broken stream failing its waiters with Unavailable, then reopening."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
from helpers.cluster import restart
from helpers.eventually import reconnected

from kvcore.errors import KVError, NamespaceNotFound, PreconditionFailed, Unavailable, ValidationError
from kvcore.model import Condition, WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import CreateNamespaceOp, DeleteOp, PutOp

ACCOUNT = "c" * 32


async def test_many_writes_per_message_each_with_its_own_result(central_factory: Any) -> None:
    central = central_factory()
    async with CentralClient(central.grpc, stream_writes=True) as client:
        ns = (await client.submit(CreateNamespaceOp(ACCOUNT, "stream"))).id
        first = await client.submit(PutOp(ACCOUNT, ns, WriteItem("taken", b"v0")))
        assert first.created and first.seq > 0

        good = [client.submit(PutOp(ACCOUNT, ns, WriteItem(f"k{i}", b"v%d" % i))) for i in range(200)]
        conflict = client.submit(PutOp(ACCOUNT, ns, WriteItem("taken", b"x"), Condition(if_none_match=True)))
        stale = client.submit(
            PutOp(ACCOUNT, ns, WriteItem("taken", b"x"), Condition(if_match=first.seq + 10**6))
        )
        too_big_key = client.submit(PutOp(ACCOUNT, ns, WriteItem("k" * 600, b"x")))
        other_ns = client.submit(PutOp(ACCOUNT, "f" * 32, WriteItem("k", b"x")))
        sent_before = client.stream_batches_sent
        results = await asyncio.gather(*good, conflict, stale, too_big_key, other_ns, return_exceptions=True)
        batches = client.stream_batches_sent - sent_before

        ok, errors = results[:200], results[200:]
        assert all(not isinstance(r, BaseException) and r.created for r in ok), ok[:3]
        assert len({r.seq for r in ok if not isinstance(r, BaseException)}) == 200  # one version each
        assert isinstance(errors[0], PreconditionFailed) and errors[0].http_status == 412
        assert isinstance(errors[1], PreconditionFailed)
        assert isinstance(errors[2], ValidationError) and errors[2].http_status == 400
        assert isinstance(errors[3], NamespaceNotFound)
        assert batches < 50, f"{batches} messages for 204 concurrent writes: not batched"

        # The failures changed nothing; the successes are all there.
        taken = (await client.get(ACCOUNT, ns, "taken"))[0]
        assert taken is not None and taken.value == b"v0"
        entries = await client.bulk_get(ACCOUNT, ns, [f"k{i}" for i in range(100)])
        assert [e.value if e else None for e in entries] == [b"v%d" % i for i in range(100)]

        # Metadata and expiration travel too (written into the message in place).
        exp = int(time.time()) + 3600
        await client.submit(
            PutOp(ACCOUNT, ns, WriteItem("meta", b"m", metadata_json='{"a":1}', expiration=exp))
        )
        meta = (await client.get(ACCOUNT, ns, "meta"))[0]
        assert meta is not None and (meta.value, meta.metadata_json, meta.expiration) == (
            b"m",
            '{"a":1}',
            exp,
        )
        # An expiration already past fails that write alone, as the unary Put does.
        with pytest.raises(ValidationError):
            await client.submit(PutOp(ACCOUNT, ns, WriteItem("past", b"x", expiration=int(time.time()) - 5)))

        deleted = await client.submit(DeleteOp(ACCOUNT, ns, "taken", Condition(if_match=first.seq)))
        assert deleted.seq > first.seq
        assert (await client.get(ACCOUNT, ns, "taken"))[0] is None
        with pytest.raises(PreconditionFailed):
            await client.submit(DeleteOp(ACCOUNT, ns, "k1", Condition(if_match=1)))
        assert (await client.submit(DeleteOp(ACCOUNT, ns, "never-there"))).seq == 0


async def test_stream_needs_the_cluster_secret(central_factory: Any) -> None:
    central = central_factory(extra=("--cluster-secret", "s3cret-s3cret"))
    async with CentralClient(central.grpc, cluster_secret="s3cret-s3cret", stream_writes=True) as ok:
        ns = (await ok.submit(CreateNamespaceOp(ACCOUNT, "secret"))).id
        assert (await ok.submit(PutOp(ACCOUNT, ns, WriteItem("a", b"1")))).created
    async with CentralClient(central.grpc, cluster_secret="wrong", stream_writes=True) as wrong:
        with pytest.raises(Unavailable):
            await asyncio.wait_for(wrong.submit(PutOp(ACCOUNT, ns, WriteItem("b", b"1"))), 10)


async def test_streamed_acknowledged_writes_survive_sigkill(central_factory: Any) -> None:
    """C6 through the stream: acknowledged means durable, with writes in flight at the kill;
    the waiters of the dead stream fail (Unavailable), and after a restart the same
    client opens a new stream."""
    central = central_factory(propagation_delay=0)
    acked: dict[str, bytes] = {}
    failed: list[KVError] = []
    async with CentralClient(central.grpc, timeout_s=5, stream_writes=True) as client:
        ns = (await client.submit(CreateNamespaceOp(ACCOUNT, "durable"))).id
        stop = time.monotonic() + 20.0  # a bound only: the kill below ends the writers

        async def writer(w: int) -> None:
            i = 0
            while time.monotonic() < stop:
                key, value = f"w{w}-{i}", f"value-{w}-{i}".encode()
                try:
                    await asyncio.wait_for(client.submit(PutOp(ACCOUNT, ns, WriteItem(key, value))), 10)
                except KVError as exc:
                    failed.append(exc)
                    return  # central died under us: this write was never acknowledged
                acked[key] = value
                i += 1

        writers = [asyncio.create_task(writer(w)) for w in range(32)]
        # Kill once the load has clearly run, with every writer still writing (not after a
        # fixed time: on a busy machine the writers could stop before the kill, none in flight).
        deadline = time.monotonic() + 15.0
        while len(acked) < 300 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        central.kill9()
        await asyncio.gather(*writers)
        assert len(acked) > 100, "the load did not run"
        assert failed and all(isinstance(e, Unavailable) for e in failed)

        restarted = restart(central)
        # The old channel may still be inside gRPC's reconnect backoff: reads retry until
        # it has reconnected.
        await reconnected(lambda: client.get(ACCOUNT, ns, "w0-0"))
        missing = []
        keys = list(acked)
        for start in range(0, len(keys), 100):
            chunk = keys[start : start + 100]
            for key, entry in zip(chunk, await client.bulk_get(ACCOUNT, ns, chunk), strict=True):
                if entry is None or entry.value != acked[key]:
                    missing.append(key)
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost"
        again = await asyncio.wait_for(client.submit(PutOp(ACCOUNT, ns, WriteItem("after", b"1"))), 10)
        assert again.created
    assert restarted.alive


async def test_a_streamed_write_fails_within_its_deadline_when_central_hangs(central_factory: Any) -> None:
    """A hung central (SIGSTOP: the connection stays open, nothing answers) fails a
    streamed write with Unavailable once its own deadline passes, as a unary call's
    gRPC deadline would; after SIGCONT the stream carries writes again."""
    central = central_factory()
    async with CentralClient(central.grpc, stream_writes=True) as client:
        ns = (await client.submit(CreateNamespaceOp(ACCOUNT, "hung"))).id
        assert (await client.submit(PutOp(ACCOUNT, ns, WriteItem("before", b"1")))).created
        os.kill(central.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            writes = [
                client.submit(PutOp(ACCOUNT, ns, WriteItem(f"k{i}", b"x")), timeout_s=1.0) for i in range(40)
            ]
            results = await asyncio.wait_for(asyncio.gather(*writes, return_exceptions=True), 30)
            waited_s = time.monotonic() - t0
            assert all(isinstance(r, Unavailable) and "in time" in r.message for r in results), results[:2]
            # 1 s deadline, checked every 0.1 s; generous on top for a loaded machine.
            assert 0.9 <= waited_s < 5.0, waited_s
        finally:
            os.kill(central.pid, signal.SIGCONT)
        after = await asyncio.wait_for(client.submit(PutOp(ACCOUNT, ns, WriteItem("after", b"1"))), 30)
        assert after.seq > 0
        # Told they failed, they did not commit later: each carried its deadline, and
        # central withdrew them when it woke past it (as a unary call's would be).
        late = await client.bulk_get(ACCOUNT, ns, [f"k{i}" for i in range(40)])
        assert late == [None] * 40, f"{sum(e is not None for e in late)} of 40 timed-out writes committed"


async def test_a_closed_client_fails_streamed_writes_as_unavailable(central_factory: Any) -> None:
    central = central_factory()
    client = CentralClient(central.grpc)
    ns = (await client.submit(CreateNamespaceOp(ACCOUNT, "closing"))).id
    pending = asyncio.ensure_future(client.submit(PutOp(ACCOUNT, ns, WriteItem("racing", b"1"))))
    await client.close()  # in the same iteration as the write that opens the stream
    with pytest.raises(Unavailable):
        await pending
    with pytest.raises(Unavailable, match="closed"):
        await client.submit(PutOp(ACCOUNT, ns, WriteItem("after", b"1")))
