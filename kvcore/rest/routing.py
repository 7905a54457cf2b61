"""The REST route table: routes are data, one path grammar, one match per request.

A `Route(path, endpoint, method, name, doc)` is one operation. `path` is a template in
starlette's syntax: `{param}` is one segment, `{param:path}` the rest of the path.
`name` is the route's metrics label (`edgekv_http_requests_total{route}`), `doc` its
OpenAPI operation (None: left out of /openapi.json).

`RouteTable` compiles the templates of a table into ONE regex over the RAW path (the
percent-encoding left intact, so `%2F` in a key never splits it), built as a trie of
segments so a shared prefix is scanned once. It is a starlette `BaseRoute`, asked first
by the app's router: a match writes the `Route` into `scope["route"]` and the raw bytes
of each segment into `scope["path_params"]`; outer layers (metrics) read which route
ran from there, and `kvcore.rest.target` decodes and validates the segments once the
caller is authorized. A path matched with another method is a 405 naming the allowed
methods. HEAD is answered wherever GET is, as GET without the body (RFC 9110, 9.3.2:
a general-purpose server supports both). Every `KVError` an endpoint raises is
rendered as Cloudflare's envelope here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from kvcore.errors import KVError, MethodNotAllowed
from kvcore.rest import envelope

Endpoint = Callable[[Request], Awaitable[Response]]
RawParams = dict[str, bytes]

_MEMO_MAX = 8192
_JSON_TYPE = (b"content-type", envelope.JSON_CONTENT_TYPE)
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}\Z")


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: `method` on the paths matching `path`, answered by `endpoint`."""

    path: str
    endpoint: Endpoint
    method: str
    name: str
    doc: dict[str, Any] | None = None

    @property
    def openapi_path(self) -> str:
        """The template as OpenAPI writes it (`{key_name:path}` -> `{key_name}`)."""
        return self.path.replace(":path}", "}")


class RawResponse(Response):
    """A response whose headers are already ASGI's byte pairs (no per-response parsing)."""

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code, self.raw_headers, self.body, self.background = status_code, raw_headers, body, None


def error_response(exc: KVError, *headers: tuple[bytes, bytes]) -> Response:
    """Cloudflare's failure envelope for `exc`, with its HTTP status."""
    body = envelope.error_body(exc)
    return RawResponse(exc.http_status, [_JSON_TYPE, (b"content-length", b"%d" % len(body)), *headers], body)


@dataclass
class _Node:
    children: dict[tuple[str, str], _Node] = field(default_factory=dict)
    leaf: int | None = None  # index of the path template that ends here


def _segments(template: str) -> list[tuple[str, str]]:
    """("lit", text), ("param", name) or ("tail", name) for each `/`-separated part."""
    if not template.startswith("/"):
        raise ValueError(f"route path must start with '/': {template!r}")
    parts = template[1:].split("/")
    out: list[tuple[str, str]] = []
    for i, part in enumerate(parts):
        m = _PARAM.match(part)
        if m is None:
            if "{" in part:
                raise ValueError(f"unsupported route segment {part!r} in {template!r}")
            out.append(("lit", part))
        elif m.group(2):
            if i != len(parts) - 1:
                raise ValueError(f"a {{name:path}} param must come last: {template!r}")
            out.append(("tail", m.group(1)))
        else:
            out.append(("param", m.group(1)))
    return out


class _Grammar:
    """The path templates of a table as one regex: `match(raw_path)` gives the index of
    the matching template and the raw bytes of its params."""

    def __init__(self, templates: Sequence[str]) -> None:
        root = _Node()
        for index, template in enumerate(templates):
            node = root
            for seg in _segments(template):
                node = node.children.setdefault(seg, _Node())
            node.leaf = index
        self._groups: list[list[tuple[str, str]]] = [[] for _ in templates]
        self._next_group = 0
        self._regex = re.compile(self._emit(root, []).encode("ascii"), re.DOTALL)
        # By the number of a template's end marker: (template index, (param, group number)...).
        groups = self._regex.groupindex
        self._ends = {
            groups[f"t{i}"]: (i, tuple((name, groups[g]) for name, g in params))
            for i, params in enumerate(self._groups)
        }
        # Matches by raw path: a pure function of it, so repeat paths (hot keys) skip the regex.
        self._memo: dict[bytes, tuple[int, RawParams]] = {}

    def _emit(self, node: _Node, params: list[tuple[str, str]]) -> str:
        alternatives = []
        for (kind, value), child in node.children.items():
            if kind == "lit":
                alternatives.append("/" + re.escape(value) + self._emit(child, params))
                continue
            group = f"g{self._next_group}"
            self._next_group += 1
            body = "[^/]+" if kind == "param" else ".*"
            alternatives.append(f"/(?P<{group}>{body})" + self._emit(child, [*params, (value, group)]))
        if node.leaf is not None:
            # An empty group marks the end of template `leaf`: it closes last, so it is
            # the match's `lastindex`.
            self._groups[node.leaf] = params
            alternatives.append(f"(?P<t{node.leaf}>)\\Z")
        return "(?:" + "|".join(alternatives) + ")"

    def match(self, raw_path: bytes) -> tuple[int, RawParams] | None:
        found = self._memo.get(raw_path)
        if found is not None:
            return found
        m = self._regex.match(raw_path)
        if m is None or m.lastindex is None:
            return None
        index, params = self._ends[m.lastindex]
        found = index, {name: m.group(group) for name, group in params}
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[raw_path] = found
        return found


async def respond(route: Route, scope: Scope, receive: Receive) -> Response:
    """The response of `route` to the request (a `KVError` becomes its envelope; any
    other exception is the caller's)."""
    try:
        return await route.endpoint(Request(scope, receive))
    except KVError as exc:
        return error_response(exc)


def raw_path(scope: Scope) -> bytes:
    """The path the table matches: the raw bytes as received (percent-encoding intact)."""
    path: str = scope["path"]
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        return path.encode("utf-8")
    if raw.endswith(b"/") != path.endswith("/"):  # the router retrying with(out) a slash
        return raw[:-1] if raw.endswith(b"/") else raw + b"/"
    return raw


class RouteTable(BaseRoute):
    """The KV API's routes, matched by one grammar (see the module docstring)."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        by_path: dict[str, dict[str, Route]] = {}
        for route in self.routes:
            methods = by_path.setdefault(route.path, {})
            if route.method in methods:
                raise ValueError(f"two routes for {route.method} {route.path}")
            methods[route.method] = route
        for methods in by_path.values():
            if "GET" in methods:
                # RFC 9110 9.3.2: HEAD is GET without the content (uvicorn sends none).
                methods.setdefault("HEAD", methods["GET"])
        self._methods = list(by_path.values())
        self._allow = [", ".join(m) for m in self._methods]
        self._grammar = _Grammar(list(by_path))

    def lookup(self, raw_path: bytes, method: str) -> tuple[Route, RawParams, str | None] | None:
        """(route, raw params, None) for a match; (a route of that path, raw params,
        the allowed methods) when only the path matches; None when nothing does."""
        found = self._grammar.match(raw_path)
        if found is None:
            return None
        index, params = found
        methods = self._methods[index]
        route = methods.get(method)
        if route is None:
            return next(iter(methods.values())), params, self._allow[index]
        return route, params, None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        found = self.lookup(raw_path(scope), scope["method"])
        if found is None:
            return Match.NONE, {}
        route, params, allow = found
        child = {"route": route, "path_params": params, "endpoint": route.endpoint}
        if allow is not None:
            return Match.PARTIAL, {**child, "edgekv.allow": allow}
        return Match.FULL, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        allow = scope.get("edgekv.allow")
        if allow is not None:
            response = error_response(MethodNotAllowed(), (b"allow", allow.encode()))
        else:
            response = await respond(scope["route"], scope, receive)
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)


__all__ = ["Endpoint", "RawParams", "Route", "RouteTable", "error_response"]
