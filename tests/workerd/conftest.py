"""A real workerd bound to a real replica's workerd listener, shared by a test module.

Central (propagation delay 2 s) and replica `eu` with `--workerd-addr`; one account with
a write and a read token; a namespace; workerd running `kv_probe.js` with bindings:
`KV` (write token), `RO` (read token), `BAD` (an unknown token), `ELSEWHERE` (another
account's namespace).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers.cluster import create_account, free_port, running, start_central, start_replica
from helpers.workerd import Bound, start_workerd

from kvcore.model import Permission
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import CreateNamespaceOp
from kvcore.workerd.config import KvBinding, WorkerSpec

PROBE = Path(__file__).with_name("kv_probe.js")
PROPAGATION_DELAY_S = 2.0


async def _setup(central_grpc: str) -> tuple[str, str, str, str, str]:
    account, secret = await create_account(central_grpc)
    other, _ = await create_account(central_grpc)
    async with CentralClient(central_grpc) as client:
        _, read_secret = await client.create_token(account, Permission.READ)
        ns = await client.submit(CreateNamespaceOp(account, "workers"))
        elsewhere = await client.submit(CreateNamespaceOp(other, "not-yours"))
    return account, secret, read_secret, ns.id, elsewhere.id


@pytest.fixture(scope="module")
def bound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bound]:
    tmp = tmp_path_factory.mktemp("workerd")
    workerd_addr = f"127.0.0.1:{free_port()}"
    with running() as procs:
        central = start_central(tmp, propagation_delay=PROPAGATION_DELAY_S)
        procs.append(central)
        replica = start_replica(tmp, central.grpc, "eu", extra=["--workerd-addr", workerd_addr])
        procs.append(replica)
        account, secret, read_secret, ns, elsewhere = asyncio.run(_setup(central.grpc))
        listen = f"127.0.0.1:{free_port()}"
        kv = [
            KvBinding("KV", workerd_addr, secret, ns),
            KvBinding("RO", workerd_addr, read_secret, ns),
            KvBinding("BAD", workerd_addr, "not-a-token-of-anyone", ns),
            KvBinding("ELSEWHERE", workerd_addr, secret, elsewhere),
        ]
        workerd = start_workerd(tmp, [WorkerSpec("probe", PROBE, listen, kv=kv)])
        procs.append(workerd)
        with httpx.Client(timeout=30) as http:
            b = Bound(central, replica, workerd, f"http://{listen}/", account, secret, ns, http, read_secret)
            deadline = time.monotonic() + 10
            while "error" in b.call("get", "warm-up") and time.monotonic() < deadline:
                time.sleep(0.05)  # the tokens reach the replica on the change stream
            yield b
