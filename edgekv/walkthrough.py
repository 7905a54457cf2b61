"""`make demo`: a one-minute tour of a running dev cluster.

A namespace, a create seen in every region at once, an update arriving lazily
within the propagation delay, a hot key served from the edge cache, and where to
look in /metrics. Every figure printed is measured, not scripted.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console

_out = Console()


def _step(text: str) -> None:
    _out.print(f"\n[bold cyan]>[/bold cyan] {text}")


def walk(info: dict[str, Any], propagation_delay_s: float) -> None:
    regions: dict[str, str] = info["regions"]
    names = list(regions)
    writer = names[0]
    headers = {"Authorization": f"Bearer {info['token']}"}
    base = "/client/v4/accounts/{}/storage/kv/namespaces".format(info["account_id"])

    with httpx.Client(headers=headers, timeout=10.0) as http:

        def url(region: str, path: str = "") -> str:
            return f"{regions[region]}{base}{path}"

        _step("Create a namespace through the first region (forwarded to central).")
        title = f"demo-{int(time.time())}"
        ns = http.post(url(writer), json={"title": title}).json()["result"]
        _out.print(f"  namespace [bold]{title}[/bold] id={ns['id']}")
        values = f"/{ns['id']}/values/{quote('greeting', safe='')}"

        _step("Every region answers 404 for a key nobody wrote yet (cached as missing).")
        for region in names:
            r = http.get(url(region, values))
            _out.print(f"  {region}: {r.status_code}")

        _step(
            f"Write it in region {writer!r}: a create is pushed to every region at once "
            "(each drops its cached 404; a region keeps the value only once the key is hot, "
            "so a first read there may say read-through)."
        )
        http.put(url(writer, values), content=b"hello, world")
        written = time.monotonic()
        for region in names:
            seen = _poll(http, url(region, values), b"hello, world", 5.0)
            _out.print(f"  {region}: served {(seen - written) * 1000:.0f} ms after the write returned")

        _step(f"Update it: updates are coalesced and arrive within {propagation_delay_s:g}s.")
        http.put(url(writer, values), content=b"hello again")
        updated = time.monotonic()
        _out.print(f"  {writer}: serves the new value at once (read-your-write)")
        for region in names[1:]:
            seen = _poll(http, url(region, values), b"hello again", propagation_delay_s + 5.0)
            _out.print(f"  {region}: new value after {seen - updated:.1f} s")

        reader = names[-1]
        _step(
            f"Read a fresh key repeatedly in region {reader!r}: once read often enough it is hot "
            "and served from the edge cache."
        )
        hot = f"/{ns['id']}/values/{quote('popular', safe='')}"
        http.put(url(writer, hot), content=b"read me often")
        _poll(http, url(reader, hot), b"read me often", 5.0)
        sources = []
        for _ in range(5):
            start = time.perf_counter()
            r = http.get(url(reader, hot))
            took = (time.perf_counter() - start) * 1000
            sources.append(f"{r.headers.get('x-edgekv-source', '?')} ({took:.1f} ms)")
        _out.print("  " + " -> ".join(sources), soft_wrap=True)

        _step("Where to look:")
        for region in names:
            _out.print(
                f"  {regions[region]}/metrics   edgekv_cache_requests_total, edgekv_replication_lag_seconds",
                soft_wrap=True,
                highlight=False,
            )
        _out.print(
            f"  {info['central']['http']}/metrics   edgekv_writes_total, edgekv_replication_pending_updates",
            soft_wrap=True,
            highlight=False,
        )
        _out.print(f"  API docs: {info['central']['http']}/docs", soft_wrap=True, highlight=False)


def _poll(http: httpx.Client, url: str, want: bytes, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = http.get(url)
        if r.status_code == 200 and r.content == want:
            return time.monotonic()
        time.sleep(0.005)
    raise RuntimeError(f"{url} did not serve {want!r} within {timeout_s:g}s")
