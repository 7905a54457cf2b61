"""Replica tests: a module-wide cluster of real processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.cluster import start_central, start_replica, stop_all, wait_ready
from replica_support import PROPAGATION_DELAY_S, REGIONS, Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Central (propagation delay 2 s) and three replicas, shared by a test module."""
    tmp = tmp_path_factory.mktemp("cluster")
    central = start_central(tmp, propagation_delay=PROPAGATION_DELAY_S)
    procs = [central]
    try:
        replicas = {r: start_replica(tmp, central.grpc, r, wait=False) for r in REGIONS}
        procs += replicas.values()
        for p in replicas.values():
            wait_ready(p.http, proc=p)
        yield Cluster(central, replicas, tmp)
    finally:
        stop_all(list(reversed(procs)))
