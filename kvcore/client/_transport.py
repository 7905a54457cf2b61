"""Where a client's `Call`s meet the network, in a sync and an async flavour.

A transport sends through an httpx client: its own (closed with it) or one lent by the
caller (left open, so several bindings can share connections). The two flavours differ
only in `await`; what to send and how to read the answer is `kvcore.client._http`'s. A
request that cannot reach the server (refused, reset, timed out) is `Unavailable`.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import Generic, Self, TypeVar
from urllib.parse import urlsplit

import httpx

from kvcore.client._http import Call
from kvcore.errors import Unavailable

H = TypeVar("H", bound=httpx.Client | httpx.AsyncClient)


@contextlib.contextmanager
def _reaching(url: str) -> Iterator[None]:
    """Turns a transport failure on the way to `url` into `Unavailable` naming the host."""
    try:
        yield
    except httpx.TransportError as exc:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
        where = urlsplit(url).netloc or url
        raise Unavailable(f"request to {where} {kind}: {exc or type(exc).__name__}") from exc


class Transport(abc.ABC, Generic[H]):
    """The httpx client and the headers every request carries (auth, user agent)."""

    def __init__(self, headers: dict[str, str], timeout_s: float, http_client: H | None) -> None:
        self._headers = headers
        self._owns = http_client is None
        self._http: H = self._open(timeout_s) if http_client is None else http_client

    @abc.abstractmethod
    def _open(self, timeout_s: float) -> H:
        """A new httpx client of this flavour (sync or async), owned and closed by us."""


class SyncTransport(Transport[httpx.Client]):
    """Close it (or use `with`) when done."""

    def _open(self, timeout_s: float) -> httpx.Client:
        return httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        if self._owns:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: Call) -> httpx.Response:
        with _reaching(call.url):
            return self._http.request(call.method, call.url, **call.send_kwargs(self._headers))


class AsyncTransport(Transport[httpx.AsyncClient]):
    """Close it (or use `async with`) when done."""

    def _open(self, timeout_s: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        if self._owns:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: Call) -> httpx.Response:
        with _reaching(call.url):
            return await self._http.request(call.method, call.url, **call.send_kwargs(self._headers))
