"""`edgekv dev --store URL --centrals 2`: two centrals on one PostgreSQL database, the
replicas spread over them; a write through one region is served by the other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from helpers.cluster import EDGEKV
from helpers.postgres import PgServer

pytestmark = pytest.mark.timeout(120)


def test_dev_runs_two_centrals_on_one_database(postgres: PgServer, tmp_path: Path) -> None:
    info_file, log = tmp_path / "info.json", tmp_path / "dev.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*EDGEKV, "dev", "--regions", "us,eu", "--propagation-delay", "1", "--info-file", str(info_file),
             "--store", postgres.create_database(), "--centrals", "2", "--data-dir", str(tmp_path / "d")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not info_file.exists() or not info_file.read_text().strip().endswith("}"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        info = json.loads(info_file.read_text())
        assert len(info["centrals"]) == 2 and info["central"] == info["centrals"][0]
        auth = {"authorization": f"Bearer {info['token']}"}
        with httpx.Client(headers=auth, timeout=10) as http:
            us, eu = (
                f"{info['regions'][r]}/client/v4/accounts/{info['account_id']}/storage/kv"
                for r in ["us", "eu"]
            )
            ns = http.post(f"{us}/namespaces", json={"title": "t"}).json()["result"]["id"]
            assert http.put(f"{us}/namespaces/{ns}/values/k", content=b"v").status_code == 200
            # eu's replica follows the second central, which learns the write from the log.
            for _ in range(100):
                r = http.get(f"{eu}/namespaces/{ns}/values/k")
                if r.status_code == 200:
                    break
                time.sleep(0.05)
            assert (r.status_code, r.content) == (200, b"v")
            # Both centrals serve the same data.
            for c in info["centrals"]:
                base = f"{c['http']}/client/v4/accounts/{info['account_id']}/storage/kv"
                assert http.get(f"{base}/namespaces/{ns}/values/k").content == b"v"
    finally:
        proc.send_signal(signal.SIGTERM)  # dev stops its children
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
