"""The REST API driven by Cloudflare's official Python SDK, against central's backend over
a real RocksStore; every JSON response is validated against the reference schemas."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import cloudflare
import httpx
import pytest
from cloudflare import Cloudflare
from rest_support import ACCOUNT, Env, SpecValidator, live, load_validator

__all__ = ["live"]


@pytest.fixture(scope="module")
def validator() -> SpecValidator:
    return load_validator()


@pytest.fixture
def cf(live: Env, validator: SpecValidator) -> Iterator[Cloudflare]:
    before = validator.checked
    http = httpx.Client(event_hooks={"response": [validator.hook]}, timeout=30)
    client = Cloudflare(
        base_url=f"{live.base_url}/client/v4", api_token=live.write_secret, max_retries=0, http_client=http
    )
    yield client
    http.close()
    assert validator.problems == [], "\n".join(validator.problems)
    assert validator.checked > before


def _error(exc: cloudflare.APIStatusError) -> dict[str, Any]:
    body = exc.body
    if not isinstance(body, dict):  # the SDK keeps the parsed body; fall back to the response
        body = exc.response.json()
    assert body["success"] is False and body["result"] is None
    err: dict[str, Any] = body["errors"][0]
    return err


def _namespace(cf: Cloudflare, title: str) -> str:
    ns = cf.kv.namespaces.create(account_id=ACCOUNT, title=f"{title}-{time.monotonic_ns()}")
    assert ns is not None
    return ns.id


def test_namespaces_create_list_get_update_delete(cf: Cloudflare) -> None:
    stamp = time.monotonic_ns()
    created = {cf.kv.namespaces.create(account_id=ACCOUNT, title=f"ns-{stamp}-{i:02}").id for i in range(23)}
    listed = list(cf.kv.namespaces.list(account_id=ACCOUNT, per_page=5, order="title", direction="asc"))
    ids = [n.id for n in listed]
    assert created <= set(ids) and len(ids) == len(set(ids))
    titles = [n.title for n in listed]
    assert titles == sorted(titles)
    page = cf.kv.namespaces.list(account_id=ACCOUNT, page=1, per_page=5)
    assert page.result_info is not None and page.result_info.total_count == len(ids)

    ns_id = sorted(created)[0]
    got = cf.kv.namespaces.get(ns_id, account_id=ACCOUNT)
    assert got is not None and got.id == ns_id and got.supports_url_encoding is True
    renamed = cf.kv.namespaces.update(ns_id, account_id=ACCOUNT, title=f"renamed-{stamp}")
    assert renamed is not None and renamed.title == f"renamed-{stamp}"
    assert cf.kv.namespaces.get(ns_id, account_id=ACCOUNT).title == f"renamed-{stamp}"  # type: ignore[union-attr]

    with pytest.raises(cloudflare.BadRequestError) as dup:
        cf.kv.namespaces.create(account_id=ACCOUNT, title=f"renamed-{stamp}")
    assert dup.value.status_code == 400 and _error(dup.value)["code"] == 10014

    for nid in created:
        cf.kv.namespaces.delete(nid, account_id=ACCOUNT)
    with pytest.raises(cloudflare.NotFoundError) as gone:
        cf.kv.namespaces.get(ns_id, account_id=ACCOUNT)
    assert gone.value.status_code == 404 and _error(gone.value)["code"] == 10013
    remaining = {n.id for n in cf.kv.namespaces.list(account_id=ACCOUNT)}
    assert not created & remaining


def test_values_update_get_delete_and_metadata(cf: Cloudflare, live: Env) -> None:
    ns = _namespace(cf, "values")
    values = cf.kv.namespaces.values
    values.update("plain", account_id=ACCOUNT, namespace_id=ns, value=b"hello")
    values.update(
        "meta",
        account_id=ACCOUNT,
        namespace_id=ns,
        value=b"\x00\xffbin",
        metadata={"a": [1, 2]},
        expiration_ttl=300,
    )
    before = int(time.time())
    assert values.get("plain", account_id=ACCOUNT, namespace_id=ns).read() == b"hello"
    got = values.get("meta", account_id=ACCOUNT, namespace_id=ns)
    assert got.read() == b"\x00\xffbin"
    expiration = int(got.headers["expiration"])
    assert before + 298 <= expiration <= before + 302
    assert got.headers["etag"].strip('"').isdigit()

    assert cf.kv.namespaces.metadata.get("meta", account_id=ACCOUNT, namespace_id=ns) == {"a": [1, 2]}
    assert cf.kv.namespaces.metadata.get("plain", account_id=ACCOUNT, namespace_id=ns) is None
    keys = {k.name: k for k in cf.kv.namespaces.keys.list(ns, account_id=ACCOUNT)}
    assert set(keys) == {"meta", "plain"}
    assert keys["meta"].expiration == expiration and keys["meta"].metadata == {"a": [1, 2]}
    assert keys["plain"].expiration is None

    # String and scalar metadata as the SDK sends them (a bare text/plain part for strings).
    values.update("s", account_id=ACCOUNT, namespace_id=ns, value=b"v", metadata="just text")
    assert cf.kv.namespaces.metadata.get("s", account_id=ACCOUNT, namespace_id=ns) == "just text"
    values.update("n", account_id=ACCOUNT, namespace_id=ns, value=b"v", metadata=42)
    assert cf.kv.namespaces.metadata.get("n", account_id=ACCOUNT, namespace_id=ns) == 42

    values.delete("plain", account_id=ACCOUNT, namespace_id=ns)
    with pytest.raises(cloudflare.NotFoundError) as missing:
        values.get("plain", account_id=ACCOUNT, namespace_id=ns)
    assert missing.value.status_code == 404 and _error(missing.value)["code"] == 10009
    with pytest.raises(cloudflare.NotFoundError) as meta_missing:
        cf.kv.namespaces.metadata.get("plain", account_id=ACCOUNT, namespace_id=ns)
    assert _error(meta_missing.value)["code"] == 10009
    with pytest.raises(cloudflare.NotFoundError) as ns_missing:
        values.get("x", account_id=ACCOUNT, namespace_id="0" * 32)
    assert _error(ns_missing.value)["code"] == 10013
    with pytest.raises(cloudflare.NotFoundError):
        values.update("x", account_id=ACCOUNT, namespace_id="f" * 32, value=b"v")


def test_keys_list_follows_cursors_over_2500_keys(cf: Cloudflare) -> None:
    ns = _namespace(cf, "list")
    wanted = [f"p/{i:05}" for i in range(2500)]
    cf.kv.namespaces.bulk_update(ns, account_id=ACCOUNT, body=[{"key": k, "value": "x"} for k in wanted])
    others = [{"key": f"q/{i}", "value": "y"} for i in range(50)] + [{"key": "o", "value": "z"}]
    cf.kv.namespaces.bulk_update(ns, account_id=ACCOUNT, body=others)

    names = [k.name for k in cf.kv.namespaces.keys.list(ns, account_id=ACCOUNT, prefix="p/")]
    assert names == wanted
    pages = 0
    cursor: str | None = None
    seen: list[str] = []
    while True:
        page = cf.kv.namespaces.keys.list(ns, account_id=ACCOUNT, prefix="p/", limit=300, cursor=cursor or "")
        pages += 1
        seen += [k.name for k in page.result]
        assert page.result_info is not None and page.result_info.count == len(page.result)
        cursor = page.result_info.cursor
        if not cursor:
            break
    assert seen == wanted and pages == 9
    everything = [k.name for k in cf.kv.namespaces.keys.list(ns, account_id=ACCOUNT)]
    assert len(everything) == 2551 and everything == sorted(everything)


def test_bulk_update_get_delete(cf: Cloudflare, live: Env) -> None:
    ns = _namespace(cf, "bulk")
    blob = bytes(range(256))
    body: list[Any] = [
        {"key": "text", "value": "hello", "metadata": {"m": 1}},
        {"key": "json", "value": json.dumps({"n": 5, "s": "t"})},
        {"key": "bin", "value": base64.b64encode(blob).decode(), "base64": True},
        {"key": "ttl", "value": "soon", "expiration_ttl": 120},
        {"key": "abs", "value": "later", "expiration": int(time.time()) + 3600},
    ]
    result = cf.kv.namespaces.bulk_update(ns, account_id=ACCOUNT, body=body)
    assert result is not None and result.successful_key_count == 5 and result.unsuccessful_keys == []
    assert cf.kv.namespaces.values.get("bin", account_id=ACCOUNT, namespace_id=ns).read() == blob

    plain = cf.kv.namespaces.bulk_get(ns, account_id=ACCOUNT, keys=["text", "json", "missing"])
    assert plain is not None
    assert plain.to_dict()["values"] == {"text": "hello", "json": '{"n": 5, "s": "t"}', "missing": None}
    parsed = cf.kv.namespaces.bulk_get(ns, account_id=ACCOUNT, keys=["json"], type="json")
    assert parsed is not None and parsed.to_dict()["values"] == {"json": {"n": 5, "s": "t"}}
    meta = cf.kv.namespaces.bulk_get(
        ns, account_id=ACCOUNT, keys=["text", "ttl", "missing"], with_metadata=True
    )
    assert meta is not None
    got = meta.to_dict()["values"]
    assert got["text"] == {"value": "hello", "metadata": {"m": 1}}
    assert got["ttl"]["value"] == "soon" and got["ttl"]["metadata"] is None and got["ttl"]["expiration"] > 0
    assert got["missing"] is None

    deleted = cf.kv.namespaces.bulk_delete(ns, account_id=ACCOUNT, body=["text", "json", "never"])
    assert deleted is not None and deleted.unsuccessful_keys == []
    # The deprecated form, DELETE .../bulk (what wrangler's `kv bulk delete` sends).
    http = cf._client
    response = http.request("DELETE", f"{live.prefix}/{ns}/bulk", json=["ttl", "abs"], headers=live.headers())
    assert response.status_code == 200 and response.json()["success"] is True
    left = [k.name for k in cf.kv.namespaces.keys.list(ns, account_id=ACCOUNT)]
    assert left == ["bin"]


def test_special_keys_round_trip_through_the_sdk(cf: Cloudflare) -> None:
    ns = _namespace(cf, "keys")
    keys = ["a/b", "what?", "100%", "#hash", "sp ace", "co:lon", "bang!", "ünï/cødé ✓", "a%2Fb", "+plus&eq="]
    for i, key in enumerate(keys):
        cf.kv.namespaces.values.update(
            key, account_id=ACCOUNT, namespace_id=ns, value=f"v{i}".encode(), metadata=[i]
        )
    for i, key in enumerate(keys):
        assert (
            cf.kv.namespaces.values.get(key, account_id=ACCOUNT, namespace_id=ns).read() == f"v{i}".encode()
        )
        assert cf.kv.namespaces.metadata.get(key, account_id=ACCOUNT, namespace_id=ns) == [i]
    listed = [k.name for k in cf.kv.namespaces.keys.list(ns, account_id=ACCOUNT)]
    assert sorted(listed, key=lambda k: k.encode()) == sorted(keys, key=lambda k: k.encode()) == listed
    for key in keys:
        cf.kv.namespaces.values.delete(key, account_id=ACCOUNT, namespace_id=ns)
    assert list(cf.kv.namespaces.keys.list(ns, account_id=ACCOUNT)) == []
