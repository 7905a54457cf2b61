"""Unit tests of the REST app's input parsing, envelope, route table and route labels."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_support import make_env

from kvcore.errors import AuthenticationError, KeyTooLong, PayloadTooLarge, ValidationError
from kvcore.limits import MAX_VALUE_BYTES
from kvcore.model import Condition
from kvcore.rest import envelope
from kvcore.rest.auth import bearer_secret
from kvcore.rest.handlers import client_metadata
from kvcore.rest.parsing import (
    decode_segment,
    parse_condition,
    parse_json_body,
    parse_multipart_value,
    query_int,
    query_number,
    read_capped,
)
from kvcore.rest.routing import Route, RouteTable
from kvcore.rest.target import key_name

PATH = b"/client/v4/accounts/acc/storage/kv/namespaces/" + b"a" * 32


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouteTable]:
    """The route table of a real app (central's)."""
    env = make_env(tmp_path_factory.mktemp("table"))
    yield env.app.table
    env.store.close()


def key_from_raw_path(table: RouteTable, raw_path: bytes) -> str:
    """The key of a value or metadata path: cut by the route table, decoded by `target`."""
    found = table.lookup(raw_path, "GET")
    assert found is not None and found[2] is None, raw_path
    return key_name(found[1]["key_name"])


def route_label(table: RouteTable, path: str, method: str) -> str:
    """The metrics label of a request: the name of the route that matched, else "other"."""
    found = table.lookup(path.encode(), method)
    return "other" if found is None else found[0].name


def sdk_quote(key: str) -> str:
    """The Python SDK's path-segment encoding (RFC 3986 pchar set left literal)."""
    return quote(key, safe=":@!$&'()*+,;=-._~")


def uri_component(key: str) -> str:
    """JavaScript's encodeURIComponent, as wrangler uses."""
    return quote(key, safe="-_.!~*'()")


SPECIAL = ["a/b", "q?x", "100%", "#frag", "sp ace", "co:lon", "bang!", "ünï ✓", "a%2Fb", "+&=;@$,'()*"]


@pytest.mark.parametrize("key", SPECIAL)
@pytest.mark.parametrize("encode", [sdk_quote, uri_component])
def test_key_round_trips_both_encodings(table: RouteTable, key: str, encode: object) -> None:
    assert callable(encode)
    raw = PATH + b"/values/" + encode(key).encode("ascii")
    assert key_from_raw_path(table, raw) == key
    assert key_from_raw_path(table, PATH + b"/metadata/" + encode(key).encode("ascii")) == key


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=100).filter(lambda k: k not in (".", "..")))
def test_any_key_round_trips(table: RouteTable, key: str) -> None:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return
    for encode in (sdk_quote, uri_component):
        assert key_from_raw_path(table, PATH + b"/values/" + encode(key).encode("ascii")) == key


@pytest.mark.parametrize("raw", [b"%", b"%2", b"%zz", b"a%G1", b"%FF", b"%C3%28", b"\xff"])
def test_bad_percent_encoding_or_utf8_is_a_400_naming_the_key(table: RouteTable, raw: bytes) -> None:
    with pytest.raises(ValidationError, match="key_name"):
        key_from_raw_path(table, PATH + b"/values/" + raw)


@pytest.mark.parametrize("raw", [b"", b".", b"..", b"%2E%2E"])
def test_invalid_keys(table: RouteTable, raw: bytes) -> None:
    with pytest.raises(ValidationError, match="key_name"):
        key_from_raw_path(table, PATH + b"/values/" + raw)


def test_a_key_over_512_bytes_in_the_path_is_cloudflares_414(table: RouteTable) -> None:
    with pytest.raises(KeyTooLong, match=r"^UTF-8 encoded length of 1026 exceeds key length limit of 512\.$"):
        key_from_raw_path(table, PATH + b"/values/" + quote("\u00e9" * 513).encode())


def test_decode_segment_literal_text() -> None:
    assert decode_segment("ä".encode(), "f") == "ä"
    assert decode_segment(b"a+b", "f") == "a+b"  # a path, not a form: '+' stays


@pytest.mark.parametrize(
    ("text", "expected"), [("60", 60.0), ("60.5", 60.5), ("0", 0.0), ("1700000000", 1.7e9)]
)
def test_query_number(text: str, expected: float) -> None:
    assert query_number({"expiration": text}, "expiration") == expected


@pytest.mark.parametrize("text", ["-1", "abc", "", "1e9", "0x10", "nan", "inf", " ", "1" * 30, "1.2.3"])
def test_query_number_rejects(text: str) -> None:
    with pytest.raises(ValidationError, match="expiration"):
        query_number({"expiration": text}, "expiration")


def test_query_int_ranges() -> None:
    assert query_int({}, "limit", 10, 1000) is None
    assert query_int({"limit": "10"}, "limit", 10, 1000) == 10
    for bad in ["9", "1001", "10.5", "-10", "99999999999999999999"]:
        with pytest.raises(ValidationError, match="limit"):
            query_int({"limit": bad}, "limit", 10, 1000)


def test_conditions() -> None:
    assert parse_condition(None, None) == Condition()
    assert parse_condition('"17"', None) == Condition(if_match=17)
    assert parse_condition("17", None) == Condition(if_match=17)
    assert parse_condition('W/"17"', None) == Condition(if_match=17)
    assert parse_condition(None, "*") == Condition(if_none_match=True)
    for bad_match in ["*", '"x"', "", '"1", "2"']:
        with pytest.raises(ValidationError, match="If-Match"):
            parse_condition(bad_match, None)
    with pytest.raises(ValidationError, match="If-None-Match"):
        parse_condition(None, '"3"')


def test_bearer() -> None:
    assert bearer_secret("Bearer abc") == "abc"
    assert bearer_secret("bearer  abc ") == "abc"
    for bad in [None, "", "Basic abc", "Bearer", "Bearer a b", "abc"]:
        with pytest.raises(AuthenticationError):
            bearer_secret(bad)


def _multipart(parts: list[tuple[str, bytes, str | None, str | None]], boundary: str = "BND") -> bytes:
    out = b""
    for name, data, filename, ctype in parts:
        out += f"--{boundary}\r\n".encode()
        disp = f'Content-Disposition: form-data; name="{name}"'
        if filename:
            disp += f'; filename="{filename}"'
        out += disp.encode() + b"\r\n"
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


CT = "multipart/form-data; boundary=BND"


def test_multipart_value_and_metadata() -> None:
    body = _multipart(
        [
            ("value", b"\x00bin\r\n--", "blob", "application/octet-stream"),
            ("metadata", b'{"a": 1}', None, "application/json"),
        ]
    )
    upload = parse_multipart_value(CT, body)
    assert upload.value == b"\x00bin\r\n--" and client_metadata(upload.metadata) == '{"a":1}'
    text = parse_multipart_value(CT, _multipart([("value", b"text", None, None)]))
    assert text.value == b"text" and text.metadata is None
    plain = parse_multipart_value(
        CT, _multipart([("value", b"v", None, None), ("metadata", b"not json", None, "text/plain")])
    )
    assert client_metadata(plain.metadata) == '"not json"'


@pytest.mark.parametrize(
    "body",
    [
        _multipart([("metadata", b"{}", None, None)]),  # no value part
        _multipart([("value", b"v", None, None)])[:-12],  # truncated
        b"garbage without boundaries",
        b"",
        _multipart([("value", b"v", None, None), ("metadata", b"{bad", None, "application/json")]),
        _multipart([("value", b"v", None, None), ("metadata", b"\xff", None, None)]),
    ],
)
def test_multipart_malformed_is_400(body: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_multipart_value(CT, body)


def test_multipart_needs_boundary_and_caps_metadata() -> None:
    with pytest.raises(ValidationError, match="boundary"):
        parse_multipart_value("multipart/form-data", _multipart([("value", b"v", None, None)]))
    big = json.dumps({"k": "x" * 1100}).encode()
    upload = parse_multipart_value(
        CT, _multipart([("value", b"v", None, None), ("metadata", big, None, None)])
    )
    with pytest.raises(PayloadTooLarge, match=r"^metadata: "):
        client_metadata(upload.metadata)  # what the value PUT does with it, as bulk writes do


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_read_capped() -> None:
    assert await read_capped(_chunks(b"ab", b"cd"), "4", 4, "body") == b"abcd"
    with pytest.raises(PayloadTooLarge):
        await read_capped(_chunks(b"ab"), str(MAX_VALUE_BYTES + 1), MAX_VALUE_BYTES, "value")
    with pytest.raises(PayloadTooLarge):  # no (or a lying) Content-Length: stops while streaming
        await read_capped(_chunks(b"abc", b"def"), None, 4, "body")
    with pytest.raises(ValidationError, match="Content-Length"):
        await read_capped(_chunks(b""), "x", 4, "body")


def test_parse_json_body() -> None:
    assert parse_json_body(b"[1]", "body") == [1]
    for bad in [b"", b"{", b"[" * 100_000, b"\xff"]:
        with pytest.raises(ValidationError, match="body"):
            parse_json_body(bad, "body")


def test_envelopes() -> None:
    assert json.loads(envelope.success({"x": "ü"})) == {
        "success": True,
        "errors": [],
        "messages": [],
        "result": {"x": "ü"},
    }
    page = json.loads(envelope.success_raw("[]", {"count": 0, "cursor": ""}))
    assert page["result"] == [] and page["result_info"] == {"count": 0, "cursor": ""}
    fail = json.loads(envelope.failure(10009, "get: 'key not found'"))
    assert fail == {
        "success": False,
        "errors": [{"code": 10009, "message": "get: 'key not found'"}],
        "messages": [],
        "result": None,
    }


@pytest.mark.parametrize(
    ("path", "method", "label"),
    [
        ("/client/v4/accounts/a/storage/kv/namespaces", "GET", "namespaces"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n", "PUT", "namespace"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/bulk", "PUT", "bulk"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/bulk", "DELETE", "bulk_delete"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/bulk/delete", "POST", "bulk_delete"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/bulk/get", "POST", "bulk_get"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/keys", "GET", "keys"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/metadata/k/x", "GET", "metadata"),
        ("/client/v4/accounts/a/storage/kv/namespaces/n/values/k", "GET", "values"),
        ("/metrics", "GET", "metrics"),
        ("/healthz", "GET", "healthz"),
        ("/readyz", "GET", "readyz"),
        ("/client/v4/accounts/a/other", "GET", "other"),
        ("/anything/else", "GET", "other"),
    ],
)
def test_route_labels(table: RouteTable, path: str, method: str, label: str) -> None:
    assert route_label(table, path, method) == label


async def _endpoint(_: object) -> Any:
    raise AssertionError("not called")


def test_route_table_grammar() -> None:
    """Templates in starlette's syntax, matched on the raw path: `{name}` is one segment,
    `{name:path}` the rest (its `%2F` and `/` kept); literal segments match as written (a
    percent-encoded literal is not the literal); a path with other methods is a 405; HEAD
    is answered by the path's GET route."""
    table = RouteTable(
        [
            Route("/a/{x}", _endpoint, "GET", "one"),
            Route("/a/{x}/b/{rest:path}", _endpoint, "GET", "tail"),
            Route("/a/{x}/b/{rest:path}", _endpoint, "PUT", "tail_put"),
            Route("/a", _endpoint, "GET", "root"),
        ]
    )

    def names(path: bytes, method: str = "GET") -> tuple[str, dict[str, bytes], str | None] | None:
        found = table.lookup(path, method)
        return None if found is None else (found[0].name, found[1], found[2])

    assert names(b"/a") == ("root", {}, None)
    assert names(b"/a/x%2Fy") == ("one", {"x": b"x%2Fy"}, None)
    assert names(b"/a/1/b/k%2F/z") == ("tail", {"x": b"1", "rest": b"k%2F/z"}, None)
    assert names(b"/a/1/b/k", "PUT") == ("tail_put", {"x": b"1", "rest": b"k"}, None)
    assert names(b"/a/1/b/k", "PATCH") == ("tail", {"x": b"1", "rest": b"k"}, "GET, PUT, HEAD")
    assert names(b"/a/1/b/k", "HEAD") == ("tail", {"x": b"1", "rest": b"k"}, None)  # GET's route
    for path in [b"/a/", b"/a/1/c", b"/%61", b"/a/1/%62/k", b"/b"]:
        assert names(path) is None, path
    with pytest.raises(ValueError, match="two routes"):
        RouteTable([Route("/a", _endpoint, "GET", "x"), Route("/a", _endpoint, "GET", "y")])
    with pytest.raises(ValueError, match="must come last"):
        RouteTable([Route("/a/{p:path}/b", _endpoint, "GET", "x")])
