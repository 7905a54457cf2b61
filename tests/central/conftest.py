"""Real `edgekv central` processes on free loopback ports with temp RocksDB dirs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.cluster import Proc, start_central, stop_all

CentralFactory = Callable[..., Proc]


@pytest.fixture
def central_factory(tmp_path: Path) -> Iterator[CentralFactory]:
    started: list[Proc] = []

    def make(*, propagation_delay: float = 60.0, extra: tuple[str, ...] = ()) -> Proc:
        p = start_central(
            tmp_path, propagation_delay=propagation_delay, extra=extra, name=f"central{len(started)}"
        )
        started.append(p)
        return p

    yield make
    stop_all(started)
