"""Shared pieces of the REST tests: a real RocksStore behind StoreBackend and the app,
served by uvicorn on a free loopback port in a background thread, tokens, and a
validator of responses against Cloudflare's reference OpenAPI schemas."""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from helpers.tokens import create_token
from jsonschema import Draft202012Validator

from central.rest_backend import StoreBackend
from kvcore.metrics import Metrics
from kvcore.model import Permission
from kvcore.rest.app import create_app
from kvcore.store.rocks import RocksStore

ACCOUNT = "0123456789abcdef0123456789abcdef"
OTHER_ACCOUNT = "fedcba9876543210fedcba9876543210"
# Cloudflare's OpenAPI subset for KV, kept beside the tests so that every checkout runs
# them (a copy of ../shared/reference/, which load_validator compares when it is there).
REFERENCE = Path(__file__).with_name("cloudflare-kv-openapi.json")
SHARED_REFERENCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "reference" / REFERENCE.name


@dataclass
class Env:
    store: RocksStore
    app: Any
    metrics: Metrics
    write_secret: str
    read_secret: str
    other_secret: str  # a write token of OTHER_ACCOUNT
    base_url: str = ""
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    def headers(self, secret: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret or self.write_secret}"}

    @property
    def prefix(self) -> str:
        return f"{self.base_url}/client/v4/accounts/{ACCOUNT}/storage/kv/namespaces"


def make_env(path: Path) -> Env:
    store = RocksStore(str(path / "store"))
    metrics = Metrics("central")
    app = create_app(StoreBackend(store), metrics)
    _, write_secret = create_token(store, ACCOUNT, Permission.WRITE)
    _, read_secret = create_token(store, ACCOUNT, Permission.READ)
    _, other_secret = create_token(store, OTHER_ACCOUNT, Permission.WRITE)
    return Env(store, app, metrics, write_secret, read_secret, other_secret)


def start_server(env: Env) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(env.app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    env.base_url, env.server, env.thread = f"http://127.0.0.1:{port}", server, thread


def stop_server(env: Env) -> None:
    if env.server is not None and env.thread is not None:
        env.server.should_exit = True
        env.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    env = make_env(tmp_path_factory.mktemp("rest"))
    start_server(env)
    try:
        yield env
    finally:
        stop_server(env)
        env.store.close()


# ----------------------------------------------------------------------------- schemas


def _oas30_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects to JSON Schema: `nullable: true` becomes `null` allowed."""
    if isinstance(node, list):
        return [_oas30_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _oas30_to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


_TEMPLATES = [
    (re.compile(r"^/accounts/[^/]+/storage/kv/namespaces/[^/]+/(values|metadata)/.+$"), "{kind}"),
    (re.compile(r"^/accounts/[^/]+/storage/kv/namespaces/[^/]+/bulk/(get|delete)$"), "bulk/{kind}"),
    (re.compile(r"^/accounts/[^/]+/storage/kv/namespaces/[^/]+/(bulk|keys)$"), "{kind}"),
    (re.compile(r"^/accounts/[^/]+/storage/kv/namespaces/[^/]+$"), ""),
    (re.compile(r"^/accounts/[^/]+/storage/kv/namespaces$"), None),
]
_NS = "/accounts/{account_id}/storage/kv/namespaces"


def spec_path(raw_path: str) -> str | None:
    """The reference path template of a request path (after /client/v4)."""
    for pattern, template in _TEMPLATES:
        m = pattern.match(raw_path)
        if m is None:
            continue
        if template is None:
            return _NS
        if template == "":
            return _NS + "/{namespace_id}"
        kind = m.group(1)
        suffix = {"values": "values/{key_name}", "metadata": "metadata/{key_name}"}.get(kind, kind)
        if template.startswith("bulk/"):
            suffix = f"bulk/{kind}"
        return f"{_NS}/{{namespace_id}}/{suffix}"
    return None


@dataclass
class SpecValidator:
    """Validates JSON responses against the reference spec's response schemas."""

    spec: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    checked: int = 0

    def __post_init__(self) -> None:
        components = copy.deepcopy(self.spec["components"])
        # The documented quirk: missing keys come back null; miniflare patches nullable in.
        bulk_get = components["schemas"]["workers-kv_bulk-get-result"]
        bulk_get["properties"]["values"]["additionalProperties"]["nullable"] = True
        self.components = _oas30_to_json_schema(components)

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        template = spec_path(path)
        if template is None:
            return None
        if status >= 400:
            # Bulk write/delete describe their 4XX as the 200 body (a spec quirk);
            # every failure (also of a method the path lacks) is the failure envelope.
            return {"$ref": "#/components/schemas/workers-kv_api-response-common-failure"}
        op = self.spec["paths"][template].get(method.lower())
        if op is None:
            return None
        response = op["responses"].get(str(status)) or op["responses"].get("2XX")
        if response is None:
            return None
        content = response.get("content", {}).get("application/json")
        if content is None:
            return None
        schema: dict[str, Any] = _oas30_to_json_schema(content.get("schema", {}))
        if template.endswith("/bulk/get"):
            # A with-metadata result also matches the plain result (whose values may be
            # any object), so the spec's `oneOf` can never hold for it: read it as anyOf.
            schema = json.loads(json.dumps(schema).replace('"oneOf"', '"anyOf"'))
        return schema

    def validate(self, method: str, path: str, status: int, body: Any) -> list[str]:
        schema = self.schema_for(method, path, status)
        if schema is None:
            return [f"{method} {path}: no reference schema for status {status}"]
        root = {"components": self.components, "allOf": [schema]}
        errors = [
            f"{method} {path} {status}: {e.message} at {list(e.absolute_path)}"
            for e in Draft202012Validator(root).iter_errors(body)
        ]
        self.checked += 1
        return errors

    def hook(self, response: httpx.Response) -> None:
        """An httpx response hook: validate every JSON response of a KV route."""
        response.read()
        path = response.request.url.raw_path.decode().split("?", 1)[0]
        path = path.removeprefix("/client/v4")
        if not path.startswith("/accounts/"):
            return
        ctype = response.headers.get("content-type", "")
        if not ctype.startswith("application/json"):
            if response.status_code >= 400 or spec_path(path) is None or "/values/" not in path:
                self.problems.append(f"{response.request.method} {path}: non-JSON {ctype!r}")
            return
        self.problems += self.validate(response.request.method, path, response.status_code, response.json())


def load_validator() -> SpecValidator:
    text = REFERENCE.read_text()
    if SHARED_REFERENCE.exists():
        assert SHARED_REFERENCE.read_text() == text, (
            f"{REFERENCE} differs from {SHARED_REFERENCE}: copy it again"
        )
    return SpecValidator(json.loads(text))
