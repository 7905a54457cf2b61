"""Expiration bounds (issue 11), exactly at the edges, with an injected clock at a
fractional second (`now = T + 0.75`), on every write path served in-process: raw PUT,
multipart PUT, bulk PUT, the Python binding (sync and async) and the bulk file of the CLI.

- low end in whole seconds: `expiration = floor(now) + 60` and `expiration_ttl = 60` are
  accepted, one second less is refused (400 / 10001), as Cloudflare and Miniflare;
- high end 2^31-1: an absolute expiration past it, or now + TTL past it, is refused with
  a message naming milliseconds.
The same rules through real processes (replica, central's gRPC, the CLI) are in
tests/e2e/test_expiration_bounds_e2e.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.tokens import create_token

from central.rest_backend import StoreBackend
from kvcore import limits
from kvcore.client import AsyncKVNamespace, KVClient
from kvcore.client.bulkfile import BulkFileError, parse_put_items
from kvcore.clock import ManualClock
from kvcore.errors import ValidationError
from kvcore.metrics import Metrics
from kvcore.model import Permission
from kvcore.rest.app import create_app
from kvcore.store.ops import CreateNamespaceOp
from kvcore.store.rocks import RocksStore

ACCOUNT = "0123456789abcdef0123456789abcdef"
T = 1_700_000_000
MAX = 2**31 - 1
NOW_MS = T * 1000


def test_limits_state_the_bounds_once() -> None:
    assert limits.MIN_EXPIRATION_TTL_S == 60 and limits.MIN_EXPIRATION_AHEAD_S == 60
    assert limits.MAX_EXPIRATION_EPOCH_S == MAX
    now = T + 0.75
    assert limits.resolve_expiration(now, T + 60, None) == T + 60
    assert limits.resolve_expiration(now, None, 60) == T + 60
    assert limits.resolve_expiration(now, None, 60.9) == T + 60  # fractions dropped
    assert limits.resolve_expiration(now, MAX, None) == MAX
    assert limits.resolve_expiration(now, None, MAX - T) == MAX
    assert limits.resolve_expiration(now, T + 5, 120) == T + 120  # the TTL wins
    with pytest.raises(ValidationError, match="milliseconds"):  # yet a unit mistake is refused,
        limits.resolve_expiration(now, NOW_MS, 120)  # as workerd's int32 options refuse it
    for exp, ttl, words in (
        (T + 59, None, "at least 60 seconds in the future"),
        (None, 59, "Expiration TTL must be at least 60"),
        (NOW_MS, None, "looks like epoch milliseconds"),
        (MAX + 1, None, "not milliseconds"),
        (None, MAX - T + 1, "not milliseconds"),
        (None, 2**40, "not milliseconds"),
    ):
        with pytest.raises(ValidationError, match=words):
            limits.resolve_expiration(now, exp, ttl)
    # What central's gRPC checks of an expiration a replica resolved: bounds, and future.
    assert limits.check_forwarded_expiration(now, T + 1) == T + 1
    for exp in (T, NOW_MS, MAX + 1, 0):
        with pytest.raises(ValidationError):
            limits.check_forwarded_expiration(now, exp)


class Server:
    def __init__(self, path: Path) -> None:
        self.clock = ManualClock(T + 0.75)
        self.store = RocksStore(str(path / "store"), clock=self.clock)
        self.app = create_app(StoreBackend(self.store, clock=self.clock), Metrics("central"))
        _, self.secret = create_token(self.store, ACCOUNT, Permission.WRITE)
        self.ns = self.store.run(CreateNamespaceOp(ACCOUNT, "bounds")).id
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://edgekv",
            headers={"authorization": f"Bearer {self.secret}"},
        )
        self.prefix = f"/client/v4/accounts/{ACCOUNT}/storage/kv/namespaces/{self.ns}"

    async def raw(self, **params: Any) -> httpx.Response:
        return await self.http.put(f"{self.prefix}/values/k", content=b"v", params=params)

    async def multipart(self, **params: Any) -> httpx.Response:
        files = {"value": ("value", b"v"), "metadata": (None, '{"m":1}', "application/json")}
        return await self.http.put(f"{self.prefix}/values/k", files=files, params=params)

    async def bulk(self, **fields: Any) -> httpx.Response:
        return await self.http.put(f"{self.prefix}/bulk", json=[{"key": "k", "value": "v", **fields}])


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    s = Server(tmp_path)
    try:
        yield s
    finally:
        await s.http.aclose()
        s.store.close()


ACCEPTED = [{"expiration": T + 60}, {"expiration_ttl": 60}, {"expiration": MAX}, {"expiration_ttl": MAX - T}]
REFUSED = [
    ({"expiration": T + 59}, "at least 60 seconds"),
    ({"expiration_ttl": 59}, "at least 60"),
    ({"expiration": NOW_MS}, "milliseconds"),
    ({"expiration": MAX + 1}, "milliseconds"),
    ({"expiration_ttl": MAX - T + 1}, "milliseconds"),
    ({"expiration_ttl": 1099511627776}, "milliseconds"),
]


@pytest.mark.parametrize("path", ["raw", "multipart", "bulk"])
async def test_rest_write_paths(server: Server, path: str) -> None:
    send = getattr(server, path)
    for fields in ACCEPTED:
        r = await send(**fields)
        assert r.status_code == 200, (fields, r.text)
        expected = fields.get("expiration") or T + fields["expiration_ttl"]
        assert server.store.get(ACCOUNT, server.ns, "k").expiration == expected  # type: ignore[union-attr]
    for fields, words in REFUSED:
        r = await send(**fields)
        assert r.status_code == 400, (fields, r.text)
        error = r.json()["errors"][0]
        assert error["code"] == 10001 and words in error["message"], (fields, error)


async def test_binding_checks_before_sending(server: Server) -> None:
    kv = AsyncKVNamespace(  # the binding's own clock reads the same instant as the server's
        "http://edgekv", ACCOUNT, server.ns, server.secret, http_client=server.http, clock=server.clock
    )
    await kv.put("a", "v", expiration=T + 60)
    await kv.put("b", "v", expiration_ttl=60, metadata={"m": 1})
    listed = {k["name"]: k["expiration"] for k in (await kv.list()).keys}
    assert listed == {"a": T + 60, "b": T + 60}
    sent_before = server.store.committed_seq
    for fields, words in REFUSED:
        with pytest.raises(ValidationError, match=words):
            await kv.put("c", "v", **fields)
    assert server.store.committed_seq == sent_before  # nothing reached the server


def test_client_bulk_put_and_cli_bulk_file_check_before_sending(tmp_path: Path) -> None:
    clock = ManualClock(T + 0.75)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"nothing should be sent: {request.url}")

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    with KVClient("http://edgekv", ACCOUNT, "secret", http_client=http, clock=clock) as client:
        for fields, words in REFUSED:
            with pytest.raises(ValidationError, match=words):
                client.bulk_put("0" * 32, [{"key": "ok", "value": "v"}, {"key": "k", "value": "v", **fields}])
    for fields in ACCEPTED:
        assert parse_put_items([{"key": "k", "value": "v", **fields}], now=clock.now())
    for fields, words in REFUSED:
        doc = json.loads(json.dumps([{"key": "k", "value": "v", **fields}]))
        with pytest.raises(BulkFileError, match=words):
            parse_put_items(doc, now=clock.now())
