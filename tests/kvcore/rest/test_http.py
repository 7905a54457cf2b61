"""The REST API over plain HTTP: auth rules, conditional writes, key encodings, bad input
(each a 4xx envelope and nothing written), and the operational endpoints."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from helpers.tokens import create_token
from rest_support import ACCOUNT, OTHER_ACCOUNT, Env, SpecValidator, live, load_validator

from kvcore.limits import MAX_VALUE_BYTES
from kvcore.model import Permission, WriteItem
from kvcore.store.ops import CreateNamespaceOp, PutOp, RevokeTokenOp

__all__ = ["live"]
_titles = itertools.count()


@pytest.fixture(scope="module")
def validator() -> SpecValidator:
    return load_validator()


@pytest.fixture
def http(live: Env, validator: SpecValidator) -> Iterator[httpx.Client]:
    with httpx.Client(event_hooks={"response": [validator.hook]}, timeout=60) as client:
        yield client
    assert validator.problems == [], "\n".join(validator.problems)


@pytest.fixture
def ns(live: Env, http: httpx.Client) -> str:
    r = http.post(live.prefix, json={"title": f"t-{next(_titles)}"}, headers=live.headers())
    assert r.status_code == 200, r.text
    ns_id: str = r.json()["result"]["id"]
    return ns_id


def _fails(r: httpx.Response, status: int, code: int | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    assert body["errors"] and all(isinstance(e["code"], int) for e in body["errors"])
    if code is not None:
        assert body["errors"][0]["code"] == code
    return body


# ----------------------------------------------------------------------------- auth


def test_missing_malformed_and_unknown_tokens_are_401(live: Env, http: httpx.Client, ns: str) -> None:
    seq = live.store.committed_seq
    for headers in [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}, live.headers("nope")]:
        _fails(http.get(live.prefix, headers=headers), 401, 10000)
        _fails(http.get(f"{live.prefix}/{ns}/values/k", headers=headers), 401, 10000)
        _fails(http.put(f"{live.prefix}/{ns}/values/k", content=b"v", headers=headers), 401, 10000)
        _fails(http.post(live.prefix, json={"title": "x"}, headers=headers), 401, 10000)
    assert live.store.committed_seq == seq


def test_read_token_reads_but_cannot_write(live: Env, http: httpx.Client, ns: str) -> None:
    http.put(f"{live.prefix}/{ns}/values/k", content=b"v", headers=live.headers()).raise_for_status()
    read = live.headers(live.read_secret)
    assert http.get(f"{live.prefix}/{ns}/values/k", headers=read).content == b"v"
    assert http.get(f"{live.prefix}/{ns}/keys", headers=read).status_code == 200
    seq = live.store.committed_seq
    p = f"{live.prefix}/{ns}"
    for r in [
        http.put(f"{p}/values/k", content=b"w", headers=read),
        http.put(f"{p}/values/new", content=b"w", headers=read),
        http.delete(f"{p}/values/k", headers=read),
        http.put(f"{p}/bulk", json=[{"key": "b", "value": "v"}], headers=read),
        http.post(f"{p}/bulk/delete", json=["k"], headers=read),
        http.request("DELETE", f"{p}/bulk", json=["k"], headers=read),
        http.post(live.prefix, json={"title": "by-reader"}, headers=read),
        http.put(p, json={"title": "renamed-by-reader"}, headers=read),
        http.delete(p, headers=read),
    ]:
        _fails(r, 403, 10000)
    assert live.store.committed_seq == seq
    assert http.get(f"{p}/values/k", headers=read).content == b"v"


def test_token_of_another_account_gets_403_and_learns_nothing(live: Env, http: httpx.Client) -> None:
    theirs = live.store.run(CreateNamespaceOp(OTHER_ACCOUNT, "secret-namespace"))
    other_prefix = f"{live.base_url}/client/v4/accounts/{OTHER_ACCOUNT}/storage/kv/namespaces"
    live.store.run(PutOp(OTHER_ACCOUNT, theirs.id, WriteItem("k", b"secret")))
    seq = live.store.committed_seq
    mine = live.headers()
    bodies = set()
    for ns_id in [theirs.id, "0" * 32, "not-an-id"]:
        for r in [
            http.get(f"{other_prefix}/{ns_id}", headers=mine),
            http.get(f"{other_prefix}/{ns_id}/values/k", headers=mine),
            http.get(f"{other_prefix}/{ns_id}/keys", headers=mine),
            http.put(f"{other_prefix}/{ns_id}/values/k", content=b"x", headers=mine),
            http.delete(f"{other_prefix}/{ns_id}", headers=mine),
        ]:
            bodies.add(json.dumps(_fails(r, 403, 10000)))
    _fails(http.get(other_prefix, headers=mine), 403, 10000)
    assert len(bodies) == 1  # the same answer whether the namespace exists or not
    assert live.store.committed_seq == seq
    # Their own token works; and our token sees none of their namespaces under our account.
    assert (
        http.get(f"{other_prefix}/{theirs.id}/values/k", headers=live.headers(live.other_secret)).content
        == b"secret"
    )
    _fails(http.get(f"{live.prefix}/{theirs.id}", headers=mine), 404, 10013)
    _fails(http.get(f"{live.prefix}/{theirs.id}/values/k", headers=mine), 404, 10013)


def test_revocation_is_immediate(live: Env, http: httpx.Client) -> None:
    token, secret = create_token(live.store, ACCOUNT, Permission.READ)
    assert http.get(live.prefix, headers=live.headers(secret)).status_code == 200
    live.store.run(RevokeTokenOp(token.id))
    _fails(http.get(live.prefix, headers=live.headers(secret)), 401, 10000)


# ----------------------------------------------------------------------------- conditional writes


def test_etag_if_match_and_if_none_match(live: Env, http: httpx.Client, ns: str) -> None:
    url, h = f"{live.prefix}/{ns}/values/c", live.headers()
    created = http.put(url, content=b"1", headers={**h, "If-None-Match": "*"})
    assert created.status_code == 200
    etag = created.headers["etag"]
    got = http.get(url, headers=h)
    assert got.headers["etag"] == etag and got.headers["age"] == "0"
    assert got.headers["x-edgekv-region"] == "central" and got.headers["x-edgekv-source"] == "central"
    assert http.get(url, params={"consistency": "strong"}, headers=h).content == b"1"
    _fails(http.get(url, params={"consistency": "bogus"}, headers=h), 400)
    _fails(http.put(url, content=b"x", headers={**h, "If-None-Match": "*"}), 412, 10030)
    _fails(http.put(url, content=b"x", headers={**h, "If-Match": '"999999"'}), 412, 10030)
    _fails(http.put(url, content=b"x", headers={**h, "If-Match": "garbage"}), 400)
    updated = http.put(url, content=b"2", headers={**h, "If-Match": etag})
    assert updated.status_code == 200 and updated.headers["etag"] != etag
    _fails(http.put(url, content=b"3", headers={**h, "If-Match": etag}), 412, 10030)  # stale now
    assert http.put(
        url, content=b"3", headers={**h, "If-Match": updated.headers["etag"].strip('"')}
    ).is_success
    _fails(http.delete(url, headers={**h, "If-Match": etag}), 412, 10030)
    assert http.get(url, headers=h).content == b"3"
    assert http.delete(url, headers={**h, "If-Match": http.get(url, headers=h).headers["etag"]}).is_success
    _fails(http.get(url, headers=h), 404, 10009)


def test_racing_read_modify_write_loses_no_increment(live: Env, ns: str) -> None:
    url, h = f"{live.prefix}/{ns}/values/counter", live.headers()
    httpx.put(url, content=b"0", headers=h).raise_for_status()
    per_client, conflicts = 25, [0, 0]

    def worker(n: int) -> None:
        with httpx.Client(timeout=30) as c:
            done = 0
            while done < per_client:
                r = c.get(url, headers=h)
                value = int(r.content) + 1
                w = c.put(url, content=str(value).encode(), headers={**h, "If-Match": r.headers["etag"]})
                if w.status_code == 412:
                    conflicts[n] += 1
                    continue
                w.raise_for_status()
                done += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert httpx.get(url, headers=h).content == str(2 * per_client).encode()


# ----------------------------------------------------------------------------- key encodings

KEYS = ["a/b", "q?x=1", "100%", "#frag", "sp ace", "co:lon", "bang!", "ünï ✓ 鍵", "a%2Fb", "+&=;@$,'()*"]


@pytest.mark.parametrize(
    "encode", [lambda k: quote(k, safe=":@!$&'()*+,;=-._~"), lambda k: quote(k, safe="-_.!~*'()")]
)
def test_keys_round_trip_sdk_and_encode_uri_component(
    live: Env, http: httpx.Client, ns: str, encode: Any
) -> None:
    h = live.headers()
    for i, key in enumerate(KEYS):
        r = http.put(f"{live.prefix}/{ns}/values/{encode(key)}", content=f"v{i}".encode(), headers=h)
        assert r.status_code == 200, (key, r.text)
    for i, key in enumerate(KEYS):
        assert http.get(f"{live.prefix}/{ns}/values/{encode(key)}", headers=h).content == f"v{i}".encode()
        assert http.get(f"{live.prefix}/{ns}/metadata/{encode(key)}", headers=h).json()["result"] is None
    names = [k["name"] for k in http.get(f"{live.prefix}/{ns}/keys", headers=h).json()["result"]]
    assert sorted(names) == sorted(KEYS)
    for key in KEYS:
        assert http.delete(f"{live.prefix}/{ns}/values/{encode(key)}", headers=h).is_success
    assert http.get(f"{live.prefix}/{ns}/keys", headers=h).json()["result"] == []


# ----------------------------------------------------------------------------- bad input


def _multipart(parts: list[tuple[str, bytes]], boundary: str = "xyz") -> tuple[bytes, str]:
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n'.encode() + d + b"\r\n"
        for n, d in parts
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_bad_input_is_a_4xx_envelope_and_writes_nothing(live: Env, http: httpx.Client, ns: str) -> None:
    h = live.headers()
    p = f"{live.prefix}/{ns}"
    http.put(f"{p}/values/keep", content=b"v", headers=h).raise_for_status()
    seq = live.store.committed_seq
    good_mp, mp_type = _multipart([("value", b"v"), ("metadata", b'{"a":1}')])
    raw_value_get = httpx.Request("GET", f"{p}/values/x", headers=h)
    cases: list[tuple[httpx.Response, int]] = [
        (http.put(f"{p}/values/{'k' * 513}", content=b"v", headers=h), 414),
        (http.put(f"{p}/values/{quote('é' * 257)}", content=b"v", headers=h), 414),
        (http.put(f"{p}/values/%2E", content=b"v", headers=h), 400),
        (http.put(f"{p}/values/bad%zz", content=b"v", headers=h), 400),
        (http.put(f"{p}/values/bad%FF%FE", content=b"v", headers=h), 400),
        (http.get(f"{p}/values/bad%C3%28", headers=h), 400),
        (http.put(f"{p}/values/k", content=b"x" * (MAX_VALUE_BYTES + 1), headers=h), 413),
        (
            http.put(
                f"{p}/values/k",
                content=_multipart([("value", b"v"), ("metadata", json.dumps("m" * 1100).encode())])[0],
                headers={**h, "Content-Type": mp_type},
            ),
            413,
        ),
        (http.put(f"{p}/values/k", content=good_mp[:-10], headers={**h, "Content-Type": mp_type}), 400),
        (
            http.put(f"{p}/values/k", content=good_mp, headers={**h, "Content-Type": "multipart/form-data"}),
            400,
        ),
        (http.put(f"{p}/values/k", content=b"junk", headers={**h, "Content-Type": mp_type}), 400),
        (http.put(f"{p}/values/k", params={"expiration_ttl": "-5"}, content=b"v", headers=h), 400),
        (http.put(f"{p}/values/k", params={"expiration_ttl": "30"}, content=b"v", headers=h), 400),
        (http.put(f"{p}/values/k", params={"expiration_ttl": "abc"}, content=b"v", headers=h), 400),
        (http.put(f"{p}/values/k", params={"expiration_ttl": "9" * 30}, content=b"v", headers=h), 400),
        (http.put(f"{p}/values/k", params={"expiration": "10"}, content=b"v", headers=h), 400),
        (http.put(f"{p}/values/k", params={"expiration": "1" + "0" * 19}, content=b"v", headers=h), 400),
        (http.put(f"{p}/bulk", json=[{"key": str(i), "value": "v"} for i in range(10_001)], headers=h), 413),
        (
            http.put(f"{p}/bulk", json=[{"key": "ok", "value": "v"}, {"key": "", "value": "v"}], headers=h),
            400,
        ),
        (
            http.put(
                f"{p}/bulk",
                json=[{"key": "ok", "value": "v"}, {"key": "b", "value": "%%", "base64": True}],
                headers=h,
            ),
            400,
        ),
        (http.put(f"{p}/bulk", json=[{"key": "ok", "value": "v", "metadata": "m" * 2000}], headers=h), 413),
        (http.put(f"{p}/bulk", json=[{"key": "ok", "value": "v", "expiration_ttl": "60"}], headers=h), 400),
        (http.put(f"{p}/bulk", json=[{"key": "ok", "value": 5}], headers=h), 400),
        (http.put(f"{p}/bulk", json={"key": "ok", "value": "v"}, headers=h), 400),
        (http.put(f"{p}/bulk", content=b"[{", headers={**h, "Content-Type": "application/json"}), 400),
        (
            http.put(
                f"{p}/bulk",
                content=b"key=v",
                headers={**h, "Content-Type": "application/x-www-form-urlencoded"},
            ),
            400,
        ),
        (http.post(f"{p}/bulk/delete", json=["ok", 5], headers=h), 400),
        (http.post(f"{p}/bulk/delete", json=["x"] * 10_001, headers=h), 413),
        (http.post(f"{p}/bulk/get", json={"keys": [f"k{i}" for i in range(101)]}, headers=h), 400),
        (http.post(f"{p}/bulk/get", json={"keys": []}, headers=h), 400),
        (http.post(f"{p}/bulk/get", json={"keys": ["keep"], "type": "xml"}, headers=h), 400),
        (http.post(f"{p}/bulk/get", json={"keys": ["keep"], "withMetadata": "yes"}, headers=h), 400),
        (http.post(live.prefix, content=b"title=x", headers={**h, "Content-Type": "text/plain"}), 400),
        (http.post(live.prefix, json={"title": ""}, headers=h), 400),
        (http.post(live.prefix, json={"title": "t" * 513}, headers=h), 400),
        (http.post(live.prefix, json={"name": "x"}, headers=h), 400),
        (http.post(live.prefix, json=["x"], headers=h), 400),
        (http.get(f"{p}/keys", params={"limit": "0"}, headers=h), 400),
        (http.get(f"{p}/keys", params={"limit": "99999999999999999999"}, headers=h), 400),
        (http.get(f"{p}/keys", params={"limit": "ten"}, headers=h), 400),
        (http.get(f"{p}/keys", params={"cursor": "!!not a cursor!!"}, headers=h), 400),
        (http.get(live.prefix, params={"per_page": "0"}, headers=h), 400),
        (http.get(live.prefix, params={"page": "-1"}, headers=h), 400),
        (http.get(live.prefix, params={"order": "size"}, headers=h), 400),
        (http.get(f"{live.prefix}/{'0' * 32}/keys", headers=h), 404),
        (http.put(f"{live.prefix}/{'0' * 32}/values/k", content=b"v", headers=h), 404),
        (http.get(f"{live.prefix}/nothex/values/k", headers=h), 400),
        (http.send(raw_value_get), 404),
        (http.get(f"{live.base_url}/client/v4/nowhere", headers=h), 404),
        (http.patch(f"{p}/values/k", content=b"v", headers=h), 405),
    ]
    for response, status in cases:
        _fails(response, status)
    assert live.store.committed_seq == seq
    assert [k["name"] for k in http.get(f"{p}/keys", headers=h).json()["result"]] == ["keep"]
    body = _fails(http.get(f"{live.base_url}/client/v4/nowhere", headers=h), 404, 7003)
    assert body["errors"][0]["message"] == "No route for the URI"


def test_raw_and_non_multipart_bodies_are_the_value(live: Env, http: httpx.Client, ns: str) -> None:
    h = live.headers()
    for ctype in ["application/octet-stream", "text/plain", "application/json", None]:
        headers = {**h, "Content-Type": ctype} if ctype else h
        http.put(
            f"{live.prefix}/{ns}/values/raw", content=b'{"not": "metadata"}', headers=headers
        ).raise_for_status()
        assert http.get(f"{live.prefix}/{ns}/values/raw", headers=h).content == b'{"not": "metadata"}'
        assert http.get(f"{live.prefix}/{ns}/metadata/raw", headers=h).json()["result"] is None
    # A value of exactly 25 MiB is accepted.
    big = b"z" * MAX_VALUE_BYTES
    http.put(f"{live.prefix}/{ns}/values/big", content=big, headers=h).raise_for_status()
    assert http.get(f"{live.prefix}/{ns}/values/big", headers=h).content == big


# ----------------------------------------------------------------------------- operations


def test_health_ready_metrics_and_docs(live: Env, http: httpx.Client, ns: str) -> None:
    assert http.get(f"{live.base_url}/healthz").json() == {"status": "ok"}
    assert http.get(f"{live.base_url}/readyz").status_code == 200
    http.get(f"{live.prefix}/{ns}/values/missing%2Fkey", headers=live.headers())
    text = http.get(f"{live.base_url}/metrics").text
    assert 'edgekv_http_requests_total{code="404",method="GET",region="central",route="values"}' in text
    assert 'edgekv_http_request_duration_seconds_count{region="central",route="values"}' in text
    assert "missing" not in text and ns not in text
    spec = http.get(f"{live.base_url}/openapi.json").json()
    operations = [op for path in spec["paths"].values() for op in path.values()]
    kv = [op for op in operations if op["tags"] == ["kv"]]
    assert len(kv) == 14
    # Account discovery (kvcore.rest.accounts): tokens/verify x2, memberships, accounts x2, user.
    assert len(operations) - len(kv) == 6
    assert http.get(f"{live.base_url}/docs").status_code == 200


def test_docs_work_offline(live: Env, http: httpx.Client) -> None:
    """/docs names no other host: Swagger UI's files come from the swagger-ui-bundle package."""
    page = http.get(f"{live.base_url}/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert not re.search(r"""(https?:)?//[A-Za-z0-9]""", page.text), "the docs page references another host"
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        r = http.get(f"{live.base_url}{asset}")
        assert r.status_code == 200 and len(r.content) > 100, asset
    process = http.get(f"{live.base_url}/metrics").text  # the process's own series, too
    assert "process_resident_memory_bytes" in process and "process_cpu_seconds_total" in process


def test_a_bad_key_reads_alike_by_raw_put_multipart_put_and_bulk(
    live: Env, http: httpx.Client, ns: str
) -> None:
    """One check of the key (kvcore.limits.validate_key, where the key enters): the raw and
    multipart PUTs name the path's `key_name`, a bulk write names its item; the rule's
    words are the same."""
    h, p = live.headers(), f"{live.prefix}/{ns}"
    mp, mp_type = _multipart([("value", b"v")])
    seq = live.store.committed_seq
    for url_key, body_key, status in [("%2E%2E", "..", 400), ("k" * 513, "k" * 513, 414)]:
        raw = _fails(http.put(f"{p}/values/{url_key}", content=b"v", headers=h), status)
        multipart = _fails(
            http.put(f"{p}/values/{url_key}", content=mp, headers={**h, "Content-Type": mp_type}), status
        )
        bulk = _fails(http.put(f"{p}/bulk", json=[{"key": body_key, "value": "v"}], headers=h), 400)
        assert raw == multipart
        url_message, bulk_message = raw["errors"][0]["message"], bulk["errors"][0]["message"]
        assert bulk_message == f"[0].key: {url_message.removeprefix('key_name: ')}"
    assert live.store.committed_seq == seq


def test_wrong_method_names_every_method_of_the_path(live: Env, http: httpx.Client, ns: str) -> None:
    r = http.patch(f"{live.prefix}/{ns}/values/k", content=b"v", headers=live.headers())
    _fails(r, 405, 10405)
    assert sorted(r.headers["allow"].split(", ")) == ["DELETE", "GET", "HEAD", "PUT"]
    text = http.get(f"{live.base_url}/metrics").text
    assert 'edgekv_http_requests_total{code="405",method="PATCH",region="central",route="values"}' in text


def test_head_is_get_without_the_body(live: Env, http: httpx.Client, ns: str) -> None:
    # RFC 9110 9.3.2 (`curl -I`); not through the spec validator: a HEAD has no body.
    p = f"{live.prefix}/{ns}"
    assert http.put(f"{p}/values/k", content=b"value", headers=live.headers()).status_code == 200
    with httpx.Client(timeout=60) as bare:
        for path in ("/values/k", "/metadata/k", "/keys", "/values/missing"):
            got = http.get(p + path, headers=live.headers())
            head = bare.head(p + path, headers=live.headers())
            assert head.status_code == got.status_code and head.content == b"", path
            for name in ("content-type", "content-length", "etag", "expiration"):
                assert head.headers.get(name) == got.headers.get(name), (path, name)
        assert bare.head(f"{p}/bulk", headers=live.headers()).status_code == 405  # no GET there
