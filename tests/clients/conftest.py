"""A real `edgekv dev` cluster (central + us/eu/ap replicas) for the client tests that
need one; started once per session on free loopback ports and stopped at the end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kvcore.client import KVClient

REPO = Path(__file__).resolve().parents[2]
EDGEKV = REPO / ".venv" / "bin" / "edgekv"
PROPAGATION_DELAY_S = 2
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Cluster:
    account_id: str
    token: str
    central: str
    regions: dict[str, str]
    log: Path

    def endpoint(self, where: str) -> str:
        return self.central if where == "central" else self.regions[where]

    def admin(self, where: str = "central") -> KVClient:
        return KVClient(self.endpoint(where), self.account_id, self.token, timeout=30)

    def env(self, where: str = "central") -> dict[str, str]:
        return {
            "EDGEKV_ENDPOINT": self.endpoint(where),
            "EDGEKV_ACCOUNT_ID": self.account_id,
            "EDGEKV_API_TOKEN": self.token,
        }


def _descendants(pid: int) -> list[int]:
    """Pids of the processes `pid` started, transitively (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _wait_ready(urls: list[str], deadline: float) -> None:
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        try:
            if httpx.get(pending[0] + "/readyz", timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    if pending:
        raise TimeoutError(f"not ready: {pending}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("edgekv-dev")
    info_file = workdir / "info.json"
    log = workdir / "dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(EDGEKV),
                "dev",
                "--regions",
                "us,eu,ap",
                "--propagation-delay",
                str(PROPAGATION_DELAY_S),
                "--info-file",
                str(info_file),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the dev process and its children
            env={k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")},
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not info_file.exists() or not info_file.read_text().strip().endswith("}"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"edgekv dev did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        info = json.loads(info_file.read_text())
        found = Cluster(info["account_id"], info["token"], info["central"]["http"], info["regions"], log)
        _wait_ready([found.central, *found.regions.values()], deadline)
        yield found
    finally:
        started = _descendants(proc.pid)  # central and replicas run in sessions of their own
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # dev stops its children on SIGTERM
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for pid in started:  # anything of ours that outlived dev (pid not reused: same cmdline)
            with contextlib.suppress(OSError):
                if b"kvcore" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace (deleted afterwards); yields its id."""
    with cluster.admin() as admin:
        ns = admin.create_namespace(f"test-{uuid.uuid4().hex[:12]}")
        yield ns.id
        with contextlib.suppress(Exception):
            admin.delete_namespace(ns.id)
