"""What the replica tests share besides fixtures: the module-wide cluster's shape and
its propagation delay (a module, not conftest: conftest is not importable by name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from helpers.cluster import Proc

PROPAGATION_DELAY_S = 2.0
REGIONS = ("us", "eu", "ap")


@dataclass
class Cluster:
    central: Proc
    replicas: dict[str, Proc]
    tmp: Path

    @property
    def all(self) -> list[Proc]:
        return [self.central, *self.replicas.values()]
