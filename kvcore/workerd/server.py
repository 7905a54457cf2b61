"""The workerd listener: `WorkerdKV` on its own port, beside a replica's REST API.

workerd shows Worker code an error as `KV <METHOD> failed: <status> <reason phrase>`,
so the message must be in the status line. ASGI cannot set a reason phrase, so the app
names it in `REASON_HEADER` and this server's HTTP protocol (uvicorn's httptools one)
moves it into the status line of that response's header block, and drops the header.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

from kvcore.errors import StartupError
from kvcore.serving import HttpServer, JoinedWritesProtocol, http_server
from kvcore.settings import WORKERD_ADDR_FLAG
from kvcore.workerd.app import REASON_HEADER

_MARK = b"\r\n" + REASON_HEADER + b": "


def with_reason(head: bytes) -> bytes:
    """A response's header block with its `REASON_HEADER` value as the reason phrase."""
    at = head.find(_MARK)
    if at < 0 or not head.startswith(b"HTTP/1.1 "):
        return head
    end = head.index(b"\r\n", at + len(_MARK))
    reason = head[at + len(_MARK) : end]
    status_end = head.index(b"\r\n")
    status = head[9:12]
    return b"HTTP/1.1 " + status + b" " + reason + head[status_end:at] + head[end:]


class _ReasonTransport:
    """Wraps one response's transport: its first write is the header block."""

    __slots__ = ("_first", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._first = True

    def write(self, data: bytes) -> None:
        if self._first and not data.startswith(b"HTTP/1.1 100 "):  # not an interim 100 Continue
            self._first = False
            data = with_reason(data)
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Protocol(JoinedWritesProtocol):
    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and not isinstance(cycle.transport, _ReasonTransport):
            cycle.transport = _ReasonTransport(cycle.transport)  # type: ignore[assignment]


def workerd_server(
    app: Any, addr: str, sock: socket.socket | None = None
) -> tuple[HttpServer, list[socket.socket]]:
    """The server and its listening sockets: `sock` when the caller bound `addr`, else
    bound now (a port in use is a one-line `StartupError` naming `--workerd-addr`)."""
    server = http_server(app, addr, flag=WORKERD_ADDR_FLAG, sock=sock)
    server.config.http = _Protocol
    return server, list(server.listen_sockets or [])


@contextlib.asynccontextmanager
async def serving(app: Any, addr: str, sock: socket.socket | None = None) -> AsyncIterator[HttpServer]:
    """Serve `app` on `addr` (on `sock` when the caller bound it) while the block runs
    (its `bound_addr` is where it listens); stopped gracefully after it."""
    server, sockets = workerd_server(app, addr, sock)
    task = asyncio.create_task(server.serve(sockets=sockets), name="workerd")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise StartupError(f"{WORKERD_ADDR_FLAG}: could not start on {server.bound_addr}")
            await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        for sock in sockets:
            sock.close()
