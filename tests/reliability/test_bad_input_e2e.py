"""Bad input through real processes: a replica (which forwards to central over gRPC)
and central itself, over real HTTP sockets.

tests/kvcore/rest/test_http.py checks the REST app in-process against a local store.
Here the same kinds of input go through `edgekv replica` and `edgekv central`: oversized
keys, values, metadata and bulk bodies (also refused by a declared Content-Length
before the body is sent), invalid UTF-8 and percent-encoding in keys (also as raw
bytes on the wire), wrong content types, truncated multipart, huge, negative and
non-finite query numbers, unknown namespaces and accounts, bad tokens. Each must be a
4xx with exactly Cloudflare's failure envelope, and the store must be unchanged:
central's committed seq, the key listing and the namespace listing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx
import pytest
from helpers.cluster import (
    Proc,
    create_account,
    start_central,
    start_replica,
    stop_all,
    wait_ready,
)
from reliability_support import assert_envelope, committed_seq

from kvcore.limits import MAX_BULK_BODY_BYTES, MAX_VALUE_BYTES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@dataclass
class Env:
    central: Proc
    replica: Proc
    account: str
    secret: str
    ns: str

    def base(self, target: str) -> str:
        p = self.central if target == "central" else self.replica
        return str(p.http)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("badinput")
    central = start_central(tmp, propagation_delay=1.0)
    procs = [central]
    try:
        replica = start_replica(tmp, central.grpc, "eu")
        procs.append(replica)
        account, secret = asyncio.run(create_account(central.grpc))
        h = {"authorization": f"Bearer {secret}"}
        root = f"{central.http}/client/v4/accounts/{account}/storage/kv/namespaces"
        r = httpx.post(root, json={"title": "bad-input"}, headers=h)
        r.raise_for_status()
        ns = r.json()["result"]["id"]
        httpx.put(f"{root}/{ns}/values/keep", content=b"v", headers=h).raise_for_status()
        wait_ready(replica.http, proc=replica)
        yield Env(central, replica, account, secret, ns)
    finally:
        stop_all(list(reversed(procs)))


def _multipart(parts: list[tuple[str, bytes]], boundary: str = "xyz") -> tuple[bytes, str]:
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n'.encode() + d + b"\r\n"
        for n, d in parts
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def _chunks(total: int, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """A streamed body (Transfer-Encoding: chunked): only the server's running count can
    refuse it."""
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield b"x" * n
        sent += n


async def raw_request(base: str, head: bytes, body: bytes = b"") -> httpx.Response:
    """Send hand-made request bytes (lying Content-Length, raw non-ASCII path bytes) and
    parse the response; the server must answer without waiting for the missing body."""
    u = urlsplit(base)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(u.hostname, u.port), 5)
    try:
        writer.write(head + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b""):
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        content = await asyncio.wait_for(reader.readexactly(n), 10) if n else b""
    finally:
        writer.close()
    status = int(status_line.split()[1])
    request = httpx.Request("RAW", base + head.split(b" ")[1].decode("latin-1"))
    return httpx.Response(status, headers=headers, content=content, request=request)


def _head(method: str, base: str, path: bytes, secret: str, headers: dict[str, str]) -> bytes:
    host = urlsplit(base).netloc
    lines = [f"{method} ".encode() + path + b" HTTP/1.1", f"Host: {host}".encode()]
    lines.append(f"Authorization: Bearer {secret}".encode())
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _snapshot(env: Env, client: httpx.AsyncClient, base: str) -> tuple[int, list[str], list[str]]:
    h = {"authorization": f"Bearer {env.secret}"}
    root = f"{base}/client/v4/accounts/{env.account}/storage/kv/namespaces"
    keys = (await client.get(f"{root}/{env.ns}/keys", headers=h)).json()["result"]
    namespaces = (await client.get(root, headers=h)).json()["result"]
    return await committed_seq(env.central), [k["name"] for k in keys], [n["id"] for n in namespaces]


@pytest.mark.parametrize("target", ["replica", "central"])
async def test_bad_input_gets_a_4xx_envelope_and_changes_nothing(env: Env, target: str) -> None:
    base = env.base(target)
    acct = env.account
    root = f"{base}/client/v4/accounts/{acct}/storage/kv/namespaces"
    p = f"{root}/{env.ns}"
    raw_p = f"/client/v4/accounts/{acct}/storage/kv/namespaces/{env.ns}".encode()
    h = {"authorization": f"Bearer {env.secret}"}
    mp_ok, mp_type = _multipart([("value", b"v"), ("metadata", b'{"a":1}')])
    mp_big_meta, _ = _multipart([("value", b"v"), ("metadata", json.dumps("m" * 1100).encode())])
    mp_big_value, _ = _multipart([("value", b"x" * (MAX_VALUE_BYTES + 1))])
    zero_ns, other_acct = "0" * 32, "f" * 32

    async with httpx.AsyncClient(timeout=60) as c:
        before = await _snapshot(env, c, base)
        before_central = await _snapshot(env, c, env.central.http)
        assert before[1] == ["keep"]

        def put(path: str, **kw: object) -> object:
            headers = {**h, **kw.pop("headers", {})}  # type: ignore[dict-item]
            return c.put(path, headers=headers, **kw)  # type: ignore[arg-type]

        cases: list[tuple[str, object, int | None]] = [
            # keys: too long, not UTF-8, bad percent-encoding, reserved
            (
                "key of 513 bytes",
                put(f"{p}/values/{'k' * 513}", content=b"v"),
                414,
            ),  # Cloudflare: a key too long for the URL is a 414
            ("key of 514 UTF-8 bytes", put(f"{p}/values/{quote('é' * 257)}", content=b"v"), 414),
            ("key '.'", put(f"{p}/values/%2E", content=b"v"), 400),
            ("key '..'", put(f"{p}/values/%2E%2E", content=b"v"), 400),
            ("bad percent %zz", put(f"{p}/values/bad%zz", content=b"v"), 400),
            ("truncated percent", put(f"{p}/values/bad%4", content=b"v"), 400),
            ("invalid UTF-8 put", put(f"{p}/values/bad%FF%FE", content=b"v"), 400),
            ("invalid UTF-8 get", c.get(f"{p}/values/bad%C3%28", headers=h), 400),
            ("bad percent get", c.get(f"{p}/values/bad%zz", headers=h), 400),
            ("surrogate get", c.get(f"{p}/values/%ED%A0%80", headers=h), 400),
            ("long key get", c.get(f"{p}/values/{'k' * 513}", headers=h), 414),
            ("invalid UTF-8 metadata get", c.get(f"{p}/metadata/bad%FF", headers=h), 400),
            ("invalid UTF-8 delete", c.delete(f"{p}/values/bad%FF", headers=h), 400),
            # values and metadata over the limits
            ("value of 25 MiB + 1", put(f"{p}/values/big", content=b"x" * (MAX_VALUE_BYTES + 1)), 413),
            (
                "value of 25 MiB + 1, chunked (no Content-Length)",
                put(f"{p}/values/big", content=_chunks(MAX_VALUE_BYTES + 1)),
                413,
            ),
            (
                "multipart value of 25 MiB + 1",
                put(f"{p}/values/big", content=mp_big_value, headers={"content-type": mp_type}),
                413,
            ),
            (
                "metadata > 1024 bytes",
                put(f"{p}/values/k", content=mp_big_meta, headers={"content-type": mp_type}),
                413,
            ),
            # multipart and content types
            (
                "truncated multipart",
                put(f"{p}/values/k", content=mp_ok[:-10], headers={"content-type": mp_type}),
                400,
            ),
            (
                "multipart without boundary",
                put(f"{p}/values/k", content=mp_ok, headers={"content-type": "multipart/form-data"}),
                400,
            ),
            ("multipart junk", put(f"{p}/values/k", content=b"junk", headers={"content-type": mp_type}), 400),
            (
                "bulk as form",
                put(
                    f"{p}/bulk",
                    content=b"key=v",
                    headers={"content-type": "application/x-www-form-urlencoded"},
                ),
                400,
            ),
            (
                "bulk as text/plain",
                put(
                    f"{p}/bulk", content=b'[{"key":"a","value":"b"}]', headers={"content-type": "text/plain"}
                ),
                400,
            ),
            (
                "namespace as text",
                c.post(root, content=b"title=x", headers={**h, "content-type": "text/plain"}),
                400,
            ),
            # query numbers: negative, huge, not numbers
            *[
                (f"{name}={v}", put(f"{p}/values/k", params={name: v}, content=b"v"), 400)
                for name in ("expiration", "expiration_ttl")
                for v in ("-5", "-1e9", "9" * 30, "1e400", "inf", "nan", "abc", "")
            ],
            (
                "expiration_ttl below 60",
                put(f"{p}/values/k", params={"expiration_ttl": "30"}, content=b"v"),
                400,
            ),
            ("expiration in the past", put(f"{p}/values/k", params={"expiration": "10"}, content=b"v"), 400),
            *[
                (f"limit={v}", c.get(f"{p}/keys", params={"limit": v}, headers=h), 400)
                for v in ("0", "9", "1001", "-5", "99999999999999999999", "1.5", "ten")
            ],
            *[
                (f"{name}={v}", c.get(root, params={name: v}, headers=h), 400)
                for name in ("page", "per_page")
                for v in ("0", "-1", "99999999999999999999", "1e30", "x")
            ],
            ("per_page=1001", c.get(root, params={"per_page": "1001"}, headers=h), 400),
            ("bad cursor", c.get(f"{p}/keys", params={"cursor": "!!not a cursor!!"}, headers=h), 400),
            # bulk bodies
            (
                "bulk of 10,001 items",
                put(f"{p}/bulk", json=[{"key": f"b{i}", "value": "v"} for i in range(10_001)]),
                413,
            ),
            ("bulk delete of 10,001", c.post(f"{p}/bulk/delete", json=["x"] * 10_001, headers=h), 413),
            (
                "bulk get of 101",
                c.post(f"{p}/bulk/get", json={"keys": [f"k{i}" for i in range(101)]}, headers=h),
                400,
            ),
            (
                "bulk with an empty key",
                put(f"{p}/bulk", json=[{"key": "ok", "value": "v"}, {"key": "", "value": "v"}]),
                400,
            ),
            ("bulk with a 513-byte key", put(f"{p}/bulk", json=[{"key": "k" * 513, "value": "v"}]), 400),
            ("bulk bad base64", put(f"{p}/bulk", json=[{"key": "b", "value": "%%", "base64": True}]), 400),
            (
                "bulk metadata > 1024",
                put(f"{p}/bulk", json=[{"key": "ok", "value": "v", "metadata": "m" * 2000}]),
                413,
            ),
            (
                "bulk negative ttl",
                put(f"{p}/bulk", json=[{"key": "ok", "value": "v", "expiration_ttl": -60}]),
                400,
            ),
            (
                "bulk huge expiration",
                put(f"{p}/bulk", json=[{"key": "ok", "value": "v", "expiration": 1e300}]),
                400,
            ),
            ("bulk value not a string", put(f"{p}/bulk", json=[{"key": "ok", "value": 5}]), 400),
            ("bulk not an array", put(f"{p}/bulk", json={"key": "ok", "value": "v"}), 400),
            (
                "bulk truncated JSON",
                put(f"{p}/bulk", content=b'[{"key":', headers={"content-type": "application/json"}),
                400,
            ),
            ("bulk delete non-string", c.post(f"{p}/bulk/delete", json=["ok", 5], headers=h), 400),
            # unknown namespaces and accounts, bad tokens, routes, methods
            ("unknown namespace get", c.get(f"{root}/{zero_ns}/values/k", headers=h), 404),
            ("unknown namespace put", put(f"{root}/{zero_ns}/values/k", content=b"v"), 404),
            ("unknown namespace keys", c.get(f"{root}/{zero_ns}/keys", headers=h), 404),
            ("unknown namespace bulk", put(f"{root}/{zero_ns}/bulk", json=[{"key": "a", "value": "b"}]), 404),
            ("unknown namespace rename", put(f"{root}/{zero_ns}", json={"title": "x"}), 404),
            ("unknown namespace delete", c.delete(f"{root}/{zero_ns}", headers=h), 404),
            ("malformed namespace", c.get(f"{root}/nothex/values/k", headers=h), 400),
            (
                "unknown account",
                c.get(
                    f"{base}/client/v4/accounts/{other_acct}/storage/kv/namespaces/{env.ns}/values/keep",
                    headers=h,
                ),
                403,
            ),
            (
                "unknown account put",
                put(
                    f"{base}/client/v4/accounts/{other_acct}/storage/kv/namespaces/{env.ns}/values/keep",
                    content=b"w",
                ),
                403,
            ),
            (
                "malformed account",
                c.get(f"{base}/client/v4/accounts/{'a' * 40}/storage/kv/namespaces", headers=h),
                None,
            ),
            ("no token", c.put(f"{p}/values/keep", content=b"w"), 401),
            (
                "unknown token",
                c.put(f"{p}/values/keep", content=b"w", headers={"authorization": "Bearer nope-nope-nope"}),
                401,
            ),
            ("unknown route", c.get(f"{base}/client/v4/nowhere", headers=h), 404),
            ("wrong method", c.patch(f"{p}/values/keep", content=b"w", headers=h), 405),
        ]
        # Sent one at a time (the 25 MiB body and the 10,001-item bulks are the heavy ones).
        results = []
        for what, call, status in cases:
            results.append((what, await call, status))  # type: ignore[misc]

        # Declared sizes over the limits, refused before the body is sent.
        big_value = _head(
            "PUT",
            base,
            raw_p + b"/values/big",
            env.secret,
            {"content-type": "application/octet-stream", "content-length": str(MAX_VALUE_BYTES + 1)},
        )
        big_bulk = _head(
            "PUT",
            base,
            raw_p + b"/bulk",
            env.secret,
            {"content-type": "application/json", "content-length": str(MAX_BULK_BODY_BYTES + 1)},
        )
        big_bulk_delete = _head(
            "POST",
            base,
            raw_p + b"/bulk/delete",
            env.secret,
            {"content-type": "application/json", "content-length": str(MAX_BULK_BODY_BYTES + 1)},
        )
        bad_length = _head("PUT", base, raw_p + b"/values/k", env.secret, {"content-length": "12abc"})
        results += [
            ("declared value of 25 MiB + 1", await raw_request(base, big_value, b"xxxx"), 413),
            ("declared bulk of 100 MB + 1", await raw_request(base, big_bulk, b'[{"key":'), 413),
            ("declared bulk delete of 100 MB + 1", await raw_request(base, big_bulk_delete, b'["a"'), 413),
        ]
        # Non-ASCII bytes on the wire: the HTTP parser may reject them itself (a plain 400);
        # when the request reaches the app it must be the envelope.
        raw_utf8 = _head("PUT", base, raw_p + b"/values/bad\xff\xfe", env.secret, {"content-length": "1"})
        raw_get = _head("GET", base, raw_p + b"/values/bad\xc3\x28", env.secret, {})
        transport_level = [
            ("raw invalid UTF-8 put", await raw_request(base, raw_utf8, b"v")),
            ("raw invalid UTF-8 get", await raw_request(base, raw_get)),
            ("malformed Content-Length", await raw_request(base, bad_length, b"v")),
        ]

        problems = []
        for what, r, status in results:
            try:
                assert_envelope(r, status)
            except AssertionError as exc:
                problems.append(f"{what}: {exc}")
        for what, r in transport_level:
            if not 400 <= r.status_code < 500:
                problems.append(f"{what}: {r.status_code} {r.text[:200]!r}")
            elif r.headers.get("content-type", "").startswith("application/json"):
                try:
                    assert_envelope(r)
                except AssertionError as exc:
                    problems.append(f"{what}: {exc}")
        transport = {what: (r.status_code, r.headers.get("content-type")) for what, r in transport_level}
        print(f"\n{target}: {len(results)} bad requests, each a 4xx envelope; raw-byte cases {transport}")
        assert not problems, "\n".join(problems)

        # Nothing changed, at central and as seen through the target.
        assert await _snapshot(env, c, base) == before
        assert await _snapshot(env, c, env.central.http) == before_central
        r = await c.get(f"{p}/values/keep", headers=h)
        assert r.status_code == 200 and r.content == b"v"
