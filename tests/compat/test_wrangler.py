"""Real wrangler (npm, pinned in tests/compat/package.json) against real edgekv processes,
with only CLOUDFLARE_API_TOKEN and CLOUDFLARE_API_BASE_URL (issue 11):

- `wrangler whoami` and `wrangler kv namespace list` discover the account through
  /user/tokens/verify, /user, /accounts and /memberships, on a replica and on central;
- what `wrangler kv key list` prints, `edgekv kv bulk get` and `bulk delete` take back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers.cluster import create_account, start_central, start_replica, stop_all
from helpers.node import wrangler, wrangler_json

pytestmark = pytest.mark.timeout(240)


def edgekv_kv(base: str, account: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"EDGEKV_ENDPOINT": base, "EDGEKV_ACCOUNT_ID": account, "EDGEKV_API_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "edgekv", "kv", *args],
        env={**_clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}


async def test_wrangler_with_only_a_token(tmp_path: Path) -> None:
    central = start_central(tmp_path)
    replica = start_replica(tmp_path, central.grpc, "eu")
    home = tmp_path / "home"
    try:
        account, token = await create_account(central.grpc, known_at=[replica.http])
        other, _ = await create_account(central.grpc)  # never shown to `token`
        for base in (replica.http, central.http):
            api = f"{base}/client/v4"
            who = wrangler_json(home, api, token, "whoami", "--json")
            assert who["loggedIn"] is True and who["authType"] == "User API Token"
            assert [a["id"] for a in who["accounts"]] == [account]
            text = wrangler(home, api, token, "whoami")
            assert text.returncode == 0 and account in text.stdout and other not in text.stdout

        api = f"{replica.http}/client/v4"
        created = wrangler(home, api, token, "kv", "namespace", "create", "from-wrangler")
        assert created.returncode == 0, created.stdout + created.stderr
        listed = wrangler_json(home, api, token, "kv", "namespace", "list")
        assert [n["title"] for n in listed] == ["from-wrangler"]
        ns = listed[0]["id"]

        # wrangler's own puts meet the expiration bounds, and show edgekv's message.
        ns_args = ("--namespace-id", ns, "--remote")
        ok = wrangler(home, api, token, "kv", "key", "put", "w", "v", *ns_args, "--ttl", "60")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        for flag, value, words in (
            ("--ttl", "59", "Expiration TTL must be at least 60"),
            ("--expiration", str(int(time.time() * 1000)), "milliseconds"),
        ):
            bad = wrangler(home, api, token, "kv", "key", "put", "w", "v", *ns_args, flag, value)
            assert bad.returncode != 0 and words in bad.stdout + bad.stderr, bad.stdout + bad.stderr
        p = wrangler(home, api, token, "kv", "key", "delete", "w", *ns_args)
        assert p.returncode == 0, p.stdout + p.stderr

        # Keys written by edgekv, listed by wrangler, taken back by edgekv's bulk commands.
        items = [{"key": f"k{i}", "value": f"v{i}", "metadata": {"i": i}} for i in range(5)]
        put_file = tmp_path / "put.json"
        put_file.write_text(json.dumps(items))
        p = edgekv_kv(replica.http, account, token, "bulk", "put", str(put_file), "--namespace-id", ns)
        assert p.returncode == 0, p.stderr
        keys = wrangler_json(home, api, token, "kv", "key", "list", "--namespace-id", ns, "--remote")
        assert [k["name"] for k in keys] == [f"k{i}" for i in range(5)]
        assert keys[0]["metadata"] == {"i": 0}
        list_file = tmp_path / "wrangler-list.json"
        list_file.write_text(json.dumps(keys))

        p = edgekv_kv(replica.http, account, token, "bulk", "get", str(list_file), "--namespace-id", ns)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout) == {f"k{i}": f"v{i}" for i in range(5)}
        p = edgekv_kv(
            replica.http, account, token, "bulk", "delete", str(list_file), "--namespace-id", ns, "--force"
        )
        assert p.returncode == 0, p.stderr
        r = httpx.get(
            f"{central.http}/client/v4/accounts/{account}/storage/kv/namespaces/{ns}/keys",
            headers={"authorization": f"Bearer {token}"},
        )
        assert r.json()["result"] == []
    finally:
        stop_all([replica, central])
