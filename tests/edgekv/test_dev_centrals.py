"""`edgekv dev --store URL --centrals 2`: two centrals on one PostgreSQL database, the
replicas spread over them; a write through one region is served by the other."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from helpers.cluster import start_dev
from helpers.eventually import eventually_sync
from helpers.postgres import PgServer

pytestmark = pytest.mark.timeout(120)


def child_command_lines(parent_pid: int) -> list[str]:
    """The command lines (as `ps` shows them) of `parent_pid`'s children, from /proc."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent_pid:
                out.append((d / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return out


def test_dev_runs_two_centrals_on_one_database(postgres: PgServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    proc, info = start_dev(
        tmp_path, "--regions", "us,eu", "--propagation-delay", "1", "--store", postgres.create_database(),
        "--centrals", "2", "--data-dir", str(tmp_path / "d"), env=env,
    )  # fmt: skip
    try:
        assert len(info["centrals"]) == 2 and info["central"] == info["centrals"][0]
        # The store URL (it may carry a password) is in no child's command line.
        assert proc.proc is not None
        argvs = child_command_lines(proc.proc.pid)
        assert sum(" central " in a for a in argvs) == 2, argvs
        assert not any("postgresql://" in a for a in argvs), argvs
        auth = {"authorization": f"Bearer {info['token']}"}
        with httpx.Client(headers=auth, timeout=10) as http:
            us, eu = (
                f"{info['regions'][r]}/client/v4/accounts/{info['account_id']}/storage/kv"
                for r in ["us", "eu"]
            )
            ns = http.post(f"{us}/namespaces", json={"title": "t"}).json()["result"]["id"]
            assert http.put(f"{us}/namespaces/{ns}/values/k", content=b"v").status_code == 200
            # eu's replica follows the second central, which learns the write from the log.
            eventually_sync(
                lambda: http.get(f"{eu}/namespaces/{ns}/values/k").status_code == 200, 20, "the write at eu"
            )
            r = http.get(f"{eu}/namespaces/{ns}/values/k")
            assert (r.status_code, r.content) == (200, b"v")
            # Both centrals serve the same data.
            for c in info["centrals"]:
                base = f"{c['http']}/client/v4/accounts/{info['account_id']}/storage/kv"
                assert http.get(f"{base}/namespaces/{ns}/values/k").content == b"v"
    finally:
        proc.stop(30)  # dev stops its children
