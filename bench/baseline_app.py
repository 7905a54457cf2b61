"""The bare ASGI baseline: answers every request with the same bytes and headers as
the replica's hot read, served by the same `kvcore.serving.http_server` settings
(uvicorn, uvloop + httptools, one worker, access log off).

    python -m bench.baseline_app --addr 127.0.0.1:PORT --body FILE [--header 'name: value' ...]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from kvcore.serving import http_server, serve_until, stop_on_signals


def make_app(body: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    done = {"type": "http.response.body", "body": body}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(start)
        await send(done)

    return app


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--body", required=True, type=Path)
    ap.add_argument("--header", action="append", default=[])
    a = ap.parse_args()
    headers = []
    for h in a.header:
        name, _, value = h.partition(":")
        headers.append((name.strip().lower().encode(), value.strip().encode()))
    server = http_server(make_app(a.body.read_bytes(), headers), a.addr)
    stop = asyncio.Event()
    stop_on_signals(stop)
    await serve_until(server, stop)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
