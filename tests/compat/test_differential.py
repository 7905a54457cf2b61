"""Differential test (issue 11): hypothesis generates sequences of KV operations; each
runs on Miniflare's KV binding (Cloudflare's own emulator, tests/compat/miniflare_driver.mjs)
and on a real edgekv central through the REST API, and the results must agree.

Operations: put (metadata, absolute expiration, TTL, both), get and getWithMetadata
(text / json), delete, list (prefix, limit, its own cursor of the previous page), bulk
get (text / json, withMetadata), and fill (a bulk PUT of many keys, so that lists page).
Both sides read the same wall clock; an expiration is computed once per operation.

Results are compared as values; a failure is compared only as "failed" (messages differ
by design). The differences listed in `INTENDED` are edgekv's choices, each stated in the
README's Compatibility section; everything else fails the test with the sequence.
The run prints how many sequences and operations it compared.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from helpers.cluster import Proc, create_account, start_central
from helpers.miniflare import MiniflareKV
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(240)

# Hypothesis examples per run, each one fresh namespace on both sides. `make test` runs a
# fixed set (derandomized); EDGEKV_DIFF_EXAMPLES=N EDGEKV_DIFF_RANDOM=1 explores further.
SEQUENCES = int(os.environ.get("EDGEKV_DIFF_EXAMPLES", "100"))
RANDOM = os.environ.get("EDGEKV_DIFF_RANDOM") == "1"
MAX = 2**31 - 1

KEYS = ["a", "a/b", "ab", "b", "ba", "c", "é", "k:1", "x y", "fill/03"]
BAD_KEYS = [".", "..", "k" * 513]
BINARY = "\udcff\udcfeA"  # stands for the bytes ff fe 41 (not UTF-8): sent as bytes to both
VALUES = ["", "v", "hello", '{"a":1}', "1", "0", "null", "false", "é☃", "not json", "x" * 200, BINARY]
METADATA = [None, {"m": 1}, {"nested": {"a": [1, 2]}}, "s", 5, {"big": "x" * 1100}]
PREFIXES = [None, "", "a", "a/", "b", "fill/", "fill/1", "é", "z"]
LIMITS = [None, 10, 11, 15, 1000]


# ----------------------------------------------------------------------------- operations

keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS + BAD_KEYS))
expirations = st.one_of(
    st.none(),
    st.tuples(st.just("ahead"), st.sampled_from([-10, 0, 30, 59, 61, 3600])),
    st.tuples(st.just("absolute"), st.sampled_from([MAX, MAX + 1, "now_ms"])),
)
ttls = st.one_of(st.none(), st.sampled_from([1, 30, 59, 60, 61, 3600, MAX]))
puts = st.fixed_dictionaries(
    {
        "op": st.just("put"),
        "key": keys,
        "value": st.sampled_from(VALUES),
        "metadata": st.sampled_from(METADATA),
        "expiration": expirations,
        "expirationTtl": ttls,
    }
)
gets = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["get", "getWithMetadata"]),
        "key": keys,
        "type": st.sampled_from(["text", "json"]),
    }
)
deletes = st.fixed_dictionaries({"op": st.just("delete"), "key": keys})
lists = st.fixed_dictionaries(
    {
        "op": st.just("list"),
        "prefix": st.sampled_from(PREFIXES),
        "limit": st.sampled_from(LIMITS),
        "next_page": st.booleans(),
    }
)
bulk_gets = st.fixed_dictionaries(
    {
        "op": st.just("bulkGet"),
        "keys": st.lists(st.sampled_from(KEYS), min_size=1, max_size=6),
        "type": st.sampled_from(["text", "json"]),
        "withMetadata": st.booleans(),
    }
)
fills = st.fixed_dictionaries({"op": st.just("fill"), "count": st.integers(8, 16)})
operations = st.lists(
    st.one_of(puts, puts, puts, gets, gets, deletes, lists, lists, bulk_gets, bulk_gets, fills),
    min_size=4,
    max_size=24,
)


def _expiration(spec: Any) -> int | None:
    if spec is None:
        return None
    kind, amount = spec
    if kind == "ahead":
        return math.floor(time.time()) + int(amount)
    return int(time.time() * 1000) if amount == "now_ms" else int(amount)


# ----------------------------------------------------------------------------- edgekv side


class EdgeKV:
    """The same operations over edgekv's REST API (what a Worker's binding would send)."""

    def __init__(self, base: str, account: str, secret: str) -> None:
        self.root = f"{base}/client/v4/accounts/{account}/storage/kv/namespaces"
        self.http = httpx.Client(headers={"authorization": f"Bearer {secret}"}, timeout=20)
        self.ns = ""

    def new_namespace(self, n: int) -> None:
        r = self.http.post(self.root, json={"title": f"diff-{n}"})
        r.raise_for_status()
        self.ns = r.json()["result"]["id"]

    def drop_namespace(self) -> None:
        self.http.delete(f"{self.root}/{self.ns}")

    @staticmethod
    def _segment(key: str) -> str:
        """One path segment; "." and ".." percent-encoded, or httpx would resolve them."""
        return quote(key, safe="").replace(".", "%2E") if key in (".", "..") else quote(key, safe="")

    def _value_url(self, key: str) -> str:
        return f"{self.root}/{self.ns}/values/{self._segment(key)}"

    @staticmethod
    def _fail(r: httpx.Response) -> tuple[bool, Any]:
        return False, {"status": r.status_code, "body": r.text[:300]}

    def put(self, key: str, value: str, expiration: int | None, ttl: int | None, metadata: Any) -> Any:
        params = {k: v for k, v in (("expiration", expiration), ("expiration_ttl", ttl)) if v is not None}
        body = value.encode("utf-8", "surrogateescape")  # BINARY: the bytes ff fe 41
        if metadata is None:
            r = self.http.put(self._value_url(key), content=body, params=params)
        else:
            files = {
                "value": ("value", body),
                "metadata": (None, json.dumps(metadata), "application/json"),
            }
            r = self.http.put(self._value_url(key), files=files, params=params)
        return (True, None) if r.status_code == 200 else self._fail(r)

    def _value(self, key: str, type_: str) -> tuple[bool, Any]:
        r = self.http.get(self._value_url(key))
        if r.status_code == 404 and r.json()["errors"][0]["code"] == 10009:
            return True, None
        if r.status_code != 200:
            return self._fail(r)
        text = r.content.decode("utf-8", "replace")
        if type_ == "json":
            try:
                return True, json.loads(text)
            except ValueError:
                return False, {"json": text[:100]}
        return True, text

    def get(self, key: str, type_: str) -> tuple[bool, Any]:
        return self._value(key, type_)

    def get_with_metadata(self, key: str, type_: str) -> tuple[bool, Any]:
        ok, value = self._value(key, type_)
        if not ok or value is None:
            return ok, ({"value": None, "metadata": None} if ok else value)
        r = self.http.get(f"{self.root}/{self.ns}/metadata/{self._segment(key)}")
        if r.status_code != 200:
            return self._fail(r)
        return True, {"value": value, "metadata": r.json()["result"]}

    def delete(self, key: str) -> tuple[bool, Any]:
        r = self.http.delete(self._value_url(key))
        return (True, None) if r.status_code == 200 else self._fail(r)

    def list(self, prefix: str | None, limit: int | None, cursor: str | None) -> tuple[bool, Any]:
        params = {
            k: v for k, v in (("prefix", prefix), ("limit", limit), ("cursor", cursor)) if v is not None
        }
        r = self.http.get(f"{self.root}/{self.ns}/keys", params=params)
        if r.status_code != 200:
            return self._fail(r)
        body = r.json()
        next_cursor = body["result_info"]["cursor"] or None
        return True, {"keys": body["result"], "list_complete": next_cursor is None, "cursor": next_cursor}

    def bulk_get(self, keys: list[str], type_: str, with_metadata: bool) -> tuple[bool, Any]:
        body = {"keys": keys, "type": type_, "withMetadata": with_metadata}
        r = self.http.post(f"{self.root}/{self.ns}/bulk/get", json=body)
        return (True, r.json()["result"]["values"]) if r.status_code == 200 else self._fail(r)

    def fill(self, items: list[dict[str, str]]) -> tuple[bool, Any]:
        r = self.http.put(f"{self.root}/{self.ns}/bulk", json=items)
        return (True, None) if r.status_code == 200 else self._fail(r)


# ----------------------------------------------------------------------------- comparison


def _intended(op: dict[str, Any], mf: tuple[bool, Any], ek: tuple[bool, Any]) -> str | None:
    """The README's listed, intended differences; the name of the one that explains this
    pair of results, or None."""
    if op["op"] == "put" and mf[0] and not ek[0]:
        ttl = op["args"].get("expirationTtl")
        if ttl is not None and math.floor(time.time()) + ttl > MAX:
            return "now + expiration_ttl past 2^31-1 is refused"
    return None


def _normalize(op: dict[str, Any], result: Any, side: str) -> Any:
    if op["op"] == "list" and result is not None:
        return {**result, "cursor": result["cursor"] is not None}  # cursors are opaque
    if op["op"] == "bulkGet" and side == "edgekv" and op["args"]["withMetadata"] and result:
        # The REST API's bulk get with metadata also carries `expiration` (Cloudflare's
        # spec: {value, metadata, expiration?}); the binding's result has no such field.
        return {
            k: (None if v is None else {f: v[f] for f in ("value", "metadata")}) for k, v in result.items()
        }
    return result


def _falsy_quirk(op: dict[str, Any], mine: Any, theirs: Any) -> bool:
    """Miniflare's bulk get with metadata returns a falsy value ("", 0, false, JSON null)
    bare, without {value, metadata} (`val && withMetadata ? [{value, metadata}] : [val]`
    in its KV worker), so a JSON null reads like a missing key. edgekv answers the REST
    spec's shape for every found key: the two agree once edgekv's falsy values are bared."""
    if op["op"] != "bulkGet" or not op["args"]["withMetadata"]:
        return False
    bared = {
        k: (v["value"] if isinstance(v, dict) and not v["value"] and v["value"] not in ([], {}) else v)
        for k, v in theirs.items()
    }
    return _same(mine, bared)


def _same(a: Any, b: Any) -> bool:
    """Equal, but list expirations may differ by 1 s (a TTL resolved on either side of a
    second boundary)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        return all(
            abs(a[k] - b[k]) <= 1 if k == "expiration" and isinstance(a[k], int) else _same(a[k], b[k])
            for k in a
        )
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a) is type(b)


@dataclass
class Tally:
    sequences: int = 0
    operations: int = 0
    by_op: Counter[str] = field(default_factory=Counter)
    intended: Counter[str] = field(default_factory=Counter)


def run_sequence(mf: MiniflareKV, ek: EdgeKV, ops: list[dict[str, Any]], tally: Tally) -> None:
    tally.sequences += 1
    ok, err = mf.call("clear")
    assert ok, err
    ek.new_namespace(tally.sequences)
    cursors: dict[str, str | None] = {"miniflare": None, "edgekv": None}
    log: list[str] = []
    try:
        for op in ops:
            kind = op["op"]
            tally.operations += 1
            tally.by_op[kind] += 1
            if kind == "put":
                exp, ttl = _expiration(op["expiration"]), op["expirationTtl"]
                args = {"key": op["key"], "value": op["value"]}
                if op["value"] == BINARY:
                    args = {"key": op["key"], "valueBase64": "//5B"}
                args |= {k: v for k, v in (("expiration", exp), ("expirationTtl", ttl)) if v is not None}
                if op["metadata"] is not None:
                    args["metadata"] = op["metadata"]
                m = mf.call("put", **args)
                e = ek.put(op["key"], op["value"], exp, ttl, op["metadata"])
            elif kind in ("get", "getWithMetadata"):
                args = {"key": op["key"], "type": op["type"]}
                m = mf.call(kind, **args)
                e = (ek.get if kind == "get" else ek.get_with_metadata)(op["key"], op["type"])
            elif kind == "delete":
                args = {"key": op["key"]}
                m, e = mf.call("delete", **args), ek.delete(op["key"])
            elif kind == "list":
                args = {k: op[k] for k in ("prefix", "limit") if op[k] is not None}
                mc, ec = (cursors["miniflare"], cursors["edgekv"]) if op["next_page"] else (None, None)
                m = mf.call("list", **args, **({"cursor": mc} if mc else {}))
                e = ek.list(op["prefix"], op["limit"], ec)
                cursors = {
                    "miniflare": m[1]["cursor"] if m[0] else None,
                    "edgekv": e[1]["cursor"] if e[0] else None,
                }
            elif kind == "bulkGet":
                args = {"keys": op["keys"], "type": op["type"], "withMetadata": op["withMetadata"]}
                m, e = mf.call("bulkGet", **args), ek.bulk_get(op["keys"], op["type"], op["withMetadata"])
            else:
                items = [{"key": f"fill/{i:02d}", "value": f"f{i}"} for i in range(op["count"])]
                for item in items:
                    ok, err = mf.call("put", **item)
                    assert ok, err
                m, e, args = (True, None), ek.fill(items), {"count": op["count"]}
            record = {"op": kind, "args": args}
            log.append(f"{kind}({args}) -> miniflare {m!r} / edgekv {e!r}")
            if m[0] != e[0]:
                reason = _intended(record, m, e)
                assert reason, "divergence (one side failed):\n" + "\n".join(log)
                tally.intended[reason] += 1
                # Only Miniflare wrote: drop the key on both sides so they agree again.
                ok, err = mf.call("delete", key=op["key"])
                assert ok and ek.delete(op["key"])[0], err
                continue
            if m[0]:
                mine, theirs = _normalize(record, m[1], "miniflare"), _normalize(record, e[1], "edgekv")
                if not _same(mine, theirs) and _falsy_quirk(record, mine, theirs):
                    tally.intended["bulk get withMetadata keeps {value, metadata} for falsy values"] += 1
                    continue
                assert _same(mine, theirs), "divergence:\n" + "\n".join(log)
    finally:
        ek.drop_namespace()


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MiniflareKV, EdgeKV]]:
    tmp: Path = tmp_path_factory.mktemp("differential")
    central: Proc = start_central(tmp)
    try:
        account, secret = asyncio.run(create_account(central.grpc))
        with MiniflareKV() as mf:
            ek = EdgeKV(central.http, account, secret)
            try:
                yield mf, ek
            finally:
                ek.http.close()
    finally:
        central.stop()


def test_edgekv_agrees_with_miniflare(
    sides: tuple[MiniflareKV, EdgeKV], capsys: pytest.CaptureFixture[str]
) -> None:
    mf, ek = sides
    tally = Tally()
    started = time.monotonic()

    @settings(
        max_examples=SEQUENCES,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate),  # no shrinking: the failing log says enough
    )
    @given(operations)
    def check(ops: list[dict[str, Any]]) -> None:
        run_sequence(mf, ek, ops, tally)

    check()
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\ndifferential vs Miniflare: {tally.sequences} sequences, {tally.operations} operations "
            f"in {elapsed:.1f} s; by op {dict(tally.by_op)}; intended differences {dict(tally.intended)}"
        )
    assert tally.sequences >= SEQUENCES
    assert RANDOM or elapsed < 120, "keep the differential test bounded"
