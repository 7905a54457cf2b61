"""A real workerd (npm package `workerd`, installed by `make workerd` into `.workerd/`)
running Workers bound to edgekv replicas, for tests, the demo and the bench.

    proc = start_workerd(tmp, [WorkerSpec("eu", module, f"127.0.0.1:{free_port()}", kv=[...])])
    ...
    proc.stop()

Started, waited for and stopped (by its pid only) by `edgekv.launch`, like every process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from edgekv.launch import Process as Proc
from edgekv.launch import wait_listening
from kvcore.workerd.config import WorkerSpec, write_config

ROOT = Path(__file__).resolve().parents[3]
WORKERD_BIN = Path(os.environ.get("EDGEKV_WORKERD_BIN") or ROOT / ".workerd/node_modules/.bin/workerd")


def workerd_bin() -> Path:
    if not WORKERD_BIN.exists():
        raise RuntimeError(f"{WORKERD_BIN} is missing: `make workerd` installs it (npm package workerd)")
    return WORKERD_BIN


def start_workerd(
    tmp: Path, workers: Sequence[WorkerSpec], *, name: str = "workerd", timeout_s: float = 30.0
) -> Proc:
    """workerd serving `workers`, once every Worker's socket accepts connections."""
    config = write_config(tmp / f"{name}.capnp", workers)
    args = [str(workerd_bin()), "serve", str(config)]
    p = Proc(name, args, tmp / f"{name}.log", f"http://{workers[0].listen_addr}", tmp).start()
    try:
        wait_listening(p, [w.listen_addr for w in workers], timeout_s)
    except BaseException:
        p.stop()
        raise
    return p


@dataclass
class Bound:
    """A Worker running `tests/workerd/kv_probe.js` with its KV bindings, and the cluster behind them."""

    central: Proc
    replica: Proc
    workerd: Proc
    worker_url: str
    account: str
    secret: str
    namespace: str
    http: httpx.Client
    read_secret: str = ""

    def call(self, op: str, *args: Any, binding: str = "KV") -> dict[str, Any]:
        """{"result": ...} or {"error": {"name", "message"}} of `env.<binding>.<op>(*args)`."""
        r = self.http.post(self.worker_url, json={"binding": binding, "op": op, "args": list(args)})
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out

    def result(self, op: str, *args: Any, binding: str = "KV") -> Any:
        out = self.call(op, *args, binding=binding)
        assert "error" not in out, out
        return out["result"]

    def rest_error(self, method: str, path: str, *, secret: str | None = None, **kw: Any) -> str:
        """`<status> <message>` of a failing REST call on the replica (what the binding must say)."""
        with self.rest(self.replica.http, secret=secret) as rest:
            r = rest.request(method, path, **kw)
        assert r.status_code >= 400, r.text
        return f"{r.status_code} {r.json()['errors'][0]['message']}"

    def rest(self, base: str | None = None, *, secret: str | None = None) -> httpx.Client:
        root = f"{base or self.central.http}/client/v4/accounts/{self.account}/storage/kv/namespaces"
        auth = {"authorization": f"Bearer {secret or self.secret}"}
        return httpx.Client(base_url=f"{root}/{self.namespace}", headers=auth, timeout=30)
