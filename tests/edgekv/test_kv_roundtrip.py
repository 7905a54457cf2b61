"""`edgekv kv` takes back what it prints (issue 11): the items of `key list --json`
({"name", "expiration"?, "metadata"?}) feed `bulk get` and `bulk delete`, as wrangler's
bulk commands take them; `bulk delete` asks first on a terminal unless `--force` / `-f`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from helpers.dev_cluster import EDGEKV, Cluster
from kv_support import as_json, kv, ok, one_line_error

pytestmark = pytest.mark.timeout(60)


def _put(cluster: Cluster, namespace: str, tmp_path: Path, count: int) -> None:
    items = [
        {"key": f"k{i}", "value": f"v{i}", "metadata": {"i": i}, "expiration_ttl": 600} for i in range(count)
    ]
    path = tmp_path / "put.json"
    path.write_text(json.dumps(items))
    ok(kv(cluster, "bulk", "put", str(path), "--namespace-id", namespace))


def test_key_list_output_feeds_bulk_get_and_delete(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    ns = ["--namespace-id", namespace]
    _put(cluster, namespace, tmp_path, 4)
    listed = as_json(kv(cluster, "key", "list", *ns, "--json"))
    assert [k["name"] for k in listed] == ["k0", "k1", "k2", "k3"]
    assert listed[0]["metadata"] == {"i": 0} and listed[0]["expiration"] > time.time()
    list_file = tmp_path / "list.json"
    list_file.write_text(json.dumps(listed))
    assert as_json(kv(cluster, "bulk", "get", str(list_file), *ns)) == {f"k{i}": f"v{i}" for i in range(4)}

    # Every shape wrangler's bulk commands take, plus edgekv's {"key"} (a bulk put file).
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps(["k0", {"name": "k1"}, {"key": "k2"}, {"name": "k3", "key": "k3"}]))
    assert list(as_json(kv(cluster, "bulk", "get", str(mixed), *ns))) == ["k0", "k1", "k2", "k3"]
    for bad, message in (
        ([{"name": "k0", "key": "k1"}], "different keys"),
        ([{"metadata": {}}], "'name' or 'key'"),
        ([{"name": 5}], "must be a string"),
        ([None], "expected a key string"),
    ):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        assert message in one_line_error(kv(cluster, "bulk", "get", str(path), *ns), 2)
        assert message in one_line_error(kv(cluster, "bulk", "delete", str(path), *ns, "--force"), 2)

    # Outside a terminal, wrangler's fallback answer (yes) is used and said.
    res = ok(kv(cluster, "bulk", "delete", str(list_file), *ns))
    assert "Using fallback value in non-interactive context: yes" in res.stderr
    assert as_json(kv(cluster, "key", "list", *ns, "--json")) == []
    _put(cluster, namespace, tmp_path, 2)
    res = ok(kv(cluster, "bulk", "delete", str(list_file), *ns, "-f"))
    assert "Are you sure" not in res.stderr
    assert as_json(kv(cluster, "key", "list", *ns, "--json")) == []


@pytest.mark.parametrize(("answer", "deleted"), [("n", False), ("y", True), ("", True)])
def test_bulk_delete_asks_on_a_terminal(
    cluster: Cluster, namespace: str, tmp_path: Path, answer: str, deleted: bool
) -> None:
    """A real `edgekv` process whose stdin is a pseudo-terminal (the default answer is yes)."""
    _put(cluster, namespace, tmp_path, 2)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(["k0", "k1"]))
    primary, secondary = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"} | cluster.env("eu")
    try:
        proc = subprocess.Popen(
            [str(EDGEKV), "kv", "bulk", "delete", str(keys), "--namespace-id", namespace],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.write(primary, f"{answer}\n".encode())
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 0, err
    assert b"Are you sure you want to delete all the keys read from" in err
    left = as_json(kv(cluster, "key", "list", "--namespace-id", namespace, "--json", where="central"))
    assert (left == []) is deleted, (answer, left, err)
    if not deleted:
        assert b"Not deleting keys read from" in err
