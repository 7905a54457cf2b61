"""`make workers-demo`: the request-count Worker on workerd, one per region, each bound
to its own region's edgekv replica.

1. `edgekv dev --workerd` starts central and replicas us, eu, ap, each with a workerd
   KV listener; a namespace is created for the counters.
2. One workerd per region runs `worker.js` (config from `workerd_config.py`).
3. Concurrent clients send requests for a few countries (in `request.cf.country`, set
   through the `cf-blob` header) to all three Workers, first to the naive route and then
   to the exact one; the counts per country are read from central.
4. An update reaching the other regions lazily: a first request from NZ in us creates
   `naive:NZ` (a create is everywhere at once); eu and ap read it until it is hot in
   their edge caches; a second request in us increments it; eu and ap keep serving the
   old count until the update arrives, within the propagation delay.

    .venv/bin/python examples/request_count/workers_demo.py [--requests 300] [--propagation-delay 5]

Every process started here is stopped by its pid at the end (or on Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from workerd_config import worker_spec  # noqa: E402

from edgekv.dev import free_port  # noqa: E402
from kvcore.workerd.config import CF_BLOB_HEADER, write_config  # noqa: E402

ROOT = HERE.parent.parent
WORKERD = Path(os.environ.get("EDGEKV_WORKERD_BIN") or ROOT / ".workerd/node_modules/.bin/workerd")
COUNTRIES = ("DE", "JP", "BR")


def cf(country: str) -> dict[str, str]:
    """The header workerd turns into `request.cf` (cfBlobHeader in the config)."""
    return {CF_BLOB_HEADER: json.dumps({"country": country})}


async def drive(
    urls: Sequence[str], route: str, total: int, countries: Sequence[str] = COUNTRIES, clients: int = 8
) -> list[dict[str, Any]]:
    """Send `total` requests to `route`, countries in turn, from `clients` concurrent
    clients spread over the Workers in `urls`; return the Workers' answers."""
    work = iter(itertools.islice(itertools.cycle(countries), total))
    answers: list[dict[str, Any]] = []

    async def client(http: httpx.AsyncClient, url: str) -> None:
        for country in work:
            r = await http.get(f"{url}{route}", headers=cf(country))
            r.raise_for_status()
            answers.append(r.json())

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(client(http, urls[i % len(urls)]) for i in range(clients)))
    return answers


async def central_count(info: dict[str, Any], namespace: str, key: str) -> int:
    base = info["central"]["http"]
    url = f"{base}/client/v4/accounts/{info['account_id']}/storage/kv/namespaces/{namespace}/values/{key}"
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {info['token']}"}) as http:
        r = await http.get(url, params={"consistency": "strong"})
    return int(r.text) if r.status_code == 200 else 0


async def lazy_update(
    workers: dict[str, str], writer: str, country: str, bound_s: float
) -> dict[str, list[tuple[float, int]]]:
    """For a `country` not counted yet: create `naive:<country>` through `writer` (a
    create reaches every region at once, C1), read it in the other regions until it is hot
    in their edge caches, increment it through `writer` (an update: lazy, C2), then poll
    the others: {region: [(seconds after the update, count read), ...]} until each reads
    the new count (or `bound_s` + 5 s passes)."""
    readers = [r for r in workers if r != writer]
    async with httpx.AsyncClient(timeout=30) as http:

        async def seen(region: str) -> int:
            r = await http.get(f"{workers[region]}/count", params={"country": country})
            return int(r.json()["naive"])

        async def increment() -> int:
            r = await http.get(f"{workers[writer]}/naive", headers=cf(country))
            return int(r.json()["count"])

        first = await increment()
        deadline = time.monotonic() + 5
        while any([await seen(r) < first for r in readers]) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for _ in range(5):  # read often enough to be admitted to each edge cache
            for region in readers:
                await seen(region)
        new = await increment()
        wrote_at = time.monotonic()
        timeline: dict[str, list[tuple[float, int]]] = {region: [] for region in readers}
        pending = set(readers)
        while pending and time.monotonic() - wrote_at < bound_s + 5:
            for region in sorted(pending):
                count = await seen(region)
                timeline[region].append((round(time.monotonic() - wrote_at, 2), count))
                if count >= new:
                    pending.discard(region)
            await asyncio.sleep(0.25)
    return timeline


@contextlib.contextmanager
def started(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(check: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def listening(addr: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(f"http://{addr}/count", headers=cf("XX"), timeout=2)
        return True
    return False


async def show(
    info: dict[str, Any], namespace: str, workers: dict[str, str], args: argparse.Namespace
) -> None:
    urls = list(workers.values())
    print(f"\nSending {args.requests} requests per route from 8 clients, spread over {', '.join(workers)}:")
    answers = {route: await drive(urls, route, args.requests) for route in ("/naive", "/exact")}
    sent = Counter(a["country"] for a in answers["/exact"])
    print(f"\n{'country':8} {'sent':>6} {'naive':>6} {'exact':>6}  (counts read from central)")
    for country in COUNTRIES:
        naive = await central_count(info, namespace, f"naive:{country}")
        exact = await central_count(info, namespace, f"exact:{country}")
        print(f"{country:8} {sent[country]:>6} {naive:>6} {exact:>6}")
    retries = sum(a["attempts"] - 1 for a in answers["/exact"])
    print(f"exact: {retries} conditional writes retried after 412 Precondition Failed")

    print(f"\nAn update reaching the other regions lazily (propagation delay {args.propagation_delay:g} s):")
    timeline = await lazy_update(workers, "us", "NZ", args.propagation_delay)
    for region, points in timeline.items():
        shown = ", ".join(f"{t:.2f}s: {c}" for t, c in points[:3])
        if len(points) > 3:
            shown += f", ... {points[-1][0]:.2f}s: {points[-1][1]}"
        print(f"  {region} reads naive:NZ  {shown}")


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--regions", default="us,eu,ap")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--propagation-delay", type=float, default=5.0)
    args = parser.parse_args()
    if not WORKERD.exists():
        raise SystemExit(f"{WORKERD} is missing: run `make workerd` (npm package workerd)")
    tmp = Path(tempfile.mkdtemp(prefix="edgekv-workers-"))
    info_path = tmp / "edgekv.json"
    dev = [sys.executable, "-m", "edgekv", "dev", "--workerd", "--regions", args.regions]
    dev += ["--propagation-delay", str(args.propagation_delay), "--info-file", str(info_path)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(started(dev, tmp / "dev.log"))
        wait_for(info_path.exists, "edgekv dev")
        info = json.loads(info_path.read_text())
        r = httpx.post(
            f"{info['central']['http']}/client/v4/accounts/{info['account_id']}/storage/kv/namespaces",
            json={"title": "request-count"},
            headers={"authorization": f"Bearer {info['token']}"},
        )
        namespace = r.raise_for_status().json()["result"]["id"]
        workers: dict[str, str] = {}
        for region in info["regions"]:
            spec = worker_spec(info, region, namespace, f"127.0.0.1:{free_port()}")
            config = write_config(tmp / f"{region}.capnp", [spec])
            stack.enter_context(started([str(WORKERD), "serve", str(config)], tmp / f"workerd-{region}.log"))
            workers[region] = f"http://{spec.listen_addr}"
        for region, url in workers.items():
            wait_for(lambda u=url: listening(u.removeprefix("http://")), f"workerd {region}")
            print(f"Worker {region}: {url}  (env.REQUESTS -> replica {region}, {info['workerd'][region]})")
        asyncio.run(show(info, namespace, workers, args))
    print(f"\nstopped; logs in {tmp}")


if __name__ == "__main__":
    main()
