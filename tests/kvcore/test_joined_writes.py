"""`kvcore.serving.JoinedWrites`: a response's head and body leave in one write, nothing
waits past the event loop's current iteration, and the bytes keep their order. First on
a recording transport, then on uvicorn over a loopback socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvloop

from kvcore.rest.fastpath import JOIN_MAX_BYTES
from kvcore.serving import JoinedWrites, JoinedWritesProtocol, http_server, serve_until

pytestmark = pytest.mark.timeout(30)


class Recorder:
    """A transport that keeps what is written to it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def joined() -> tuple[JoinedWrites, Recorder]:
    rec = Recorder()
    return JoinedWrites(rec, asyncio.get_running_loop()), rec  # type: ignore[arg-type]


async def test_head_and_body_written_in_one_step_leave_in_one_write() -> None:
    out, rec = joined()
    out.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    out.write(b"ok")
    assert rec.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    await asyncio.sleep(0)
    assert len(rec.writes) == 1  # the end-of-iteration flush found nothing held


async def test_a_lone_write_leaves_at_the_end_of_the_iteration() -> None:
    out, rec = joined()
    out.write(b"head")
    assert rec.writes == []
    await asyncio.sleep(0)
    assert rec.writes == [b"head"]
    out.write(b"next")  # held again, and flushed again
    await asyncio.sleep(0)
    assert rec.writes == [b"head", b"next"]


async def test_order_is_kept_and_large_writes_are_not_copied() -> None:
    out, rec = joined()
    big = b"x" * (JOIN_MAX_BYTES + 1)
    out.write(b"head")
    out.write(big)
    assert rec.writes == [b"head", big] and rec.writes[1] is big
    out.write(b"a")
    out.write_now(b"b")  # a hot answer: sent now, after what was held
    assert rec.writes[2:] == [b"ab"]
    out.write_now(b"c")
    assert rec.writes[3:] == [b"c"]
    await asyncio.sleep(0)
    assert b"".join(rec.writes) == b"head" + big + b"abc"


async def test_writelines_write_eof_and_abort_respect_what_is_held() -> None:
    out, rec = joined()
    big = b"y" * (JOIN_MAX_BYTES + 1)
    out.write(b"head")
    out.writelines([b"a", big])
    assert rec.writes == [b"heada", big] and rec.writes[1] is big
    out.write(b"tail")
    eofs: list[bool] = []
    rec.write_eof = lambda: eofs.append(True)  # type: ignore[attr-defined]
    out.write_eof()
    assert rec.writes[-1] == b"tail" and eofs == [True]
    out.write(b"dropped")
    aborted: list[bool] = []
    rec.abort = lambda: aborted.append(True)  # type: ignore[attr-defined]
    out.abort()
    await asyncio.sleep(0)
    assert aborted == [True] and b"dropped" not in rec.writes


async def test_close_sends_what_is_held_first_and_a_late_flush_writes_nothing() -> None:
    out, rec = joined()
    out.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    out.close()
    assert rec.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and rec.closed
    out2, rec2 = joined()
    out2.write(b"lost")
    rec2.closed = True  # the peer went away before the loop came round
    await asyncio.sleep(0)
    assert rec2.writes == []
    assert out2.get_extra_info("peername") == "info:peername"  # the rest is the transport's


# -- on the wire ---------------------------------------------------------------------


class Counted:
    """A transport (asyncio's or uvloop's) that counts the writes reaching it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        CountingProtocol.socket_writes += 1
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CountingProtocol(JoinedWritesProtocol):
    """The protocol with a counter under its `JoinedWrites`: writes that reach the socket."""

    socket_writes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counted(transport))  # type: ignore[arg-type]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":  # a body in two parts, with a pause between them
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"def"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[int]:
    """`app` served by `http_server` (with a write counter) on a loopback port: the port."""
    server = http_server(app, "127.0.0.1:0")
    assert server.config.http is JoinedWritesProtocol  # every edgekv server's protocol
    server.config.http = CountingProtocol
    assert server.listen_sockets
    stop = asyncio.Event()
    task = asyncio.create_task(serve_until(server, stop))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield server.listen_sockets[0].getsockname()[1]
    finally:
        stop.set()
        await task


@pytest.fixture
async def port() -> AsyncIterator[int]:
    async with serving() as p:
        yield p


async def test_responses_leave_in_one_socket_write_each_and_arrive_whole(port: int) -> None:
    await one_write_each(port)


def test_the_same_on_uvloop_the_servers_loop() -> None:
    async def scenario() -> None:
        async with serving() as port:
            await one_write_each(port)
            await upgrade_is_answered(port)

    uvloop.run(scenario())


async def test_a_websocket_upgrade_is_answered_not_left_waiting(port: int) -> None:
    await upgrade_is_answered(port)


async def upgrade_is_answered(port: int) -> None:
    """No edgekv app serves websockets: an upgrade request gets uvicorn's refusal (here
    500: the app returns without a handshake), whole, as before the joined writes (the
    websocket protocol writes through them too)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        )
        got = await asyncio.wait_for(reader.read(), 5)  # answered whole, then closed
        assert got.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5")), got  # this app accepts none
        head, _, body = got.partition(b"\r\n\r\n")
        assert b"content-length: %d" % len(body) in head.lower(), got
    finally:
        writer.close()


async def one_write_each(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        CountingProtocol.socket_writes = 0
        for _ in range(5):
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and await reader.readexactly(2) == b"ok"
        assert CountingProtocol.socket_writes == 5
        # A streamed body: the head goes with its first part, the rest when it comes.
        writer.write(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        assert await reader.readexactly(6) == b"abcdef"
        assert CountingProtocol.socket_writes == 5 + 2
        # HEAD: uvicorn writes the head alone; it still leaves (at the end of the iteration).
        writer.write(b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 OK\r\n")
        # Connection: close: the whole response, then the end of the stream.
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        rest = await asyncio.wait_for(reader.read(), 5)
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and rest.endswith(b"\r\n\r\nok")
    finally:
        writer.close()


async def test_a_client_that_half_closes_still_gets_a_lone_write(port: int) -> None:
    # `printf 'HEAD ...' | nc -N`: the request, then the client's end of the stream. uvicorn
    # closes the transport on that EOF (a poll after the answer was written), so a write
    # still held then (a HEAD's head, written alone) must leave before the close.
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")
            writer.write_eof()
            got = await asyncio.wait_for(reader.read(), 5)
            assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\n")
        finally:
            writer.close()
