"""Issue 12, a demo you can break: `edgekv dev` survives the loss of central (kill -9 of
its pid), brings it back on the same ports, and meanwhile the replicas serve cached
keys and fail writes fast (C7). `--base-port` fixes the ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import httpx
from helpers.cluster import KV, metric_value, start_dev

from edgekv.launch import free_port
from kvcore.listen import LOCK_FILE, port_in_use


def _pid(path: Path) -> int:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text.isdigit() else 0


async def test_dev_survives_the_loss_of_central(tmp_path: Path) -> None:
    base = next(
        b
        for b in (free_port() for _ in range(50))
        if not any(port_in_use(f"127.0.0.1:{b + i}") for i in range(4))
    )
    root = tmp_path / "dev"
    dev, info = start_dev(
        tmp_path, "--regions", "us,eu", "--propagation-delay", "0", "--data-dir", str(root),
        "--base-port", str(base),
    )  # fmt: skip
    try:
        assert info["central"]["grpc"] == f"127.0.0.1:{base}"
        assert info["central"]["http"] == f"http://127.0.0.1:{base + 1}"
        us = info["regions"]["us"]
        async with KV(us, info["account_id"], info["token"]) as kv:
            ns = await kv.create_namespace("demo")
            assert (await kv.put(ns, "hot", b"v1")).status_code == 200
            for _ in range(3):
                assert (await kv.get(ns, "hot")).status_code == 200

            lock = root / "central" / LOCK_FILE
            first_pid = _pid(lock)
            assert first_pid > 0
            os.kill(first_pid, signal.SIGKILL)
            t0 = time.monotonic()
            write = await kv.put(ns, "w", b"x")
            assert write.status_code == 503 and time.monotonic() - t0 < 2.5, write.text
            cached = await kv.get(ns, "hot")
            assert cached.status_code == 200 and cached.content == b"v1"

            # Back on the same ports, with the same data; the replica resumes.
            deadline = time.monotonic() + 60
            while True:
                pid = _pid(lock)
                ready = False
                if pid not in (0, first_pid):
                    with contextlib.suppress(httpx.HTTPError):
                        ready = httpx.get(f"{info['central']['http']}/readyz", timeout=1).status_code == 200
                connected = metric_value(await kv.metrics(), "edgekv_replication_connected", region="us")
                if ready and connected == 1:
                    break
                assert dev.alive, "edgekv dev ended when central died"
                assert time.monotonic() < deadline, "central was not brought back"
                await asyncio.sleep(0.3)
            assert (await kv.put(ns, "w", b"after")).status_code == 200
            strong = await kv.get(ns, "hot", strong=True)
            assert strong.status_code == 200 and strong.content == b"v1"
        text = (tmp_path / "dev.log").read_text()
        assert "central exited with -9; restarting" in text
        assert "exited with -9" in (root / "central.log").read_text()  # the log is kept, marked
    finally:
        code = dev.stop(30)
    assert code == 0
