"""The test proxy's latency option (a wide-area link for the geo benchmark): every
chunk is delayed in each direction, bytes stay in order, and EOF is passed on."""

from __future__ import annotations

import asyncio
import time

from helpers.proxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_latency_delays_each_direction_and_keeps_order() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await TcpProxy(port, latency_s=0.05).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        t0 = time.monotonic()
        writer.write(b"ping")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        assert time.monotonic() - t0 >= 0.095  # 50 ms there and 50 ms back (a lower bound)
        # Many chunks in flight at once are pipelined, not serialised, and stay in order.
        chunks = [b"%05d" % i for i in range(200)]
        t0 = time.monotonic()
        for c in chunks:
            writer.write(c)
            await writer.drain()
            await asyncio.sleep(0)
        got = await asyncio.wait_for(reader.readexactly(5 * len(chunks)), 10)
        assert got == b"".join(chunks)
        assert time.monotonic() - t0 < 5  # 200 x 100 ms would be 20 s if serialised
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # EOF made it through
        writer.close()
    finally:
        await proxy.close()
        server.close()


async def test_no_latency_by_default_and_negative_rejected() -> None:
    assert TcpProxy(1).latency_s == 0.0
    try:
        TcpProxy(1, latency_s=-1)
    except ValueError:
        pass
    else:
        raise AssertionError("negative latency accepted")
