"""The cluster's own security: the gRPC cluster secret, TLS between replica and central,
and API tokens managed with `edgekv token` (a revocation reaches replicas at once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers.cluster import KV, start_central, start_replica, stop_all
from helpers.eventually import eventually_sync

from kvcore.errors import Unavailable
from kvcore.model import Permission
from kvcore.rpc.client import CentralClient

SECRET = "s3cret-cluster-key-for-tests"


def edgekv(*args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgekv", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env},
    )


async def test_cluster_secret_is_required(tmp_path: Path) -> None:
    central = start_central(tmp_path, extra=("--cluster-secret", SECRET))
    try:
        async with CentralClient(central.grpc) as anonymous:
            with pytest.raises(Unavailable, match="cluster secret"):
                await anonymous.list_tokens()
        async with CentralClient(central.grpc, cluster_secret="wrong") as wrong:
            with pytest.raises(Unavailable, match="cluster secret"):
                await wrong.create_token("a" * 32, Permission.WRITE)
        async with CentralClient(central.grpc, cluster_secret=SECRET) as ok:
            assert await ok.list_tokens() == []
        # The stream is guarded too: a replica with the wrong secret never becomes ready.
        bad = start_replica(tmp_path, central.grpc, "eu", extra=("--cluster-secret", "wrong"), wait=False)
        good = start_replica(tmp_path, central.grpc, "us", extra=("--cluster-secret", SECRET))
        try:
            # Once it answers at all (a loaded machine may take seconds to start it), it
            # has had its chance to connect: it still is not ready a while later.
            eventually_sync(
                lambda: httpx.get(f"{bad.http}/readyz").status_code > 0,
                30,
                "the wrong-secret replica answering",
                retry_on=(httpx.HTTPError,),
            )
            time.sleep(1.5)
            assert httpx.get(f"{bad.http}/readyz").status_code == 503
            assert httpx.get(f"{good.http}/readyz").status_code == 200
        finally:
            stop_all([bad, good])
    finally:
        central.stop()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def test_tls_between_replica_and_central(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    central = start_central(
        tmp_path, propagation_delay=0, extra=("--tls-cert", str(cert), "--tls-key", str(key))
    )
    replica = None
    try:
        async with CentralClient(central.grpc, timeout_s=2) as plaintext:
            with pytest.raises(Unavailable):
                await plaintext.list_tokens()
        async with CentralClient(central.grpc, tls_ca=str(cert)) as client:
            account = "c" * 32
            _, secret = await client.create_token(account, Permission.WRITE)
        replica = start_replica(tmp_path, central.grpc, "eu", extra=("--tls-ca", str(cert)))
        async with KV(replica.http, account, secret) as kv:
            ns = await kv.create_namespace("tls")
            assert (await kv.put(ns, "k", b"over tls")).status_code == 200
            r = await kv.get(ns, "k", strong=True)
            assert r.status_code == 200 and r.content == b"over tls"
    finally:
        stop_all([p for p in (replica, central) if p is not None])


async def test_token_commands_and_revocation_reach_replicas(tmp_path: Path) -> None:
    central = start_central(tmp_path, propagation_delay=0)
    replica = start_replica(tmp_path, central.grpc, "eu")
    try:
        account = "d" * 32
        made = edgekv(
            "token",
            "create",
            "--central",
            central.grpc,
            "--account",
            account,
            "--permission",
            "write",
            "--json",
        )
        assert made.returncode == 0, made.stderr
        writer = json.loads(made.stdout)
        # The central and the account from the environment, as `edgekv dev` prints them.
        made = edgekv(
            "token",
            "create",
            "--permission",
            "read",
            "--json",
            EDGEKV_CENTRAL=central.grpc,
            EDGEKV_ACCOUNT_ID=account,
        )
        assert made.returncode == 0, made.stderr
        reader = json.loads(made.stdout)
        assert reader["account_id"] == account
        listed = edgekv("token", "list", "--central", central.grpc, "--account", account, "--json")
        assert {t["id"] for t in json.loads(listed.stdout)} == {writer["id"], reader["id"]}
        assert all("token" not in t for t in json.loads(listed.stdout)), "secrets are never listed"
        bad = edgekv(
            "token", "create", "--central", central.grpc, "--account", account, "--permission", "admin"
        )
        assert bad.returncode != 0

        async with (
            KV(replica.http, account, writer["token"]) as w,
            KV(replica.http, account, reader["token"]) as r,
        ):
            ns = await w.create_namespace("tokens")
            assert (await w.put(ns, "k", b"v")).status_code == 200
            assert (await r.get(ns, "k")).status_code == 200
            denied = await r.put(ns, "k", b"nope")
            assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == 10000

            revoked = edgekv("token", "revoke", "--central", central.grpc, reader["id"])
            assert revoked.returncode == 0, revoked.stderr
            done = time.monotonic()
            while (resp := await r.get(ns, "k")).status_code != 401:
                assert time.monotonic() - done < 0.25, "revocation not pushed to the replica at once"
            assert resp.json()["errors"][0]["code"] == 10000
            assert (await w.get(ns, "k")).status_code == 200

        gone = edgekv("token", "revoke", "--central", central.grpc, reader["id"])
        assert gone.returncode == 1 and gone.stderr.startswith("error:")
        unreachable = edgekv("token", "list", "--central", "127.0.0.1:1", timeout=30)
        assert unreachable.returncode == 1 and "error:" in unreachable.stderr
    finally:
        stop_all([replica, central])
