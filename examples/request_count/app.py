"""Request counting per country: the classic Workers + KV demo, run next to one region.

Every request is counted under the caller's country (`CF-IPCountry`, as Cloudflare sets
it; `XX` when absent) and answered with that country's count so far. Two versions:

- `GET /naive`: read, add one, write. This is what the demo does on Cloudflare, and it
  loses increments: two concurrent requests read the same count and both write count+1,
  and a region reading its cached copy can lag behind writes made in another region.
- `GET /exact`: the same read-modify-write made exact with edgekv's conditional writes:
  read the latest value and its version from central (`consistency="strong"`), write
  with `If-Match: <version>` (or `If-None-Match: *` for the first request), and on
  `412 Precondition Failed` read again and retry.

The two keep separate counters (`naive:<CC>` and `exact:<CC>`). `GET /count?mode=` shows
both counts for a country (strong reads).

Run (see README.md): `uvicorn app:app --port 8100` with EDGEKV_ENDPOINT (the region's
URL), EDGEKV_ACCOUNT_ID, EDGEKV_API_TOKEN and EDGEKV_NAMESPACE_ID set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kvcore.client import AsyncKVNamespace, PreconditionFailed

MAX_ATTEMPTS = 100
BACKOFF_CAP_S = 0.1


def country_of(request: Request) -> str:
    return (request.headers.get("cf-ipcountry") or "XX").strip().upper() or "XX"


def binding_from_env() -> AsyncKVNamespace:
    try:
        return AsyncKVNamespace(
            os.environ["EDGEKV_ENDPOINT"],
            os.environ["EDGEKV_ACCOUNT_ID"],
            os.environ["EDGEKV_NAMESPACE_ID"],
            os.environ["EDGEKV_API_TOKEN"],
        )
    except KeyError as exc:
        raise RuntimeError(f"set {exc.args[0]} (see README.md)") from None


async def count_naive(kv: AsyncKVNamespace, country: str) -> int:
    key = f"naive:{country}"
    count = int(await kv.get(key) or 0) + 1
    await kv.put(key, str(count))
    return count


async def count_exact(kv: AsyncKVNamespace, country: str) -> tuple[int, int]:
    """`(count, attempts)`: compare-and-set until our increment is the one that lands."""
    key = f"exact:{country}"
    for attempt in range(1, MAX_ATTEMPTS + 1):
        value, version = await kv.get_with_version(key, consistency="strong")
        count = int(value or 0) + 1
        try:
            if version is None:
                await kv.put(key, str(count), if_none_match=True)
            else:
                await kv.put(key, str(count), if_match=version)
            return count, attempt
        except PreconditionFailed:
            # Someone else wrote first: back off a little (jittered) and read again.
            await asyncio.sleep(random.uniform(0, min(BACKOFF_CAP_S, 0.002 * 2**attempt)))
    raise RuntimeError(f"{key}: gave up after {MAX_ATTEMPTS} conflicting attempts")


def create_app(kv: AsyncKVNamespace | None = None) -> Starlette:
    """The app; with no binding given, one is built from the environment at startup."""

    def binding(request: Request) -> AsyncKVNamespace:
        return request.app.state.kv  # type: ignore[no-any-return]

    async def naive(request: Request) -> JSONResponse:
        country = country_of(request)
        count = await count_naive(binding(request), country)
        return JSONResponse({"mode": "naive", "country": country, "count": count})

    async def exact(request: Request) -> JSONResponse:
        country = country_of(request)
        try:
            count, attempts = await count_exact(binding(request), country)
        except RuntimeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse({"mode": "exact", "country": country, "count": count, "attempts": attempts})

    async def counts(request: Request) -> JSONResponse:
        country = request.query_params.get("country") or country_of(request)
        kv = binding(request)
        result: dict[str, object] = {"country": country}
        for mode in ("naive", "exact"):
            result[mode] = int(await kv.get(f"{mode}:{country}", consistency="strong") or 0)
        return JSONResponse(result)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = None
        if getattr(app.state, "kv", None) is None:
            owned = app.state.kv = binding_from_env()
        try:
            yield
        finally:
            if owned is not None:
                await owned.aclose()

    app = Starlette(
        routes=[Route("/naive", naive), Route("/exact", exact), Route("/count", counts)],
        lifespan=lifespan,
    )
    app.state.kv = kv
    return app


app = create_app()
