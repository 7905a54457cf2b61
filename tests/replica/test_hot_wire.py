"""The hot read on the wire (kvcore.serving `HotReadProtocol`): a replica's REST app served
by uvicorn on a loopback port, talked to over raw sockets. A hot read is answered
before any ASGI task, with the very bytes the ASGI path sends; pipelined requests keep
their order; whatever needs more of uvicorn than a keep-alive exchange goes through
ASGI as before."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from helpers.hot_edge import ACC, NS, PATH, SECRET, hot_edge, token

from kvcore.metrics import Metrics
from kvcore.model import Change, ChangeBatch, ChangeKind
from kvcore.rest.fastpath import JOIN_MAX_BYTES
from kvcore.serving import HotReadProtocol, http_server, serve_until
from replica.edge import EdgeState

pytestmark = pytest.mark.timeout(30)

KEEP_ALIVE_S = 1.0  # the served app's keep-alive timeout (edgekv's is 30 s)
SLOW_S = 2.0
HOT_GET = f"GET {PATH} HTTP/1.1\r\nhost: r\r\nauthorization: Bearer {SECRET}\r\n\r\n".encode()


class CountingApp:
    """The replica's app, counting the HTTP requests that reached it through ASGI."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.asgi_requests = 0
        self.hot_depths: list[int] = []  # the stack depth of each hot answer

    def hot_response(self, scope: Any, write: Any) -> bool:
        depth, frame = 0, sys._getframe()
        while frame is not None:
            depth, frame = depth + 1, frame.f_back
        self.hot_depths.append(depth)
        return bool(self.app.hot_response(scope, write))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.asgi_requests += 1
            if scope["path"] == "/slow":  # a request that outlasts the keep-alive timeout
                await asyncio.sleep(SLOW_S)
                headers = [(b"content-length", b"4")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": b"slow"})
                return
        await self.app(scope, receive, send)


@dataclass
class Served:
    app: CountingApp
    edge: EdgeState
    metrics: Metrics
    port: int

    @contextlib.asynccontextmanager
    async def remembered(self) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]]:
        """A connection whose first hot GET has been answered by the full path (which
        leaves the memo the hot path uses): (reader, writer, that response's bytes)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(HOT_GET)
            first, _, _ = await read_response(reader)
            yield reader, writer, first
        finally:
            writer.close()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    app, edge, metrics, _ = hot_edge()
    counting = CountingApp(app)
    server = http_server(counting, "127.0.0.1:0")
    assert server.config.http is HotReadProtocol
    server.config.timeout_keep_alive = KEEP_ALIVE_S  # read by each connection's protocol
    assert server.listen_sockets
    port = server.listen_sockets[0].getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(serve_until(server, stop))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield Served(counting, edge, metrics, port)
    finally:
        stop.set()
        await task


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One HTTP/1.1 response with a content-length: (its bytes, headers, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    body = await reader.readexactly(int(headers["content-length"]))
    return head + body, headers, body


async def test_a_hot_read_skips_asgi_and_sends_the_bytes_asgi_sends(served: Served) -> None:
    async with served.remembered() as (reader, writer, first):  # the full path remembers it
        assert served.app.asgi_requests == 1
        assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"\r\n\r\nvalue")
        assert b"x-edgekv-source: cache\r\n" in first
        hits = served.edge.hits
        for _ in range(3):
            writer.write(HOT_GET)
            repeat, _, _ = await read_response(reader)
            assert repeat == first  # the clock stands still: the same age, byte for byte
        assert served.app.asgi_requests == 1  # no repeat reached ASGI
        assert served.edge.hits == hits + 3  # each counted as a hit
        text = served.metrics.render().decode()
        assert 'edgekv_http_requests_total{code="200",method="GET",region="us",route="values"} 4.0' in text


async def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    async with served.remembered() as (reader, writer, _):
        # Hot reads around a request only ASGI answers (a query string takes the full path).
        query_get = HOT_GET.replace(b"/values/hot ", b"/values/hot?x=1 ")
        writer.write(HOT_GET + query_get + HOT_GET + b"GET /healthz HTTP/1.1\r\nhost: r\r\n\r\n" + HOT_GET)
        bodies = [(await read_response(reader))[2] for _ in range(5)]
        assert bodies[:3] == [b"value"] * 3 and bodies[4] == b"value"
        assert bodies[3] == b'{"status":"ok"}'
        assert served.app.asgi_requests == 1 + 2


async def test_a_revoked_token_is_refused_on_the_wire_at_once(served: Served) -> None:
    async with served.remembered() as (reader, writer, _):
        writer.write(HOT_GET)
        assert (await read_response(reader))[2] == b"value"
        revoke = Change(7, ChangeKind.TOKEN_REVOKE, 0.0, token=token("t1", ACC, SECRET))
        served.edge.apply_batch(ChangeBatch([revoke], 7, 7))
        writer.write(HOT_GET)
        response, _, _ = await read_response(reader)
        assert response.startswith(b"HTTP/1.1 401 ")
        assert served.app.asgi_requests == 2  # the first read and the refusal


async def test_a_long_pipelined_burst_behind_an_asgi_request_is_answered_whole(served: Served) -> None:
    """uvicorn queues requests pipelined behind one still running and starts each next one
    when the previous completes; hot reads complete at once, so 1,200 of them queued
    behind /healthz must be answered in a loop, not by recursion (Python's limit: 1,000)."""
    async with served.remembered() as (reader, writer, _):
        hits = served.edge.hits
        burst = 1200
        # One write: the server reads it in one go, /healthz's task starts on the next
        # loop iteration, and every hot read is queued behind it meanwhile.
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: r\r\n\r\n" + HOT_GET * burst)
        assert (await read_response(reader))[2] == b'{"status":"ok"}'
        for _ in range(burst):
            assert (await asyncio.wait_for(read_response(reader), 10))[2] == b"value"
        assert served.edge.hits == hits + burst
        assert served.app.asgi_requests == 2  # the first read and /healthz
        # Answered in a loop: queued reads are answered at one stack depth, however many.
        depths = served.app.hot_depths[1:]
        assert len(depths) == burst + 1 and max(depths) - min(depths) <= 4, (min(depths), max(depths))


async def test_a_request_read_with_a_hot_one_is_not_cut_by_the_keep_alive_timer(served: Served) -> None:
    """A hot answer arms the keep-alive timer as any finished response does; a request
    that arrived in the same read and then runs longer than the timeout must not have
    its connection closed under it."""
    async with served.remembered() as (reader, writer, _):
        writer.write(HOT_GET + b"GET /slow HTTP/1.1\r\nhost: r\r\n\r\n")
        assert (await read_response(reader))[2] == b"value"
        assert (await asyncio.wait_for(read_response(reader), SLOW_S + 5))[2] == b"slow"


async def test_a_value_over_join_max_bytes_is_written_after_its_head(served: Served) -> None:
    async with served.remembered() as (reader, writer, small):
        big = bytes(range(256)) * (JOIN_MAX_BYTES // 256 + 3)
        kind = ChangeKind.KEY_UPDATE
        update = Change(6, kind, 0.0, namespace_id=NS, account_id=ACC, key="hot", value=big, has_value=True)
        served.edge.apply_batch(ChangeBatch([update], 6, 6))
        for _ in range(2):
            writer.write(HOT_GET)
            response, headers, body = await read_response(reader)
            assert body == big and headers["etag"] == '"6"' and headers["content-length"] == str(len(big))
            assert (
                response.split(b"\r\n\r\n", 1)[0]
                .replace(b'"6"', b'"5"')
                .replace(str(len(big)).encode(), b"5")
                == small.split(b"\r\n\r\n", 1)[0]
            )  # the same head, but for version and length
        assert served.app.asgi_requests == 1


async def test_a_failing_hot_path_falls_back_to_asgi(served: Served) -> None:
    async with served.remembered():
        pass  # the hot read is remembered

    def broken(scope: Any, write: Any) -> bool:
        raise RuntimeError("boom")

    served.app.hot_response = broken  # type: ignore[method-assign]  # new connections take it
    async with served.remembered() as (_, _, response):
        assert response.endswith(b"\r\n\r\nvalue") and b"x-edgekv-source: cache\r\n" in response
    assert served.app.asgi_requests == 2  # both first reads, the second despite the memo


@pytest.mark.parametrize(
    ("request_bytes", "closes"),
    [
        (HOT_GET.replace(b"HTTP/1.1", b"HTTP/1.0"), True),
        (HOT_GET.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"), True),
        (HOT_GET.replace(b"\r\n\r\n", b"\r\nexpect: 100-continue\r\n\r\n"), False),
    ],
    ids=["http-1.0", "connection-close", "expect-100-continue"],
)
async def test_requests_needing_more_of_uvicorn_go_through_asgi(
    served: Served, request_bytes: bytes, closes: bool
) -> None:
    async with served.remembered() as (reader, writer, _):
        writer.write(request_bytes)
        _, headers, body = await read_response(reader)
        assert body == b"value" and headers["x-edgekv-source"] == "cache"
        assert served.app.asgi_requests == 2
        assert (headers.get("connection") == "close") is closes
        if closes:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # the server closed it


async def test_a_head_of_a_hot_key_goes_through_asgi_and_carries_no_body(served: Served) -> None:
    # HEAD is answered wherever GET is (24231a1): the hot path must not answer it (it
    # would write the value), so it takes ASGI, where uvicorn sends the head alone.
    async with served.remembered() as (reader, writer, first):
        head_req = HOT_GET.replace(b"GET ", b"HEAD ", 1)
        writer.write(head_req + HOT_GET + head_req + HOT_GET)
        got = []
        for method in ("HEAD", "GET", "HEAD", "GET"):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            body = b"" if method == "HEAD" else await reader.readexactly(int(headers["content-length"]))
            got.append(head + body)
        assert got[0] == got[2] == first[: -len(b"value")]  # GET's head, byte for byte
        assert got[1] == got[3] == first  # the hot GETs after it are whole and in step
        assert served.app.asgi_requests == 1 + 2  # each HEAD went through ASGI
        with contextlib.suppress(asyncio.TimeoutError):
            extra = await asyncio.wait_for(reader.read(1), 0.3)
            assert extra == b"", extra  # nothing left over (no body after a HEAD)
        text = served.metrics.render().decode()
        assert 'edgekv_http_requests_total{code="200",method="HEAD",region="us",route="values"} 2.0' in text


async def test_a_websocket_upgrade_is_refused_without_an_error_log(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn's websocket protocol is back (942de2f); edgekv serves no websocket. An app
    # that answers the upgrade with an HTTP response (the router's 404) makes uvicorn
    # log ERROR "ASGI callable returned without completing handshake" per request, so
    # any client could fill the log at ERROR level; a websocket.close is a quiet 403.
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        writer.write(
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        )
        got = await asyncio.wait_for(reader.read(), 5)
        assert got.startswith(b"HTTP/1.1 4"), got
    finally:
        writer.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= 40]
    assert errors == []
