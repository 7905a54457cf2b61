"""Addresses with port 0 (`--grpc-addr 127.0.0.1:0`, `--http-addr 127.0.0.1:0`,
`--workerd-addr 127.0.0.1:0`): the system picks the ports, and what the processes log
and what a replica announces to central is where they listen, never ":0"."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.cluster import Proc, create_account, stop_all, wait_ready_async
from helpers.eventually import eventually

from edgekv import launch

pytestmark = pytest.mark.timeout(120)


async def logged(proc: Proc, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
    """The first match of `pattern` in `proc`'s log, waiting for it to be written."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(pattern, proc.log())
        if found:
            return found
        assert proc.alive, proc.log()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in the log of {proc.name}:\n{proc.log()}")


async def test_port_zero_is_logged_and_announced_as_the_bound_port(tmp_path: Path) -> None:
    central = Proc(
        "central",
        launch.central_argv(data_dir=tmp_path / "c", grpc_addr="127.0.0.1:0", http_addr="127.0.0.1:0"),
        tmp_path / "central.log",
    ).start()
    replica: Proc | None = None
    try:
        m = await logged(central, r"central: grpc 127\.0\.0\.1:(\d+), http 127\.0\.0\.1:(\d+),")
        grpc_port, http_port = int(m[1]), int(m[2])
        assert 0 not in (grpc_port, http_port) and grpc_port != http_port
        central.http = central_http = f"http://127.0.0.1:{http_port}"
        await wait_ready_async(central_http, proc=central)
        account, secret = await create_account(f"127.0.0.1:{grpc_port}")

        replica = Proc(
            "replica-eu",
            launch.replica_argv(
                region="eu",
                central=f"127.0.0.1:{grpc_port}",
                data_dir=tmp_path / "eu",
                http_addr="127.0.0.1:0",
                workerd_addr="127.0.0.1:0",
            ),
            tmp_path / "eu.log",
        ).start()
        m = await logged(replica, r"replica eu: http 127\.0\.0\.1:(\d+),")
        replica.http = replica_http = f"http://127.0.0.1:{m[1]}"
        assert int(m[1]) not in (0, grpc_port, http_port)
        await wait_ready_async(replica_http, proc=replica)
        workerd_port = int((await logged(replica, r"workerd KV protocol on 127\.0\.0\.1:(\d+)"))[1])
        assert workerd_port not in (0, int(m[1]))
        async with httpx.AsyncClient(timeout=10.0) as http:  # workerd's KV service answers there
            assert (await http.get(f"http://127.0.0.1:{workerd_port}/")).status_code == 401

        rows: dict[str, dict[str, Any]] = {}

        async def announced() -> bool:
            async with httpx.AsyncClient(timeout=10.0) as http:
                r = await http.get(
                    f"{central_http}/ui/api/regions",
                    params={"account_id": account},
                    headers={"authorization": f"Bearer {secret}"},
                )
            assert r.status_code == 200, r.text
            rows.update({row["region"]: row for row in r.json()["result"]["regions"]})
            # Central reached the replica at the URL it announced: its status came back.
            return "eu" in rows and rows["eu"]["status"] is not None

        await eventually(announced, 20, "central to reach the replica at its announced URL")
        assert rows["eu"]["url"] == replica_http
    finally:
        stop_all([p for p in (replica, central) if p is not None])
