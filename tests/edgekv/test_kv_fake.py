"""`edgekv kv` against the in-memory fake API: output shapes, exit codes, option handling.
The same commands run against a real dev cluster in test_kv_cluster.py."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fake_api_support import ACCOUNT, TOKEN, FakeAPI
from typer.testing import CliRunner

import edgekv.kv as kv_cli
from kvcore.client import KVClient

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    fake = FakeAPI()

    def make_client(endpoint: str, account: str, token: str, timeout: float) -> KVClient:
        return KVClient(endpoint, account, token, http_client=httpx.Client(transport=fake.transport()))

    monkeypatch.setattr(kv_cli, "make_client", make_client)
    monkeypatch.setenv("EDGEKV_ENDPOINT", "http://kv.test")
    monkeypatch.setenv("EDGEKV_API_TOKEN", TOKEN)
    monkeypatch.setenv("EDGEKV_ACCOUNT_ID", ACCOUNT)
    return fake


def run(*args: str) -> object:
    return CliRunner().invoke(kv_cli.kv_app, list(args))


def test_namespace_lifecycle(api: FakeAPI) -> None:
    res = run("namespace", "create", "first", "--json")
    assert res.exit_code == 0, res.stderr
    ns_id = json.loads(res.stdout)["id"]
    res = run("namespace", "list")
    assert res.exit_code == 0 and "first" in res.stdout and ns_id in res.stdout
    res = run("namespace", "create", "first")
    assert res.exit_code == 1
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1
    assert run("namespace", "rename", "first", "--new-name", "second").exit_code == 0
    assert json.loads(run("namespace", "list", "--json").stdout) == [{"id": ns_id, "title": "second"}]
    res = run("namespace", "delete", "first")
    assert res.exit_code == 1 and "first" in res.stderr
    assert run("namespace", "delete", "--namespace-id", ns_id).exit_code == 0
    assert json.loads(run("namespace", "list", "--json").stdout) == []


def test_keys(api: FakeAPI, tmp_path: Path) -> None:
    run("namespace", "create", "ns")
    res = run("key", "put", "greeting", "hello", "--namespace", "ns", "--metadata", '{"a":1}', "--ttl", "120")
    assert res.exit_code == 0, res.stderr
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)))
    assert run("key", "put", "blob", "--path", str(blob), "--binding", "ns").exit_code == 0
    res = run("key", "get", "blob", "--namespace", "ns")
    assert res.exit_code == 0 and res.stdout_bytes == bytes(range(256))
    res = run("key", "get", "greeting", "--namespace", "ns", "--text")
    assert res.stdout == "hello\n"
    listed = json.loads(run("key", "list", "--namespace", "ns", "--json").stdout)
    assert [k["name"] for k in listed] == ["blob", "greeting"]
    assert listed[1]["metadata"] == {"a": 1} and "expiration" in listed[1]
    table = run("key", "list", "--namespace", "ns", "--prefix", "gr").stdout
    assert "greeting" in table and "blob" not in table
    assert run("key", "delete", "greeting", "--namespace", "ns").exit_code == 0
    res = run("key", "get", "greeting", "--namespace", "ns")
    assert res.exit_code == 1 and "not found" in res.stderr


def test_key_list_follows_cursors(api: FakeAPI) -> None:
    run("namespace", "create", "ns")
    for i in range(10):
        run("key", "put", f"k{i}", "v", "--namespace", "ns")
    assert len(json.loads(run("key", "list", "--namespace", "ns", "--json").stdout)) == 10


def test_usage_errors_exit_2(api: FakeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run("namespace", "create", "ns")
    assert run("key", "put", "k", "--namespace", "ns").exit_code == 2
    assert run("key", "put", "k", "v", "--path", "x", "--namespace", "ns").exit_code == 2
    assert run("key", "put", "k", "v", "--namespace", "ns", "--metadata", "{nope").exit_code == 2
    assert run("key", "get", "k").exit_code == 2
    assert run("key", "get", "k", "--namespace", "ns", "--namespace-id", "x").exit_code == 2
    monkeypatch.delenv("EDGEKV_API_TOKEN")
    res = run("namespace", "list")
    assert res.exit_code == 2 and "--token" in res.stderr


def test_api_errors_exit_1(api: FakeAPI) -> None:
    res = run("key", "get", "k", "--namespace-id", "f" * 32)
    assert res.exit_code == 1 and "namespace not found" in res.stderr
    res = run("namespace", "list", "--token", "bad")
    assert res.exit_code == 1 and "Authentication" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_bulk(api: FakeAPI, tmp_path: Path) -> None:
    ns_id = json.loads(run("namespace", "create", "ns", "--json").stdout)["id"]
    items = [{"key": f"k{i:04d}", "value": f"v{i}"} for i in range(2500)]
    items.append({"key": "b64", "value": "aGk=", "base64": True})
    put_file = tmp_path / "put.json"
    put_file.write_text(json.dumps(items))
    res = run("bulk", "put", str(put_file), "--namespace-id", ns_id, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {"successful_key_count": 2501, "unsuccessful_keys": []}
    assert sum(1 for r in api.requests if r.url.path.endswith("/bulk")) == 3  # 1,000 per request
    assert api.data[ns_id]["b64"].value == b"hi"
    get_file = tmp_path / "get.json"
    get_file.write_text(json.dumps(["k0001", "nope"]))
    res = run("bulk", "get", str(get_file), "--namespace", "ns")
    assert json.loads(res.stdout) == {"k0001": "v1", "nope": None}
    del_file = tmp_path / "del.json"
    del_file.write_text(json.dumps([{"key": f"k{i:04d}"} for i in range(2000)] + ["b64"]))
    res = run("bulk", "delete", str(del_file), "--namespace", "ns")
    assert res.exit_code == 0 and "2001" in res.stdout
    assert len(api.data[ns_id]) == 500


def test_malformed_bulk_files_exit_2(api: FakeAPI, tmp_path: Path) -> None:
    run("namespace", "create", "ns")
    cases = {
        "notjson.json": "[{",
        "object.json": '{"key": "a", "value": "b"}',
        "novalue.json": '[{"key": "a"}]',
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        res = run("bulk", "put", str(path), "--namespace", "ns")
        assert res.exit_code == 2, name
        assert res.stderr.startswith("error: ") and name in res.stderr
    res = run("bulk", "delete", str(tmp_path / "absent.json"), "--namespace", "ns")
    assert res.exit_code == 2
    before = len(api.requests)
    path = tmp_path / "keys.json"
    path.write_text("[1, 2]")
    assert run("bulk", "get", str(path), "--namespace", "ns").exit_code == 2
    assert len(api.requests) == before  # nothing sent for a malformed file


def test_progress_bar_forced_on_and_default_off(api: FakeAPI, tmp_path: Path) -> None:
    run("namespace", "create", "ns")
    path = tmp_path / "put.json"
    path.write_text(json.dumps([{"key": f"k{i}", "value": "v"} for i in range(3000)]))
    res = run("bulk", "put", str(path), "--namespace", "ns", "--progress", "--batch-size", "500")
    assert res.exit_code == 0, res.stderr
    assert "error" not in res.stderr  # the (transient) bar goes to stderr; stdout stays clean
    assert res.stdout == "Success: written 3000 keys\n"
    res = run("bulk", "delete", str(path), "--namespace", "ns", "--force")
    assert res.exit_code == 0 and res.stderr == ""  # not a terminal: no bar
    path.write_text(json.dumps([{"key": "one", "value": "v"}]))
    assert run("bulk", "put", str(path), "--namespace", "ns").stdout == "Success: written 1 key\n"


def test_unexpected_errors_are_one_line(api: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("kaput\nsecond line")

    monkeypatch.setattr(KVClient, "list_namespaces", boom)
    res = run("namespace", "list")
    assert res.exit_code == 1 and res.stderr == "error: unexpected RuntimeError: kaput second line\n"


def test_help_lists_own_options_then_the_shared_ones(api: FakeAPI) -> None:
    """The shared options are declared once (edgekv.kv's _command) and spliced in after
    each command's own, in a fixed order, each with its environment variable."""
    res = CliRunner().invoke(kv_cli.kv_app, ["key", "put", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    flags = ["--path", "--ttl", "--expiration", "--metadata", "--namespace-id", "--namespace,--binding"]
    flags += ["--endpoint", "--token", "--account", "--timeout"]
    at = [res.stdout.index(flag) for flag in flags]
    assert at == sorted(at), res.stdout
    for env in ("EDGEKV_NAMESPACE_ID", "EDGEKV_ENDPOINT", "EDGEKV_API_TOKEN", "EDGEKV_ACCOUNT_ID"):
        assert env in res.stdout
    bulk = CliRunner().invoke(kv_cli.kv_app, ["bulk", "get", "--help"], env={"COLUMNS": "200"}).stdout
    assert "[default: 60.0]" in bulk and "Print JSON for scripts" not in bulk
    listing = CliRunner().invoke(kv_cli.kv_app, ["key", "list", "--help"], env={"COLUMNS": "200"}).stdout
    assert listing.index("--timeout") < listing.index("--json")
