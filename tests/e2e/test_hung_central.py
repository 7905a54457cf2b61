"""Issue 12, honest failure detection: a hung central (SIGSTOP: its sockets stay open,
nothing answers) is detected by a replica within 20 s, staleness counts from the last
contact, cached reads go on, and calls to central fail fast with a clean 503."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from helpers.cluster import EDGEKV, KV, create_account, metric_value, start_central, start_replica, stop_all


async def test_hung_central_is_detected_within_20_s(tmp_path: Path) -> None:
    central = start_central(tmp_path, propagation_delay=0)
    replica = start_replica(tmp_path, central.grpc, "eu", extra=("--central-timeout", "2"))
    stopped = False
    try:
        account, secret = await create_account(central.grpc, known_at=[replica.http])
        async with KV(replica.http, account, secret) as kv:
            ns = await kv.create_namespace("hang")
            assert (await kv.put(ns, "hot", b"cached")).status_code == 200
            for _ in range(3):
                assert (await kv.get(ns, "hot")).status_code == 200
            assert metric_value(await kv.metrics(), "edgekv_replication_connected", region="eu") == 1

            os.kill(central.pid, signal.SIGSTOP)
            stopped = True
            stopped_at = time.monotonic()
            while True:
                text = await kv.metrics()
                if metric_value(text, "edgekv_replication_connected", region="eu") == 0:
                    break
                assert time.monotonic() - stopped_at < 20, "a hung central was not detected within 20 s"
                await asyncio.sleep(0.2)
            detected_s = time.monotonic() - stopped_at
            staleness = metric_value(text, "edgekv_replication_staleness_seconds", region="eu")
            assert staleness is not None
            # From the last contact (before the stop, at most a heartbeat earlier), not
            # from the moment the silence was noticed (which would read ~0).
            print(f"hung central detected after {detected_s:.1f} s, staleness {staleness:.1f} s")
            assert detected_s - 1.0 <= staleness <= detected_s + 5.0, (detected_s, staleness)

            # C7: the cached key is served; a cold read and a write fail fast, cleanly.
            hot = await kv.get(ns, "hot")
            assert hot.status_code == 200 and hot.content == b"cached"
            for call in (kv.get(ns, "cold"), kv.put(ns, "w", b"x")):
                t0 = time.monotonic()
                r = await call
                assert r.status_code == 503, r.text
                assert time.monotonic() - t0 < 1.0, "a call to a known-down central waited its timeout"
                body = r.json()
                assert body["success"] is False and body["errors"][0]["code"] == 10043
                assert "127.0.0.1" not in r.text and "ipv4" not in r.text and "grpc" not in r.text.lower()

            # The CLI resolves the namespace title at the replica while central is away.
            cli = subprocess.run(
                [*EDGEKV, "kv", "key", "get", "--binding", "hang", "hot", "--text",
                 "--endpoint", replica.http, "--account", account],
                env={**os.environ, "EDGEKV_API_TOKEN": secret},
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert cli.returncode == 0 and cli.stdout == "cached\n", cli.stderr

            os.kill(central.pid, signal.SIGCONT)
            stopped = False
            deadline = time.monotonic() + 30
            while metric_value(await kv.metrics(), "edgekv_replication_connected", region="eu") != 1:
                assert time.monotonic() < deadline, "the replica did not reconnect after SIGCONT"
                await asyncio.sleep(0.2)
            assert (await kv.put(ns, "w", b"back")).status_code == 200
        # Whichever layer noticed first: the heartbeat watchdog or gRPC's keepalive ping.
        assert "no message from central" in replica.log() or "ping timeout" in replica.log()
    finally:
        if stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(central.pid, signal.SIGCONT)
        replica.stop()
        central.kill9()
        stop_all([central])
