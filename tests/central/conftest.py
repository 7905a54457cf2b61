"""A real `edgekv central` process on free loopback ports with a temp RocksDB dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CentralProc:
    data_dir: Path
    grpc: str
    http: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    args: list[str]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_central(data_dir: Path, *extra: str, grpc_port: int = 0, http_port: int = 0) -> CentralProc:
    grpc_port = grpc_port or free_port()
    http_port = http_port or free_port()
    args = [
        sys.executable, "-m", "kvcore", "central",
        "--data-dir", str(data_dir),
        "--grpc-addr", f"127.0.0.1:{grpc_port}",
        "--http-addr", f"127.0.0.1:{http_port}",
        *extra,
    ]  # fmt: skip
    log_path = data_dir.parent / f"{data_dir.name}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    c = CentralProc(data_dir, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}", proc, log_path, args)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"central exited {proc.returncode}:\n{c.log()}")
        try:
            if httpx.get(f"{c.http}/readyz", timeout=1).status_code == 200:
                return c
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    c.stop()
    raise RuntimeError(f"central not ready:\n{c.log()}")


@pytest.fixture
def central_factory(tmp_path: Path) -> Iterator[object]:
    started: list[CentralProc] = []

    def make(*extra: str, data_dir: Path | None = None, **ports: int) -> CentralProc:
        c = start_central(data_dir or tmp_path / "central", *extra, **ports)
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()
