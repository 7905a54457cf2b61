"""What every section gets: a temp dir for data and logs, the output dir, an account
and token, and a place to put results and notes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VALUE_PATH = "/client/v4/accounts/{account}/storage/kv/namespaces/{ns}/values/"
KEYS_PATH = "/client/v4/accounts/{account}/storage/kv/namespaces/{ns}/keys"


@dataclass
class Ctx:
    tmp: Path
    out: Path
    quick: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def log(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {msg}", flush=True)

    def secs(self, full: float, quick: float) -> float:
        return quick if self.quick else full


def value_prefix(account: str, ns: str) -> str:
    return VALUE_PATH.format(account=account, ns=ns)


def keys_path(account: str, ns: str) -> str:
    return KEYS_PATH.format(account=account, ns=ns)
