"""Pure parts of the clients: endpoints, key encoding, values, batching, bulk files.
(Error mapping: test_errors.py.)"""

from __future__ import annotations

import json

import pytest

from kvcore import errors
from kvcore.client import normalize_endpoint, split_batches
from kvcore.client._http import condition_headers, decode_value, encode_value, parse_etag, quote_key
from kvcore.client.bulkfile import BulkFileError, load_json, parse_keys, parse_put_items

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    "given",
    [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8000/",
        "http://127.0.0.1:8000/client/v4",
        "http://127.0.0.1:8000/client/v4/",
        "127.0.0.1:8000",
        " http://127.0.0.1:8000/client/v4 ",
    ],
)
def test_endpoint_is_normalized_with_or_without_client_v4(given: str) -> None:
    assert normalize_endpoint(given) == "http://127.0.0.1:8000/client/v4"


def test_endpoint_keeps_a_path_prefix_and_rejects_junk() -> None:
    assert normalize_endpoint("https://h/kv") == "https://h/kv/client/v4"
    for bad in ("", "ftp://h", "http://"):
        with pytest.raises(errors.ValidationError):
            normalize_endpoint(bad)


def test_keys_are_one_escaped_path_segment() -> None:
    assert quote_key("a/b?c#d e%f:g!h") == "a%2Fb%3Fc%23d%20e%25f%3Ag%21h"
    assert quote_key("ünï") == "%C3%BCn%C3%AF"
    for bad in ("", ".", "..", "x" * 513):
        with pytest.raises(errors.ValidationError):
            quote_key(bad)


def test_values_and_versions() -> None:
    assert encode_value("é") == "é".encode()
    assert encode_value(b"\x00\xff") == b"\x00\xff"
    assert encode_value({"a": [1, 2]}) == b'{"a":[1,2]}'
    with pytest.raises(TypeError):
        encode_value(3)  # type: ignore[arg-type]
    assert decode_value(b'{"a":1}', "json") == {"a": 1}
    assert decode_value(b"\xff", "text") == "\ufffd"
    with pytest.raises(errors.ValidationError):
        decode_value(b"{", "json")
    assert parse_etag('"42"') == "42"
    assert parse_etag('W/"42"') == "42"
    assert parse_etag(None) is None
    assert condition_headers(7, False) == {"If-Match": '"7"'}
    assert condition_headers(None, True) == {"If-None-Match": "*"}
    with pytest.raises(ValueError):
        condition_headers("1", True)


def test_batches_respect_count_and_bytes() -> None:
    items = [{"key": f"k{i:03d}", "value": "v" * 100} for i in range(25)]
    assert [len(b) for b in split_batches(items, max_items=10)] == [10, 10, 5]
    one = len(json.dumps(items[0], separators=(",", ":"))) + 1
    batches = list(split_batches(items, max_items=10_000, max_bytes=2 + 4 * one))
    assert all(len(b) == 4 for b in batches[:-1])
    assert sum(len(b) for b in batches) == 25
    with pytest.raises(errors.PayloadTooLarge):
        list(split_batches(items, max_bytes=50))


def test_bulk_put_file_is_checked_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = [
        {"key": "a", "value": "1"},
        {"key": "b", "value": "aGk=", "base64": True, "expiration_ttl": 120, "metadata": {"x": 1}},
        {"key": "c", "value": "3", "metadata": None, "extra": "ignored"},
    ]
    now = 1_700_000_000.0
    assert parse_put_items(good, now=now) == [
        {"key": "a", "value": "1"},
        {"key": "b", "value": "aGk=", "expiration_ttl": 120, "metadata": {"x": 1}, "base64": True},
        {"key": "c", "value": "3"},
    ]
    bad_docs = [
        {"key": "a"},
        [{"value": "x"}],
        [{"key": "a"}],
        [{"key": "a", "value": 3}],
        [{"key": "", "value": "x"}],
        [{"key": "a", "value": "!!", "base64": True}],
        [{"key": "a", "value": "x", "expiration_ttl": "soon"}],
        [{"key": "a", "value": "x", "metadata": "m" * 2000}],
        [{"key": "a", "value": "x", "expiration_ttl": 59}],
        [{"key": "a", "value": "x", "expiration": 1_700_000_059}],
        [{"key": "a", "value": "x", "expiration": 1_700_000_060_000}],  # milliseconds
        ["a"],
    ]
    for doc in bad_docs:
        with pytest.raises(BulkFileError):
            parse_put_items(doc, now=now)
    path = tmp_path / "bad.json"
    path.write_text('[{"key": "a", "value": "1"},')
    with pytest.raises(BulkFileError, match="not valid JSON"):
        load_json(path)
    with pytest.raises(BulkFileError, match="cannot read"):
        load_json(tmp_path / "missing.json")


def test_key_files_accept_strings_and_objects() -> None:
    assert parse_keys(["a", {"key": "b", "value": "x"}, {"name": "c", "expiration": 1}]) == ["a", "b", "c"]
    for doc in ({"a": 1}, [1], [{"value": "x"}], [""]):
        with pytest.raises(BulkFileError):
            parse_keys(doc)
