"""Real `edgekv` processes for end-to-end tests: central and replicas on free loopback
ports with temp data dirs.

    c = start_central(tmp_path, propagation_delay=2)
    eu = start_replica(tmp_path, c.grpc, "eu")
    account, secret = await create_account(c.grpc)
    kv = KV(eu.http, account, secret)
    ...
    stop_all([eu, c])   # in a `finally` (or use the `Procs` context manager)

The processes themselves (`Proc`, argv, free ports, readiness, stopping by pid: SIGTERM,
then SIGKILL after a timeout) are `edgekv.launch`'s, the launcher `edgekv dev` uses;
this module adds what tests need on top. pytest puts `tests/` on sys.path (pyproject
`pythonpath`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from edgekv import launch
from edgekv.launch import EDGEKV, free_port, stop_all
from edgekv.launch import Process as Proc
from helpers.eventually import eventually
from kvcore.model import Permission
from kvcore.rpc.client import CentralClient

__all__ = [
    "EDGEKV", "KV", "Proc", "create_account", "etag", "free_port", "metric_value", "restart", "running",
    "start_central", "start_dev", "start_replica", "stop_all", "wait_ready", "wait_ready_async",
    "wait_token_known",
]  # fmt: skip


def wait_ready(url: str, timeout: float = 30.0, proc: Proc | None = None) -> None:
    """Poll `url`/readyz until it answers 200 (raises with the process log otherwise)."""
    launch.wait_ready([proc or _server_at(url)], timeout)


async def wait_ready_async(url: str, timeout: float = 30.0, proc: Proc | None = None) -> None:
    """`wait_ready` for async tests: keeps the event loop running (e.g. a `TcpProxy`)."""
    await launch.wait_ready_async([proc or _server_at(url)], timeout)


def _server_at(url: str) -> Proc:
    """A server at `url` that we did not start (nothing to watch but its answers)."""
    return Proc(url, [], Path(os.devnull), url)


def _started(p: Proc, wait: bool) -> Proc:
    p.start()
    if wait:
        try:
            launch.wait_ready([p])
        except BaseException:
            p.stop()
            raise
    return p


def start_central(
    tmp: Path,
    *,
    propagation_delay: float = 60.0,
    extra: Sequence[str] = (),
    grpc_port: int = 0,
    http_port: int = 0,
    name: str = "central",
    wait: bool = True,
) -> Proc:
    data_dir = tmp / name
    grpc = f"127.0.0.1:{grpc_port or free_port()}"
    http = f"127.0.0.1:{http_port or free_port()}"
    args = launch.central_argv(
        data_dir=data_dir, grpc_addr=grpc, http_addr=http, propagation_delay_s=propagation_delay, extra=extra
    )
    return _started(Proc(name, args, tmp / f"{name}.log", f"http://{http}", data_dir, grpc=grpc), wait)


def start_replica(
    tmp: Path,
    central_grpc: str,
    region: str,
    *,
    cache_bytes: str | int = "64MiB",
    extra: Sequence[str] = (),
    http_port: int = 0,
    data_dir: Path | None = None,
    wait: bool = True,
) -> Proc:
    """A replica; `wait` waits for /readyz (the first stream batch applied)."""
    data_dir = data_dir or tmp / f"replica-{region}"
    http = f"127.0.0.1:{http_port or free_port()}"
    args = launch.replica_argv(
        region=region, central=central_grpc, data_dir=data_dir, http_addr=http, cache_bytes=cache_bytes
    )
    args += extra
    name = f"replica-{region}"
    return _started(Proc(name, args, tmp / f"{name}.log", f"http://{http}", data_dir), wait)


def start_dev(
    tmp: Path, *flags: str, env: dict[str, str] | None = None, timeout_s: float = 60.0
) -> tuple[Proc, dict[str, Any]]:
    """`edgekv dev FLAGS --info-file tmp/info.json` (log: tmp/dev.log) and the info it
    writes once every child is ready; raises with its log if it exits or times out first.
    `.stop(30)` stops it (SIGTERM: dev stops its children) and gives its exit code."""
    info_path = tmp / "info.json"
    argv = [*EDGEKV, "dev", *flags, "--info-file", str(info_path)]
    p = Proc("edgekv dev", argv, tmp / "dev.log", env=env).start()
    deadline = time.monotonic() + timeout_s
    try:
        while not info_path.exists():  # written atomically (a rename) once all are ready
            p.check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"edgekv dev did not come up in {timeout_s:g}s:\n{p.log()[-4000:]}")
            time.sleep(0.2)
        return p, json.loads(info_path.read_text())
    except BaseException:
        p.stop(30)
        raise


def restart(p: Proc, *, wait: bool = True) -> Proc:
    """Start `p` again with the same arguments (ports, data dir) after it stopped."""
    assert not p.alive
    p.start()
    if wait:
        launch.wait_ready([p])
    return p


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[list[Proc]]:
    """Stop the given (and any later appended) processes on exit, whatever happens."""
    items = list(procs)
    try:
        yield items
    finally:
        stop_all(list(reversed(items)))


async def create_account(
    central_grpc: str, permission: Permission = Permission.WRITE, *, known_at: Sequence[str] = ()
) -> tuple[str, str]:
    """A fresh account id and a bearer secret for it, created through central's Admin API.

    A replica knows only the tokens central has pushed to it on the change stream (no
    lookup at central), so a request right after the create may get a 401: `known_at`
    (replicas' HTTP bases) waits, up to 20 s, until each of them accepts the secret."""
    account = secrets.token_hex(16)
    async with CentralClient(central_grpc) as client:
        _, secret = await client.create_token(account, permission)
    for base in known_at:
        await wait_token_known(base, account, secret)
    return account, secret


async def wait_token_known(base: str, account: str, secret: str, timeout_s: float = 20.0) -> None:
    """Wait until the process at `base` accepts `secret` (anything but a 401 on the
    account's namespace list): a replica learns a token from the change stream."""
    url = f"{base}/client/v4/accounts/{account}/storage/kv/namespaces"
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {secret}"}, timeout=5) as http:

        async def known() -> bool:
            return (await http.get(url)).status_code != 401

        await eventually(known, timeout_s, f"the token at {base}")


async def caught_up(central: KV, replica: KV, timeout_s: float = 20.0) -> None:
    """Wait until `replica` has applied everything central had committed when this was
    called (its `edgekv_replication_applied_seq` reaches central's committed seq): a
    namespace created at central is then in the replica's own directory, not only
    answered by central on the replica's behalf."""
    target = metric_value(await central.metrics(), "edgekv_central_committed_seq") or 0.0

    async def applied() -> bool:
        return (metric_value(await replica.metrics(), "edgekv_replication_applied_seq") or 0.0) >= target

    await eventually(applied, timeout_s, f"the replica at {replica.base} applying seq {target:.0f}")


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text (labels matched as a subset)."""
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        series, _, lbl = head.partition("{")
        if series != name:
            continue
        if all(f'{k}="{v}"' in lbl for k, v in labels.items()):
            return float(value)
    return None


class KV:
    """A small async client of the Cloudflare KV paths of one process."""

    def __init__(self, base: str, account: str, secret: str, *, timeout: float = 10.0) -> None:
        self.base = base
        self.account = account
        self.root = f"{base}/client/v4/accounts/{account}/storage/kv/namespaces"
        self.http = httpx.AsyncClient(headers={"authorization": f"Bearer {secret}"}, timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> KV:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def list_namespaces(self) -> httpx.Response:
        return await self.http.get(self.root)

    async def namespace(self, ns: str) -> httpx.Response:
        return await self.http.get(f"{self.root}/{ns}")

    async def create_namespace(self, title: str) -> str:
        r = await self.http.post(self.root, json={"title": title})
        r.raise_for_status()
        return str(r.json()["result"]["id"])

    async def put(self, ns: str, key: str, value: bytes, **params: Any) -> httpx.Response:
        return await self.http.put(
            f"{self.root}/{ns}/values/{key}",
            content=value,
            params=params,
            headers={"content-type": "application/octet-stream"},
        )

    async def get(self, ns: str, key: str, *, strong: bool = False) -> httpx.Response:
        params = {"consistency": "strong"} if strong else None
        return await self.http.get(f"{self.root}/{ns}/values/{key}", params=params)

    async def metadata(self, ns: str, key: str) -> httpx.Response:
        return await self.http.get(f"{self.root}/{ns}/metadata/{key}")

    async def delete(self, ns: str, key: str) -> httpx.Response:
        return await self.http.delete(f"{self.root}/{ns}/values/{key}")

    async def metrics(self) -> str:
        return (await self.http.get(f"{self.base}/metrics")).text


def etag(r: httpx.Response) -> int:
    return int(r.headers["etag"].strip('"'))
