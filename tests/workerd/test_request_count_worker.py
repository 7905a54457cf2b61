"""examples/request_count/worker.js on a real workerd, one Worker per region of a real
`edgekv dev --workerd` cluster (propagation delay 2 s), 8 concurrent clients.

The exact route (conditional REST writes via fetch) counts every request; the naive
route's shortfall is printed, not asserted. An update made in one region reaches the
others lazily: not at once where the key is hot, and within the propagation delay.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from helpers.cluster import Proc, free_port, running
from helpers.workerd import start_workerd

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "request_count"
PROPAGATION_DELAY_S = 2.0
REQUESTS = 150


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(EXAMPLE))  # workers_demo imports workerd_config
    spec = importlib.util.spec_from_file_location(f"request_count_{name}", EXAMPLE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load("workers_demo")
config = _load("workerd_config")


def _dev(tmp: Path) -> Proc:
    info = tmp / "edgekv.json"
    args = [sys.executable, "-m", "edgekv", "dev", "--workerd", "--regions", "us,eu,ap"]
    args += ["--propagation-delay", str(PROPAGATION_DELAY_S), "--info-file", str(info)]
    args += ["--data-dir", str(tmp / "dev")]
    return Proc("dev", args, tmp / "dev.log", "", tmp).start()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], str, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("request-count")
    with running() as procs:
        dev = _dev(tmp)
        procs.append(dev)
        info_path = tmp / "edgekv.json"
        deadline = time.monotonic() + 60
        while not info_path.exists():
            assert dev.alive and time.monotonic() < deadline, dev.log()[-3000:]
            time.sleep(0.1)
        info = json.loads(info_path.read_text())
        assert set(info["workerd"]) == {"us", "eu", "ap"}
        root = f"{info['central']['http']}/client/v4/accounts/{info['account_id']}/storage/kv/namespaces"
        auth = {"authorization": f"Bearer {info['token']}"}
        created = httpx.post(root, json={"title": "rc"}, headers=auth).raise_for_status()
        namespace = created.json()["result"]["id"]
        specs = [config.worker_spec(info, r, namespace, f"127.0.0.1:{free_port()}") for r in info["regions"]]
        procs.append(start_workerd(tmp, specs))  # one workerd, one Worker (and socket) per region
        yield info, namespace, {s.name: f"http://{s.listen_addr}" for s in specs}


Workers = tuple[dict[str, Any], str, dict[str, str]]


def test_exact_counts_every_request_naive_loses_some(workers: Workers) -> None:
    info, namespace, urls = workers
    exact = asyncio.run(demo.drive(list(urls.values()), "/exact", REQUESTS))
    assert len(exact) == REQUESTS
    sent = Counter(a["country"] for a in exact)
    for country in demo.COUNTRIES:
        counts = sorted(a["count"] for a in exact if a["country"] == country)
        assert counts == list(range(1, sent[country] + 1))  # each request got its own number
        assert asyncio.run(demo.central_count(info, namespace, f"exact:{country}")) == sent[country]
    assert {a["region"] for a in exact} == {"us", "eu", "ap"}
    naive = asyncio.run(demo.drive(list(urls.values()), "/naive", REQUESTS))
    counted = {c: asyncio.run(demo.central_count(info, namespace, f"naive:{c}")) for c in demo.COUNTRIES}
    assert all(1 <= counted[c] <= sent[c] for c in demo.COUNTRIES)
    lost = REQUESTS - sum(counted.values())
    print(f"\nrequest-count Worker, {REQUESTS} requests: exact {dict(sent)}; naive {counted} ({lost} lost)")
    assert len(naive) == REQUESTS


def test_an_update_reaches_other_regions_lazily(workers: Workers) -> None:
    _, _, urls = workers
    # lazy_update creates naive:NZ (pushed to every region at once, C1), then updates it (lazy, C2).
    timeline = asyncio.run(demo.lazy_update(urls, "us", "NZ", PROPAGATION_DELAY_S))
    print(f"\nnaive:NZ after an increment in us: {timeline}")
    for region, points in timeline.items():
        first, (last_t, last) = points[0][1], points[-1]
        assert first == 1, f"{region} served the update at once, not lazily: {points}"
        assert last == 2 and last_t <= PROPAGATION_DELAY_S + 2.0, f"{region}: {points}"


def test_config_generator_cli(tmp_path: Path, workers: Workers) -> None:
    info, namespace, _ = workers
    (tmp_path / "info.json").write_text(json.dumps(info))
    out = tmp_path / "rc.capnp"
    args = [sys.executable, str(EXAMPLE / "workerd_config.py"), "--info", str(tmp_path / "info.json")]
    args += ["--namespace", namespace, "--out", str(out), "--regions", "eu", "--base-port", "18101"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "eu: http://127.0.0.1:18101"
    text = out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600
    assert f'address = "{info["workerd"]["eu"]}"' in text and f"Bearer {info['token']}" in text
    assert 'cfBlobHeader = "cf-blob"' in text and 'kvNamespace = "eu-kv-REQUESTS"' in text
