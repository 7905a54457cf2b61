"""`edgekv kv` against a real dev cluster: each command's happy path and error paths,
with exit codes (1 = API error, 2 = usage error or malformed file)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from helpers.dev_cluster import EDGEKV, Cluster
from kv_support import as_json, kv, ok, one_line_error

pytestmark = pytest.mark.timeout(60)


def test_namespace_commands(cluster: Cluster) -> None:
    title = f"cli-{uuid.uuid4().hex[:8]}"
    created = as_json(kv(cluster, "namespace", "create", title, "--json"))
    assert created["title"] == title and len(created["id"]) == 32
    assert "already exists" in one_line_error(kv(cluster, "namespace", "create", title), 1)
    assert {"id": created["id"], "title": title} in as_json(kv(cluster, "namespace", "list", "--json"))
    assert title in ok(kv(cluster, "namespace", "list", where="eu")).stdout
    ok(kv(cluster, "namespace", "rename", title, "--new-name", title + "-b"))
    ok(kv(cluster, "namespace", "rename", "--namespace-id", created["id"], "--new-name", title + "-c"))
    one_line_error(kv(cluster, "namespace", "rename", title, "--new-name", "x"), 1)
    one_line_error(kv(cluster, "namespace", "rename", "--namespace-id", "f" * 32, "--new-name", "x"), 1)
    ok(kv(cluster, "namespace", "delete", title + "-c"))
    assert created["id"] not in ok(kv(cluster, "namespace", "list")).stdout
    one_line_error(kv(cluster, "namespace", "delete", "--namespace-id", created["id"]), 1)
    one_line_error(kv(cluster, "namespace", "delete"), 2)


@pytest.mark.parametrize("where", ["central", "us"])
def test_key_commands(cluster: Cluster, namespace: str, where: str, tmp_path: Path) -> None:
    ns = ["--namespace-id", namespace]
    ok(
        kv(
            cluster,
            "key",
            "put",
            "greeting",
            "hello",
            *ns,
            "--metadata",
            '{"lang":"en"}',
            "--ttl",
            "300",
            where=where,
        )
    )
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 4)
    ok(kv(cluster, "key", "put", "a/b c?", "--path", str(blob), *ns, where=where))
    ok(kv(cluster, "key", "put", "later", "x", *ns, "--expiration", "2000000000", where=where))
    assert ok(kv(cluster, "key", "get", "a/b c?", *ns, where=where)).stdout_bytes == bytes(range(256)) * 4
    assert ok(kv(cluster, "key", "get", "greeting", *ns, "--text", where=where)).stdout == "hello\n"
    assert ok(kv(cluster, "key", "get", "greeting", *ns, "--strong", where=where)).stdout_bytes == b"hello"
    keys = as_json(kv(cluster, "key", "list", *ns, "--json", where=where))
    assert [k["name"] for k in keys] == ["a/b c?", "greeting", "later"]
    assert keys[1]["metadata"] == {"lang": "en"} and "expiration" in keys[1]
    assert keys[2]["expiration"] == 2000000000
    assert [k["name"] for k in as_json(kv(cluster, "key", "list", *ns, "--prefix", "gr", "--json"))] == [
        "greeting"
    ]
    table = ok(kv(cluster, "key", "list", *ns, where=where)).stdout
    assert "greeting" in table and "2033-05-18" in table
    ok(kv(cluster, "key", "delete", "greeting", *ns, where=where))
    assert "not found" in one_line_error(kv(cluster, "key", "get", "greeting", *ns, where=where), 1)


def test_key_commands_by_title_and_error_paths(cluster: Cluster, namespace: str) -> None:
    with cluster.admin() as admin:
        title = admin.get_namespace(namespace).title
    ok(kv(cluster, "key", "put", "k", "v", "--binding", title))
    assert ok(kv(cluster, "key", "get", "k", "--namespace", title)).stdout == "v"
    missing = ["--namespace-id", "0" * 32]
    for args in (["put", "k", "v"], ["get", "k"], ["list"], ["delete", "k"]):
        assert "namespace not found" in one_line_error(kv(cluster, "key", *args, *missing), 1)
    assert "no namespace titled" in one_line_error(kv(cluster, "key", "get", "k", "--namespace", "nope-x"), 1)
    bad = kv(cluster, "key", "get", "k", "--namespace-id", namespace, EDGEKV_API_TOKEN="wrong")
    assert "Authentication" in one_line_error(bad, 1)
    one_line_error(kv(cluster, "key", "put", "k", "v", "--namespace-id", namespace, "--ttl", "5"), 1)
    one_line_error(kv(cluster, "key", "put", "k", "--namespace-id", namespace), 2)
    one_line_error(kv(cluster, "key", "put", "k", "v", "--namespace-id", namespace, "--metadata", "{"), 2)
    one_line_error(kv(cluster, "key", "get", "k", "--namespace-id", namespace, EDGEKV_ENDPOINT=""), 2)
    unreachable = kv(
        cluster, "key", "get", "k", "--namespace-id", namespace, "--endpoint", "http://127.0.0.1:9"
    )
    one_line_error(unreachable, 1)


def test_bulk_commands(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    ns = ["--namespace-id", namespace]
    items = [
        {"key": "plain", "value": "p"},
        {"key": "b64", "value": "aGVsbG8=", "base64": True},
        {"key": "meta", "value": "m", "metadata": {"n": 1}, "expiration_ttl": 600},
    ]
    put_file = tmp_path / "put.json"
    put_file.write_text(json.dumps(items))
    assert as_json(kv(cluster, "bulk", "put", str(put_file), *ns, "--json")) == {
        "successful_key_count": 3,
        "unsuccessful_keys": [],
    }
    assert ok(kv(cluster, "key", "get", "b64", *ns)).stdout == "hello"
    get_file = tmp_path / "get.json"
    get_file.write_text(json.dumps(["plain", "b64", "missing"]))
    assert as_json(kv(cluster, "bulk", "get", str(get_file), *ns)) == {
        "plain": "p",
        "b64": "hello",
        "missing": None,
    }
    with_meta = as_json(kv(cluster, "bulk", "get", str(get_file), *ns, "--metadata"))
    assert with_meta["plain"]["value"] == "p" and with_meta["missing"] is None
    many = tmp_path / "many.json"
    many.write_text(json.dumps([f"g{i}" for i in range(250)]))
    assert len(as_json(kv(cluster, "bulk", "get", str(many), *ns))) == 250  # 3 requests of <= 100
    ok(kv(cluster, "bulk", "delete", str(put_file), *ns))  # objects with `key` work for delete
    assert as_json(kv(cluster, "key", "list", *ns, "--json")) == []

    for name, text in {
        "bad.json": "[{",
        "obj.json": "{}",
        "noval.json": '[{"key": "a"}]',
        "ttl.json": "x",
    }.items():
        path = tmp_path / name
        path.write_text(text)
        assert name in one_line_error(kv(cluster, "bulk", "put", str(path), *ns), 2)
    one_line_error(kv(cluster, "bulk", "delete", str(tmp_path / "absent.json"), *ns), 2)
    keys_file = tmp_path / "numbers.json"
    keys_file.write_text("[1, 2]")
    one_line_error(kv(cluster, "bulk", "get", str(keys_file), *ns), 2)
    one_line_error(kv(cluster, "bulk", "put", str(put_file), "--namespace-id", "0" * 32), 1)
    one_line_error(kv(cluster, "bulk", "put", str(put_file), *ns, EDGEKV_API_TOKEN="wrong"), 1)


@pytest.mark.timeout(180)
def test_bulk_put_of_25000_pairs_arrives_whole(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    count = 25_000
    path = tmp_path / "big.json"
    items = [{"key": f"item/{i:05d}", "value": f"value-{i}"} for i in range(count)]
    items[7]["metadata"] = {"seven": True}
    path.write_text(json.dumps(items))
    result = as_json(kv(cluster, "bulk", "put", str(path), "--namespace-id", namespace, "--json"))
    assert result == {"successful_key_count": count, "unsuccessful_keys": []}
    keys = as_json(kv(cluster, "key", "list", "--namespace-id", namespace, "--prefix", "item/", "--json"))
    assert len(keys) == count
    assert [k["name"] for k in keys] == [item["key"] for item in items]
    assert keys[7]["metadata"] == {"seven": True}
    assert (
        ok(kv(cluster, "key", "get", "item/24999", "--namespace-id", namespace, where="ap")).stdout
        == "value-24999"
    )


def test_installed_command_exit_codes(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """The real `edgekv kv` entry point: one line on stderr, no traceback, no request logs."""
    env = {**cluster.env("eu"), "PATH": "/usr/bin:/bin"}
    run = lambda *a: subprocess.run([str(EDGEKV), "kv", *a], env=env, capture_output=True, timeout=30)  # noqa: E731
    done = run("key", "put", "k", "v", "--namespace-id", namespace)
    assert done.returncode == 0, done.stderr
    done = run("key", "get", "k", "--namespace-id", namespace)
    assert done.returncode == 0 and done.stdout == b"v"
    done = run("key", "get", "k", "--namespace-id", namespace, "--token", "wrong")
    assert done.returncode == 1 and done.stderr.count(b"\n") == 1 and done.stderr.startswith(b"error: ")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    done = run("bulk", "put", str(bad), "--namespace-id", namespace)
    assert done.returncode == 2 and b"Traceback" not in done.stderr and done.stderr.count(b"\n") == 1
