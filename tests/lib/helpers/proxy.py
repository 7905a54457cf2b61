"""A loopback TCP proxy a test can cut and restore (network partitions, C7).

    proxy = TcpProxy(upstream_port=central_grpc_port)
    await proxy.start()            # listens on 127.0.0.1:proxy.port
    await proxy.cut()              # close every connection; refuse new ones
    proxy.restore()                # accept and forward again
    await proxy.close()

While cut, new connections are accepted and closed at once (a refused connection),
so clients see the partition immediately rather than after keepalive timeouts.
Runs in the test's event loop; bytes are forwarded as they come, or, with
`latency_s` > 0, each chunk `latency_s` after it was read, in each direction (a
wide-area link: 0.04 gives an 80 ms round trip). Delayed chunks are pipelined, so
the delay adds latency without capping throughput; a connection's EOF is passed on
after its last chunk. `latency_s` may be changed while connections are open.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(
        self, upstream_port: int, upstream_host: str = "127.0.0.1", *, latency_s: float = 0.0
    ) -> None:
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        self.upstream = (upstream_host, upstream_port)
        self.latency_s = latency_s
        self.port = 0
        self.is_cut = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in pumps:
                t.cancel()
                self._tasks.discard(t)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.latency_s <= 0:
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.create_task(self._deliver(queue, writer))
        try:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await reader.read(65536):
                    queue.put_nowait((loop.time() + self.latency_s, data))
            queue.put_nowait((loop.time() + self.latency_s, b""))  # EOF, after the last chunk
            await deliver
        finally:
            deliver.cancel()

    @staticmethod
    async def _deliver(queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    return
                writer.write(data)
                await writer.drain()

    async def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore()`."""
        self.is_cut = True
        for w in list(self._writers):
            with contextlib.suppress(OSError, RuntimeError):
                w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.sleep(0)

    def restore(self) -> None:
        self.is_cut = False

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
