"""The compatibility decisions of issue 11 (README "Compatibility"), each asserted
through a real replica and central:

1. a key over 512 bytes named in a URL is Cloudflare's 414 "UTF-8 encoded length of N
   exceeds key length limit of 512." (in a bulk body, the same text with a 400);
2. a namespace id not in its issued form (uppercase, hyphenated UUID, wrong length) is
   400 / 10011 "could not parse UUID ..."; a well-formed unknown id stays 404 / 10013;
3. a text-mode bulk get that meets a non-UTF-8 value decodes it lossily (U+FFFD), as
   Miniflare, instead of failing the batch; type=json still fails on it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cloudflare import BadRequestError, Cloudflare
from helpers.cluster import create_account, start_central, start_replica, stop_all

LONG = "é" * 257  # 514 UTF-8 bytes


def _error(r: httpx.Response, status: int, code: int) -> str:
    assert r.status_code == status, r.text
    error = r.json()["errors"][0]
    assert error["code"] == code, r.text
    return str(error["message"])


async def test_compatibility_decisions(tmp_path: Path) -> None:
    central = start_central(tmp_path)
    replica = start_replica(tmp_path, central.grpc, "eu")
    try:
        account, secret = await create_account(central.grpc, known_at=[replica.http])
        headers = {"authorization": f"Bearer {secret}"}
        for base in (replica.http, central.http):
            root = f"{base}/client/v4/accounts/{account}/storage/kv/namespaces"
            with httpx.Client(headers=headers, timeout=10) as http:
                ns = http.post(root, json={"title": f"compat-{uuid.uuid4().hex[:8]}"}).json()["result"]["id"]
                p = f"{root}/{ns}"

                # 1. key length
                cloudflare_text = "UTF-8 encoded length of 514 exceeds key length limit of 512."
                for r in (
                    http.put(f"{p}/values/{quote(LONG)}", content=b"v"),
                    http.get(f"{p}/values/{quote(LONG)}"),
                    http.delete(f"{p}/values/{quote(LONG)}"),
                    http.get(f"{p}/metadata/{quote(LONG)}"),
                    http.get(f"{p}/keys", params={"prefix": LONG}),
                ):
                    assert _error(r, 414, 10001) == cloudflare_text
                r = http.put(f"{p}/bulk", json=[{"key": LONG, "value": "v"}])
                assert cloudflare_text in _error(r, 400, 10001)
                assert http.put(f"{p}/values/{quote('é' * 256)}", content=b"v").status_code == 200  # 512

                # 2. namespace ids
                for bad in (ns.upper(), str(uuid.UUID(ns)), ns[:-1], ns + "0", "nothex"):
                    for r in (
                        http.get(f"{root}/{bad}/values/k"),
                        http.put(f"{root}/{bad}/values/k", content=b"v"),
                        http.get(f"{root}/{bad}/keys"),
                        http.get(f"{root}/{bad}"),
                    ):
                        assert "could not parse UUID" in _error(r, 400, 10011)
                assert "namespace not found" in _error(http.get(f"{root}/{'0' * 32}/keys"), 404, 10013)
                # Auth still comes first: no token, no hint about the id.
                assert httpx.get(f"{root}/nothex/keys").status_code == 401

                # 3. text-mode bulk get of a binary value
                http.put(f"{p}/values/bin", content=b"\xff\xfeA").raise_for_status()
                http.put(f"{p}/values/txt", content=b"ok").raise_for_status()
                r = http.post(f"{p}/bulk/get", json={"keys": ["bin", "txt", "none"]})
                assert r.status_code == 200, r.text
                assert r.json()["result"]["values"] == {"bin": "\ufffd\ufffdA", "txt": "ok", "none": None}
                r = http.post(f"{p}/bulk/get", json={"keys": ["bin"], "type": "json"})
                assert "not valid JSON" in _error(r, 400, 10001)
                assert http.get(f"{p}/values/bin").content == b"\xff\xfeA"  # exact bytes there

            # The SDK sees a malformed id as a bad request, not a missing namespace.
            cf = Cloudflare(base_url=f"{base}/client/v4", api_token=secret, max_retries=0)
            with pytest.raises(BadRequestError):
                cf.kv.namespaces.get(str(uuid.UUID(ns)), account_id=account)
    finally:
        stop_all([replica, central])
