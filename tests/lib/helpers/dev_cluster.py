"""The `cluster` and `namespace` fixtures of the client and CLI tests: one `edgekv dev`
(central and three regions on loopback, started by `edgekv.launch` through
`helpers.cluster.start_dev`) for the whole session, and a fresh namespace per test.

Registered as a plugin in tests/conftest.py, so tests/kvcore/client and tests/edgekv
share one definition; a directory with a `cluster` fixture of its own (tests/replica)
overrides it there.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.cluster import start_dev
from kvcore.client import KVClient

REPO = Path(__file__).resolve().parents[3]
EDGEKV = REPO / ".venv" / "bin" / "edgekv"  # the installed console script, as users run it
PROPAGATION_DELAY_S = 2
START_TIMEOUT_S = 60

__all__ = ["EDGEKV", "PROPAGATION_DELAY_S", "REPO", "Cluster", "cluster", "namespace"]


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


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("edgekv-dev")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    flags = ("--regions", "us,eu,ap", "--propagation-delay", str(PROPAGATION_DELAY_S))
    proc, info = start_dev(workdir, *flags, env=env, timeout_s=START_TIMEOUT_S)
    try:
        yield Cluster(
            info["account_id"], info["token"], info["central"]["http"], info["regions"], workdir / "dev.log"
        )
    finally:
        proc.stop(30)  # SIGTERM: dev stops its children in order


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace (deleted afterwards); yields its id."""
    with cluster.admin() as admin:
        ns = admin.create_namespace(f"test-{uuid.uuid4().hex[:12]}")
        yield ns.id
        with contextlib.suppress(Exception):
            admin.delete_namespace(ns.id)
