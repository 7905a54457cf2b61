"""Real `edgekv` processes for end-to-end tests: central and replicas on free loopback
ports with temp data dirs.

    c = start_central(tmp_path, propagation_delay=2)
    eu = start_replica(tmp_path, c.grpc, "eu")
    account, secret = await create_account(c.grpc)
    kv = KV(eu.http, account, secret)
    ...
    stop_all([eu, c])   # in a `finally` (or use the `Procs` context manager)

Every wait is bounded; processes are stopped by their own pid only (SIGTERM, then
SIGKILL after a timeout). pytest puts `tests/` on sys.path (pyproject `pythonpath`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from edgekv.dev import free_port
from kvcore.model import Permission
from kvcore.rpc.client import CentralClient

_BIN = Path(sys.executable).parent / "edgekv"
EDGEKV: list[str] = [str(_BIN)] if _BIN.exists() else [sys.executable, "-m", "edgekv"]


@dataclass
class Proc:
    """One started process. `http` is its base URL; `grpc` is set for central."""

    name: str
    args: list[str]
    log_path: Path
    http: str
    data_dir: Path
    grpc: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Proc:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)
            )
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (graceful), SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_ready(url: str, timeout: float = 30.0, proc: Proc | None = None) -> None:
    """Poll `url`/readyz until it answers 200 (raises with the process log otherwise)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited {proc.proc.returncode}:\n{proc.log()[-4000:]}")
        try:
            r = httpx.get(f"{url}/readyz", timeout=1.0)
            if r.status_code == 200:
                return
            last = r.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.05)
    log = proc.log()[-4000:] if proc is not None else ""
    raise TimeoutError(f"{url} not ready after {timeout}s ({last})\n{log}")


async def wait_ready_async(url: str, timeout: float = 30.0, proc: Proc | None = None) -> None:
    """`wait_ready` for async tests: keeps the event loop running (e.g. a `TcpProxy`)."""
    deadline = time.monotonic() + timeout
    last = ""
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.proc is not None and proc.proc.poll() is not None:
                raise RuntimeError(f"{proc.name} exited {proc.proc.returncode}:\n{proc.log()[-4000:]}")
            try:
                r = await client.get(f"{url}/readyz")
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.05)
    log = proc.log()[-4000:] if proc is not None else ""
    raise TimeoutError(f"{url} not ready after {timeout}s ({last})\n{log}")


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
    args = [
        *EDGEKV, "central",
        "--data-dir", str(data_dir),
        "--grpc-addr", grpc,
        "--http-addr", http,
        "--propagation-delay", str(propagation_delay),
        *extra,
    ]  # fmt: skip
    p = Proc(name, args, tmp / f"{name}.log", f"http://{http}", data_dir, grpc=grpc).start()
    if wait:
        try:
            wait_ready(p.http, proc=p)
        except BaseException:
            p.stop()
            raise
    return p


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
    args = [
        *EDGEKV, "replica",
        "--region", region,
        "--central", central_grpc,
        "--data-dir", str(data_dir),
        "--http-addr", http,
        "--cache-bytes", str(cache_bytes),
        *extra,
    ]  # fmt: skip
    p = Proc(f"replica-{region}", args, tmp / f"replica-{region}.log", f"http://{http}", data_dir).start()
    if wait:
        try:
            wait_ready(p.http, proc=p)
        except BaseException:
            p.stop()
            raise
    return p


def restart(p: Proc, *, wait: bool = True) -> Proc:
    """Start `p` again with the same arguments (ports, data dir) after it stopped."""
    assert not p.alive
    p.start()
    if wait:
        wait_ready(p.http, proc=p)
    return p


def stop_all(procs: Sequence[Proc]) -> None:
    for p in procs:
        with contextlib.suppress(Exception):
            p.stop()


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[list[Proc]]:
    """Stop the given (and any later appended) processes on exit, whatever happens."""
    items = list(procs)
    try:
        yield items
    finally:
        stop_all(list(reversed(items)))


async def create_account(central_grpc: str, permission: Permission = Permission.WRITE) -> tuple[str, str]:
    """A fresh account id and a bearer secret for it, created through central's Admin API."""
    account = secrets.token_hex(16)
    async with CentralClient(central_grpc) as client:
        _, secret = await client.create_token(account, permission)
    return account, secret


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
