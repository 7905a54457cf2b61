"""An in-memory stand-in for the edgekv REST API, served through `httpx.MockTransport`.

Only for unit-testing the clients' request shapes and response handling without a
cluster: it follows the Cloudflare envelope, codes and paths and edgekv's ETag /
If-Match / If-None-Match extension, and records every request it saw.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "test-token"
_PREFIX = re.compile(r"^/client/v4/accounts/([^/]+)/storage/kv/namespaces(?:/([^/]+)(/.*)?)?$")


@dataclass
class Entry:
    value: bytes
    metadata: Any = None
    expiration: int | None = None
    version: int = 0


@dataclass
class FakeAPI:
    namespaces: dict[str, str] = field(default_factory=dict)  # id -> title
    data: dict[str, dict[str, Entry]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    seq: int = 0
    page_size: int = 3  # small, so that clients must follow cursors

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def ok(result: Any = None, info: dict[str, Any] | None = None, status: int = 200) -> httpx.Response:
        doc: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
        if info is not None:
            doc["result_info"] = info
        return httpx.Response(status, json=doc)

    @staticmethod
    def fail(status: int, code: int, message: str) -> httpx.Response:
        errors = [{"code": code, "message": message}]
        doc = {"success": False, "errors": errors, "messages": [], "result": None}
        return httpx.Response(status, json=doc)

    def _write(self, ns: str, key: str, value: bytes, metadata: Any = None, expiration: Any = None) -> None:
        self.seq += 1
        exp = int(expiration) if expiration is not None else None
        self.data[ns][key] = Entry(value, metadata, exp, self.seq)

    # -- routing ----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self.fail(401, 10000, "Authentication error")
        raw_path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        match = _PREFIX.match(raw_path)
        if not match:
            return self.fail(404, 7003, "No route for the URI")
        account, ns, rest = match.groups()
        if account != ACCOUNT:
            return self.fail(403, 10000, "Authentication error")
        if ns is None:
            return self._namespaces(request)
        if ns not in self.namespaces:
            return self.fail(404, 10013, "namespace not found")
        if not rest:
            return self._namespace(request, ns)
        parts = rest.split("/")
        if parts[1] in ("values", "metadata") and len(parts) == 3:
            return self._key(request, ns, parts[1], unquote(parts[2]))
        if parts[1] == "keys":
            return self._list(request, ns)
        if parts[1] == "bulk":
            return self._bulk(request, ns, parts[2] if len(parts) > 2 else "")
        return self.fail(404, 7003, "No route for the URI")

    def _namespaces(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            title = json.loads(request.content)["title"]
            if title in self.namespaces.values():
                return self.fail(400, 10014, "A namespace with this account ID and title already exists")
            ns_id = f"{len(self.namespaces) + 1:032x}"
            self.namespaces[ns_id] = title
            self.data[ns_id] = {}
            return self.ok({"id": ns_id, "title": title, "supports_url_encoding": True})
        page = int(request.url.params.get("page", "1"))
        per_page = int(request.url.params.get("per_page", "20"))
        items = sorted(self.namespaces.items(), key=lambda kv: kv[1])
        chunk = items[(page - 1) * per_page : page * per_page]
        result = [{"id": i, "title": t, "supports_url_encoding": True} for i, t in chunk]
        info = {"page": page, "per_page": per_page, "count": len(result), "total_count": len(items)}
        return self.ok(result, info)

    def _namespace(self, request: httpx.Request, ns: str) -> httpx.Response:
        if request.method == "PUT":
            self.namespaces[ns] = json.loads(request.content)["title"]
        if request.method == "DELETE":
            del self.namespaces[ns]
            del self.data[ns]
            return self.ok()
        return self.ok({"id": ns, "title": self.namespaces[ns], "supports_url_encoding": True})

    def _key(self, request: httpx.Request, ns: str, kind: str, key: str) -> httpx.Response:
        entry = self.data[ns].get(key)
        if request.method == "GET":
            if entry is None:
                return self.fail(404, 10009, "get: 'key not found'")
            headers = {"ETag": f'"{entry.version}"'}
            if kind == "metadata":
                doc = {"success": True, "errors": [], "messages": [], "result": entry.metadata}
                return httpx.Response(200, json=doc, headers=headers)
            if entry.expiration is not None:
                headers["expiration"] = str(entry.expiration)
            return httpx.Response(200, content=entry.value, headers=headers)
        if_match = request.headers.get("if-match")
        if if_match is not None and (entry is None or if_match.strip('"') != str(entry.version)):
            return self.fail(412, 10030, "precondition failed")
        if request.headers.get("if-none-match") == "*" and entry is not None:
            return self.fail(412, 10030, "precondition failed")
        if request.method == "DELETE":
            self.data[ns].pop(key, None)
            return self.ok()
        params = request.url.params
        expiration = params.get("expiration_ttl") or params.get("expiration")
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + request.content
            )
            parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
            value = parts["value"].get_payload(decode=True)
            metadata = json.loads(parts["metadata"].get_payload(decode=True)) if "metadata" in parts else None
            self._write(ns, key, value, metadata, expiration)
        else:
            self._write(ns, key, request.content, None, expiration)
        return self.ok()

    def _list(self, request: httpx.Request, ns: str) -> httpx.Response:
        prefix = request.url.params.get("prefix", "")
        start = int(request.url.params.get("cursor") or 0)
        names = sorted(k for k in self.data[ns] if k.startswith(prefix))
        chunk = names[start : start + self.page_size]
        cursor = str(start + self.page_size) if start + self.page_size < len(names) else ""
        result = []
        for name in chunk:
            entry = self.data[ns][name]
            item: dict[str, Any] = {"name": name}
            if entry.expiration is not None:
                item["expiration"] = entry.expiration
            if entry.metadata is not None:
                item["metadata"] = entry.metadata
            result.append(item)
        return self.ok(result, {"count": len(result), "cursor": cursor})

    def _bulk(self, request: httpx.Request, ns: str, action: str) -> httpx.Response:
        body = json.loads(request.content)
        if request.method == "PUT" and not action:
            for item in body:
                value = item["value"].encode()
                if item.get("base64"):
                    value = base64.b64decode(value)
                self._write(ns, item["key"], value, item.get("metadata"), item.get("expiration"))
            return self.ok({"successful_key_count": len(body), "unsuccessful_keys": []})
        if action == "delete":
            for key in body:
                self.data[ns].pop(key, None)
            return self.ok({"successful_key_count": len(body), "unsuccessful_keys": []})
        if action == "get":
            if len(body["keys"]) > 100:
                return self.fail(400, 10001, "keys: too many")
            values: dict[str, Any] = {}
            for key in body["keys"]:
                entry = self.data[ns].get(key)
                text = entry.value.decode() if entry else None
                if body.get("withMetadata"):
                    values[key] = {"value": text, "metadata": entry.metadata} if entry else None
                else:
                    values[key] = text
            return self.ok({"values": values})
        return self.fail(405, 10405, "method not allowed")
