"""Every KV binding method, run by a real workerd against a replica's workerd listener.

What the Worker stores is read back through the REST API and the other way round, so
both speak of the same keys, values, metadata and expirations.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from helpers.cluster import EDGEKV, free_port, metric_value
from helpers.workerd import Bound

ODD_KEYS = [
    "with space",
    "a/b/c",
    "/leading/slash",
    "q?x=1&y=2",
    "100%",
    "#hash",
    "plus+sign",
    "ünïcødé 键 🔑",
    "semi;colon:equals=",
]


def test_get_in_every_type(bound: Bound) -> None:
    with bound.rest() as rest:
        assert rest.put("/values/typed", content=b'{"a": [1, 2]}').status_code == 200
    assert bound.result("get", "typed") == '{"a": [1, 2]}'
    assert bound.result("get", "typed", "text") == '{"a": [1, 2]}'
    assert bound.result("get", "typed", {"type": "json"}) == {"a": [1, 2]}
    assert base64.b64decode(bound.result("get", "typed", "arrayBuffer")["b64"]) == b'{"a": [1, 2]}'
    assert bound.result("get", "typed", "stream") == {"stream": '{"a": [1, 2]}'}


def test_put_is_read_at_once_and_delete_removes(bound: Bound) -> None:
    assert bound.result("put", "rw", "one") is None
    assert bound.result("get", "rw") == "one"  # C3: the region that took the write serves it
    assert bound.result("put", "rw", "two") is None
    assert bound.result("get", "rw") == "two"
    with bound.rest() as rest:
        assert rest.get("/values/rw", params={"consistency": "strong"}).content == b"two"
    assert bound.result("delete", "rw") is None
    assert bound.result("get", "rw") is None
    assert bound.result("delete", "rw") is None  # deleting a missing key is no error


def test_put_of_a_stream_of_unknown_length(bound: Bound) -> None:
    chunks = ["first chunk, ", "second, ", "ü and the end" * 1000]
    assert bound.result("put", "streamed", {"chunks": chunks}) is None
    assert bound.result("get", "streamed") == "".join(chunks)


def test_missing_keys_are_null(bound: Bound) -> None:
    assert bound.result("get", "never-written") is None
    assert bound.result("get", "never-written", "arrayBuffer") is None
    assert bound.result("get", "never-written", "json") is None
    assert bound.result("getWithMetadata", "never-written") == {
        "value": None,
        "metadata": None,
        "cacheStatus": None,
    }


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_are_the_same_keys_as_over_rest(bound: Bound, key: str) -> None:
    value = f"value of {key}"
    bound.result("put", key, value)
    assert bound.result("get", key) == value
    with bound.rest(bound.replica.http) as rest:  # the same region: its writes are read at once (C3)
        path = "/values/" + quote(key, safe="")
        r = rest.get(path, params={"consistency": "strong"})
        assert r.status_code == 200 and r.text == value
        assert rest.put(path, content=b"from rest").status_code == 200
    assert bound.result("get", key) == "from rest"
    names = [k["name"] for k in bound.result("list", {"prefix": key})["keys"]]
    assert names[0] == key
    bound.result("delete", key)
    assert bound.result("get", key) is None


def test_binary_values_through_array_buffer(bound: Bound) -> None:
    data = bytes(range(256)) * 8 + b"\x00\xff\xfe"
    bound.result("put", "bin", {"b64": base64.b64encode(data).decode()})
    assert base64.b64decode(bound.result("get", "bin", "arrayBuffer")["b64"]) == data
    with bound.rest() as rest:
        assert rest.get("/values/bin", params={"consistency": "strong"}).content == data
        assert rest.put("/values/bin2", content=data[::-1]).status_code == 200
    assert base64.b64decode(bound.result("get", "bin2", "arrayBuffer")["b64"]) == data[::-1]


def test_metadata_and_expiration_ttl(bound: Bound) -> None:
    metadata = {"lang": "en", "n": 1, "nested": {"ok": True}, "ü": "✓"}
    before = int(time.time())
    bound.result("put", "meta", "v", {"metadata": metadata, "expirationTtl": 300})
    got = bound.result("getWithMetadata", "meta")
    assert got["value"] == "v" and got["metadata"] == metadata
    (item,) = bound.result("list", {"prefix": "meta"})["keys"]
    assert item["name"] == "meta" and item["metadata"] == metadata
    assert before + 300 <= item["expiration"] <= int(time.time()) + 301
    with bound.rest() as rest:
        assert rest.get("/metadata/meta").json()["result"] == metadata
    bound.result("put", "meta-abs", "v", {"expiration": before + 3600})
    (item,) = bound.result("list", {"prefix": "meta-abs"})["keys"]
    assert item == {"name": "meta-abs", "expiration": before + 3600}
    assert bound.result("getWithMetadata", "meta-abs")["metadata"] is None


def test_list_pages_over_2500_keys_with_a_cursor(bound: Bound) -> None:
    names = [f"page/{i:05d}" for i in range(2500)]
    with bound.rest() as rest:
        items = [{"key": n, "value": "x", "metadata": {"i": i}} for i, n in enumerate(names)]
        r = rest.put("/bulk", json=items)
        assert r.status_code == 200, r.text
    out = bound.result("listAll", {"prefix": "page/"})
    assert out["names"] == names
    assert [p["count"] for p in out["pages"]] == [1000, 1000, 500]
    assert [p["list_complete"] for p in out["pages"]] == [False, False, True]
    cursors = [p["cursor"] for p in out["pages"][:2]]
    assert all(cursors) and len(set(cursors)) == 2 and out["pages"][2]["cursor"] is None
    small = bound.result("listAll", {"prefix": "page/", "limit": 400})
    assert small["names"] == names and len(small["pages"]) == 7
    first = bound.result("list", {"prefix": "page/", "limit": 10})
    assert [k["metadata"] for k in first["keys"]] == [{"i": i} for i in range(10)]


def test_list_pages_smaller_than_rest_allows(bound: Bound) -> None:
    """The binding takes 1 to 1,000 keys a page (REST: 10 to 1,000)."""
    names = [f"few/{i:02d}" for i in range(23)]
    for name in names:
        bound.result("put", name, "x")
    for limit, pages in ((1, 23), (3, 8), (9, 3), (10, 3), (22, 2)):
        out = bound.result("listAll", {"prefix": "few/", "limit": limit})
        assert out["names"] == names, limit
        assert len(out["pages"]) == pages and out["pages"][0]["count"] == limit
    first = bound.result("list", {"prefix": "few/", "limit": 4})
    rest = bound.result("list", {"prefix": "few/", "cursor": first["cursor"]})  # a bigger page after
    assert [k["name"] for k in first["keys"] + rest["keys"]] == names and rest["list_complete"]
    bad = bound.call("list", {"prefix": "few/", "cursor": "~12~x"})["error"]["message"]
    assert bad == "KV GET failed: 400 cursor: malformed cursor"


def test_bulk_get(bound: Bound) -> None:
    for key, value in (("bulk/a", "1"), ("bulk/b", '{"x": 2}')):
        bound.result("put", key, value, {"metadata": {"k": key}})
    keys = ["bulk/a", "bulk/b", "bulk/missing"]
    assert bound.result("get", keys) == {"map": {"bulk/a": "1", "bulk/b": '{"x": 2}', "bulk/missing": None}}
    as_json = bound.result("get", keys, "json")
    assert as_json == {"map": {"bulk/a": 1, "bulk/b": {"x": 2}, "bulk/missing": None}}
    with_meta = bound.result("getWithMetadata", keys)["map"]
    assert with_meta["bulk/a"]["value"] == "1" and with_meta["bulk/a"]["metadata"] == {"k": "bulk/a"}
    assert with_meta["bulk/missing"] is None
    too_many = bound.call("get", [f"k{i}" for i in range(101)])
    assert too_many["error"]["message"].startswith("KV GET_BULK failed: 400 ")


def _error(out: dict[str, Any]) -> str:
    assert out["error"]["name"] == "Error", out
    return str(out["error"]["message"])


def test_bad_token_and_foreign_namespace_are_errors(bound: Bound) -> None:
    """Errors as REST gives them: the same status and message, in workerd's words."""
    unknown = bound.rest_error("GET", "/values/rw", secret="not-a-token-of-anyone")
    assert unknown.startswith("401 ")
    assert _error(bound.call("get", "rw", binding="BAD")) == f"KV GET failed: {unknown}"
    assert _error(bound.call("list", binding="BAD")) == f"KV GET failed: {unknown}"
    read_only = bound.rest_error("PUT", "/values/ro", secret=bound.read_secret, content=b"x")
    assert read_only.startswith("403 ")
    assert _error(bound.call("put", "ro", "x", binding="RO")) == f"KV PUT failed: {read_only}"
    assert _error(bound.call("delete", "ro", binding="RO")).startswith("KV DELETE failed: 403 ")
    bound.result("put", "ro", "readable")
    assert bound.result("get", "ro", binding="RO") == "readable"
    # Another account's namespace is not found, and loudly so: never a silent null.
    assert _error(bound.call("get", "ro", binding="ELSEWHERE")).startswith("KV GET failed: 400 ")


def test_limits_are_the_rest_limits(bound: Bound) -> None:
    short = bound.rest_error("PUT", "/values/ttl", params={"expiration_ttl": "30"}, content=b"x")
    assert short.startswith("400 ")
    assert _error(bound.call("put", "ttl", "x", {"expirationTtl": 30})) == f"KV PUT failed: {short}"
    meta = {"m": "x" * 1100}
    multipart = {"value": (None, b"x"), "metadata": (None, json.dumps(meta).encode())}
    big_meta = bound.rest_error("PUT", "/values/meta-big", files=multipart)
    assert big_meta.startswith("413 ")
    assert _error(bound.call("put", "meta-big", "x", {"metadata": meta})) == f"KV PUT failed: {big_meta}"
    long_key = _error(bound.call("get", "k" * 513))  # workerd's own check, before any request
    assert long_key.startswith("KV GET failed: 414")
    assert _error(bound.call("list", {"limit": 1001})).startswith("KV GET failed: 400 key_count_limit")
    assert _error(bound.call("get", "ttl", {"cacheTtl": 10})).startswith("KV GET failed: 400 cache_ttl")
    assert bound.result("get", "ttl", {"cacheTtl": 60}) is None


def test_hot_keys_are_served_from_the_edge_cache(bound: Bound) -> None:
    bound.result("put", "hot", "warm")
    hits_before = _metric(bound, "edgekv_cache_requests_total", result="hit")
    for _ in range(10):
        assert bound.result("get", "hot") == "warm"
    assert _metric(bound, "edgekv_cache_requests_total", result="hit") - hits_before >= 6
    assert _metric(bound, "edgekv_http_requests_total", route="workerd_get", code="200") >= 10


def test_a_create_at_central_is_served_at_once_after_a_miss(bound: Bound) -> None:
    assert bound.result("get", "created-late") is None  # now negatively cached at the replica
    with bound.rest() as rest:
        assert rest.put("/values/created-late", content=b"here").status_code == 200
    deadline = time.monotonic() + 1.0  # C1: p99 under 100 ms on loopback; generous here
    while (value := bound.result("get", "created-late")) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert value == "here"


def test_workerd_port_in_use_is_a_one_line_error(bound: Bound, tmp_path: Path) -> None:
    import socket
    import subprocess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        args = [*EDGEKV, "replica", "--region", "xx", "--central", bound.central.grpc]
        args += ["--data-dir", str(tmp_path / "r"), "--http-addr", f"127.0.0.1:{free_port()}"]
        done = subprocess.run([*args, "--workerd-addr", addr], capture_output=True, timeout=60, text=True)
    assert done.returncode != 0
    line = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert line.startswith(f"error: --workerd-addr (EDGEKV_WORKERD_ADDR): {addr} is already in use"), line


def _metric(bound: Bound, name: str, **labels: str) -> float:
    text = httpx.get(f"{bound.replica.http}/metrics").text
    return metric_value(text, name, **labels) or 0.0


def test_metadata_header_is_json(bound: Bound) -> None:
    """The raw protocol, without workerd: what a GET answers besides the value."""
    bound.result("put", "raw", "v", {"metadata": {"a": "ü"}, "expirationTtl": 600})
    listener = bound.replica.args[bound.replica.args.index("--workerd-addr") + 1]
    headers = {"authorization": f"Bearer {bound.secret}", "x-edgekv-namespace": bound.namespace}
    r = httpx.get(f"http://{listener}/raw?urlencoded=true", headers=headers)
    assert r.status_code == 200 and r.content == b"v"
    assert json.loads(dict(r.headers.raw)[b"cf-kv-metadata"]) == {"a": "ü"}  # UTF-8 JSON text
    assert int(r.headers["cf-expiration"]) > time.time() + 500
    r = httpx.get(f"http://{listener}/raw?urlencoded=true", headers={**headers, "authorization": "Bearer x"})
    assert r.status_code == 401 and r.reason_phrase == "Authentication error: unknown or revoked token"
    assert "x-edgekv-reason" not in r.headers
