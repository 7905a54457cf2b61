"""examples/request_count against a real cluster: one app instance per region, 8
concurrent clients spread over the 3 regions, 500 requests for 2 countries. The exact
version (conditional writes) counts exactly 500; the naive read-then-write version's
shortfall is reported, not asserted."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from helpers.dev_cluster import REPO, Cluster

from kvcore.client import AsyncKVNamespace

TOTAL_REQUESTS = 500
CLIENTS = 8
COUNTRIES = ("DE", "JP")


def load_example() -> ModuleType:
    path = REPO / "examples" / "request_count" / "app.py"
    spec = importlib.util.spec_from_file_location("request_count_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def drive(cluster: Cluster, namespace: str, route: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Send the 500 requests; return the final count per country (strong read) and the answers."""
    example = load_example()
    regions = sorted(cluster.regions)
    bindings = {
        r: AsyncKVNamespace(cluster.regions[r], cluster.account_id, namespace, cluster.token) for r in regions
    }
    apps = {
        r: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=example.create_app(bindings[r])), base_url=f"http://{r}"
        )
        for r in regions
    }
    work = iter(itertools.islice(itertools.cycle(COUNTRIES), TOTAL_REQUESTS))
    answers: list[dict[str, Any]] = []

    async def client(index: int) -> None:
        app = apps[regions[index % len(regions)]]  # clients 0..7 spread over us/eu/ap
        for country in work:  # the shared iterator hands each request to one client
            resp = await app.get(route, headers={"CF-IPCountry": country})
            assert resp.status_code == 200, resp.text
            answers.append(resp.json())

    try:
        await asyncio.gather(*(client(i) for i in range(CLIENTS)))
        final = {}
        for country in COUNTRIES:
            value = await bindings[regions[0]].get(f"{route.strip('/')}:{country}", consistency="strong")
            final[country] = int(value or 0)
    finally:
        for app in apps.values():
            await app.aclose()
        for kv in bindings.values():
            await kv.aclose()
    assert len(answers) == TOTAL_REQUESTS
    return final, answers


@pytest.mark.timeout(180)
async def test_exact_counts_every_request(cluster: Cluster, namespace: str) -> None:
    started = time.monotonic()
    final, answers = await drive(cluster, namespace, "/exact")
    assert sum(final.values()) == TOTAL_REQUESTS
    assert final == {c: TOTAL_REQUESTS // len(COUNTRIES) for c in COUNTRIES}
    for country in COUNTRIES:  # every request got its own number: 1..250, each once
        counts = sorted(a["count"] for a in answers if a["country"] == country)
        assert counts == list(range(1, final[country] + 1))
    retries = sum(a["attempts"] - 1 for a in answers)
    print(f"\nexact: {final} in {time.monotonic() - started:.1f}s, {retries} retries after 412")


@pytest.mark.timeout(180)
async def test_naive_loses_increments_and_we_report_how_many(
    cluster: Cluster, namespace: str, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    final, answers = await drive(cluster, namespace, "/naive")
    shortfall = TOTAL_REQUESTS - sum(final.values())
    duplicates = sum(n - 1 for n in Counter((a["country"], a["count"]) for a in answers).values() if n > 1)
    record_property("naive_shortfall", shortfall)
    with capsys.disabled():
        print(
            f"\nnaive request count: counted {sum(final.values())} of {TOTAL_REQUESTS} "
            f"({final}); shortfall {shortfall} ({100 * shortfall / TOTAL_REQUESTS:.0f}%), "
            f"{duplicates} answers repeated a count already given"
        )
    assert 0 <= shortfall < TOTAL_REQUESTS


def test_example_readme_exists() -> None:
    readme = Path(REPO / "examples" / "request_count" / "README.md").read_text()
    assert "edgekv dev" in readme and "/exact" in readme and "/naive" in readme
