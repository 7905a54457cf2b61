"""A bad write is refused where it enters, with the same field and message on every path:
REST at central, REST at a replica (which forwards the operation to central), and
central's gRPC (unary and the write stream), with nothing written. Real processes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.cluster import Proc, create_account, start_central, start_replica, stop_all, wait_ready

from kvcore.errors import KVError, PayloadTooLarge, ValidationError
from kvcore.model import WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import (
    BulkDeleteOp,
    BulkPutOp,
    CreateNamespaceOp,
    DeleteOp,
    PutOp,
    RenameNamespaceOp,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

BAD_KEYS = ["k" * 513, "..", "é" * 257]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, Proc, str, str, str]]:
    tmp: Path = tmp_path_factory.mktemp("writeval")
    central = start_central(tmp, propagation_delay=1.0)
    procs = [central]
    try:
        replica = start_replica(tmp, central.grpc, "eu")
        procs.append(replica)
        account, secret = asyncio.run(create_account(central.grpc))
        root = f"{central.http}/client/v4/accounts/{account}/storage/kv/namespaces"
        r = httpx.post(root, json={"title": "v"}, headers={"authorization": f"Bearer {secret}"})
        r.raise_for_status()
        wait_ready(replica.http, proc=replica)
        yield central, replica, account, secret, r.json()["result"]["id"]
    finally:
        stop_all(list(reversed(procs)))


async def _grpc_error(call: Awaitable[Any]) -> tuple[int, str]:
    with pytest.raises(KVError) as info:
        await call
    return info.value.code, info.value.message


def _rest_error(r: httpx.Response) -> tuple[int, str]:
    assert r.status_code >= 400, r.text
    [error] = r.json()["errors"]
    return error["code"], error["message"]


async def test_the_same_bad_key_is_refused_alike_on_every_path(
    cluster: tuple[Proc, Proc, str, str, str],
) -> None:
    central, replica, account, secret, ns = cluster
    h = {"authorization": f"Bearer {secret}"}
    async with (
        httpx.AsyncClient(timeout=30, headers=h) as http,
        CentralClient(central.grpc, stream_writes=False) as unary,
        CentralClient(central.grpc) as streamed,
    ):
        seq = (await unary.get(account, ns, "nothing"))[1]
        for key in BAD_KEYS:
            answers = {}
            for name, proc in (("central", central), ("replica", replica)):
                url = f"{proc.http}/client/v4/accounts/{account}/storage/kv/namespaces/{ns}/values/"
                url += "".join(f"%{b:02X}" for b in key.encode())  # dots too: never a path step
                answers[f"rest-{name}-put"] = _rest_error(await http.put(url, content=b"v"))
                answers[f"rest-{name}-delete"] = _rest_error(await http.delete(url))
            for name, client in (("grpc", unary), ("stream", streamed)):
                put, delete = PutOp(account, ns, WriteItem(key, b"v")), DeleteOp(account, ns, key)
                answers[f"{name}-put"] = await _grpc_error(client.submit(put))
                answers[f"{name}-delete"] = await _grpc_error(client.submit(delete))
            assert len(set(answers.values())) == 1, answers
            code, message = answers["grpc-put"]
            assert code == 10001 and message.startswith(("key_name: ", "UTF-8 encoded length")), message

            # In a bulk, the item's position names it, alike over REST and gRPC.
            items = [WriteItem("fine", b"v"), WriteItem(key, b"v")]
            bulk = [{"key": i.key, "value": "v"} for i in items]
            bulk_answers = {
                "grpc": await _grpc_error(unary.submit(BulkPutOp(account, ns, items))),
                "grpc-delete": await _grpc_error(unary.submit(BulkDeleteOp(account, ns, ["fine", key]))),
            }
            for name, proc in (("central", central), ("replica", replica)):
                base = f"{proc.http}/client/v4/accounts/{account}/storage/kv/namespaces/{ns}/bulk"
                bulk_answers[name] = _rest_error(await http.put(base, json=bulk))
                r = await http.post(f"{base}/delete", json=["fine", key])
                bulk_answers[f"{name}-delete"] = _rest_error(r)
            assert bulk_answers["grpc"] == bulk_answers["central"] == bulk_answers["replica"], bulk_answers
            assert bulk_answers["grpc"][1].startswith("[1].key: "), bulk_answers
            deletes = {bulk_answers[k] for k in ("grpc-delete", "central-delete", "replica-delete")}
            assert len(deletes) == 1 and next(iter(deletes))[1].startswith("body[1]: "), bulk_answers

        # Nothing of any of them was written.
        assert (await unary.get(account, ns, "fine"))[1] == seq


async def test_grpc_refuses_what_the_store_no_longer_checks(
    cluster: tuple[Proc, Proc, str, str, str],
) -> None:
    """The checks the store used to repeat, now made once at central's gRPC edge."""
    central, _, account, _, ns = cluster
    async with CentralClient(central.grpc) as client:
        seq = (await client.get(account, ns, "nothing"))[1]
        items = [WriteItem(f"k{i}", b"v") for i in range(10)] + [WriteItem("x" * 513, b"v")]
        with pytest.raises(ValidationError, match=r"^\[10\]\.key: "):
            await client.submit(BulkPutOp(account, ns, items))
        with pytest.raises(PayloadTooLarge, match=r"^\[1\]\.metadata: "):
            await client.submit(
                BulkPutOp(account, ns, [WriteItem("a", b"v"), WriteItem("b", b"v", "x" * 1100)])
            )
        with pytest.raises(ValidationError, match=r"^key_name: must not be empty"):
            await client.submit(PutOp(account, ns, WriteItem("", b"v")))
        with pytest.raises(ValidationError, match=r"^title: "):
            await client.submit(CreateNamespaceOp(account, "   "))
        with pytest.raises(ValidationError, match=r"^title: "):
            await client.submit(RenameNamespaceOp(account, ns, ""))
        with pytest.raises(ValidationError, match=r"^account_id: "):
            await client.submit(CreateNamespaceOp("bad\x00acct", "t"))
        assert (await client.get(account, ns, "nothing"))[1] == seq
        assert (await client.list_keys(account, ns, "", 10, "")).keys == []
