"""Account discovery with only a token (issue 11): `/user/tokens/verify`, `/memberships`,
`/accounts`, `/accounts/{id}` and `/user`, on central and on a replica, through httpx
and Cloudflare's Python SDK. The replica answers from its replicated token table, so
it keeps answering with central stopped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from cloudflare import Cloudflare, PermissionDeniedError
from helpers.cluster import create_account, start_central, start_replica, stop_all

from kvcore.model import Permission
from kvcore.rpc.client import CentralClient


def _get(base: str, path: str, secret: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    return httpx.get(f"{base}/client/v4{path}", headers=headers, timeout=10)


def _check_discovery(base: str, account: str, secret: str, other_account: str) -> None:
    r = _get(base, "/user/tokens/verify", secret)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["errors"] == []
    assert body["result"]["status"] == "active" and len(body["result"]["id"]) == 32
    assert body["messages"][0]["message"] == "This API Token is valid and active"
    token_id = body["result"]["id"]

    r = _get(base, f"/accounts/{account}/tokens/verify", secret)
    assert r.status_code == 200 and r.json()["result"]["id"] == token_id

    r = _get(base, "/memberships?page=1", secret)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [m["account"]["id"] for m in body["result"]] == [account]
    assert body["result"][0]["roles"] == ["Workers KV Storage Write"]
    assert body["result"][0]["status"] == "accepted"
    assert body["result_info"] == {"page": 1, "per_page": 20, "count": 1, "total_count": 1, "total_pages": 1}
    assert _get(base, "/memberships?page=2", secret).json()["result"] == []

    r = _get(base, "/accounts", secret)
    assert r.status_code == 200
    assert r.json()["result"] == [
        {
            "id": account,
            "name": account,
            "type": "standard",
            "settings": {"enforce_twofactor": False, "abuse_contact_email": None},
        }
    ]
    assert _get(base, f"/accounts/{account}", secret).json()["result"]["id"] == account
    # Only the token's own account: another one is refused, never described.
    r = _get(base, f"/accounts/{other_account}", secret)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000

    r = _get(base, "/user", secret)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 9109

    # Unknown and missing tokens: 1000 on verify (as Cloudflare), 10000 elsewhere.
    for bad in ("not-a-real-token-at-all", None):
        r = _get(base, "/user/tokens/verify", bad)
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == 1000, r.text
        r = _get(base, "/memberships", bad)
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == 10000
        assert _get(base, "/accounts", bad).status_code == 401


def _check_sdk(base: str, account: str, secret: str) -> None:
    cf = Cloudflare(base_url=f"{base}/client/v4", api_token=secret, max_retries=0)
    assert cf.user.tokens.verify().status == "active"
    assert [a.id for a in cf.accounts.list()] == [account]
    assert cf.accounts.get(account_id=account).name == account
    assert [m.account.id for m in cf.memberships.list() if m.account] == [account]
    with pytest.raises(PermissionDeniedError):
        cf.user.get()


async def test_account_discovery_on_central_and_replica(tmp_path: Path) -> None:
    central = start_central(tmp_path)
    replica = start_replica(tmp_path, central.grpc, "eu")
    try:
        # Token creates are pushed to the replica at once, but not before central answers.
        account, secret = await create_account(central.grpc, known_at=[replica.http])
        other, read_secret = await create_account(central.grpc, Permission.READ, known_at=[replica.http])
        for base in (central.http, replica.http):
            _check_discovery(base, account, secret, other)
            _check_sdk(base, account, secret)
            r = _get(base, "/memberships", read_secret)
            assert r.json()["result"][0]["roles"] == ["Workers KV Storage Read"]
            assert r.json()["result"][0]["account"]["id"] == other
        # A revocation reaches the replica's token table at once (pushed, not lazy).
        async with CentralClient(central.grpc) as admin:
            (read_token,) = await admin.list_tokens(other)
            await admin.revoke_token(read_token.id)
        deadline = time.monotonic() + 10
        while _get(replica.http, "/user/tokens/verify", read_secret).status_code == 200:
            assert time.monotonic() < deadline, "revocation did not reach the replica"
            await asyncio.sleep(0.05)
        r = _get(replica.http, "/user/tokens/verify", read_secret)
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == 1000
        # The replica answers locally: central down changes nothing for discovery.
        central.stop()
        _check_discovery(replica.http, account, secret, other)
    finally:
        stop_all([replica, central])
