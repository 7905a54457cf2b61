"""The Cloudflare Workers KV REST API of one process, declared as one route table.

`create_app(backend, metrics)` gives an ASGI app with the 14 KV operations under
`/client/v4/accounts/{account_id}/storage/kv/namespaces...`, account discovery
(`kvcore.rest.accounts`), `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/docs`.

A request passes, in order:
1. `RestApp.__call__`: a repeat GET of a value in a replica's cache is answered by
   `kvcore.rest.fastpath.HotReads` with no routing at all;
2. the `RouteTable` (`kvcore.rest.routing`): it matches the raw path once, writes the
   `Route` into `scope["route"]` and answers through the route's endpoint
   (`kvcore.rest.handlers`), which authorizes and validates once;
3. what the table does not match fully goes to starlette's `Router`, whose routes are
   the table again (a 405 naming the path's methods), /docs and the dashboard's; it
   also redirects a trailing slash and answers 404.
Metrics label each request with the name of the route that matched ("other" if none).
Every error is Cloudflare's failure envelope with a 4xx/5xx status.

Built on starlette, not FastAPI: the handlers parse by hand (so every error is an
envelope) and declare their OpenAPI operations as data, so FastAPI's dependency
injection and schema inference did nothing for us but cost time on every request;
without it, the value read and write go through the same table as everything else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import Message, Receive, Scope, Send

from kvcore.errors import InternalError, KVError, MethodNotAllowed, NotFoundRoute
from kvcore.metrics import CONTENT_TYPE_LATEST, HttpMetrics, Metrics
from kvcore.rest import envelope
from kvcore.rest import openapi_docs as docs
from kvcore.rest.accounts import account_routes
from kvcore.rest.backend import Backend
from kvcore.rest.fastpath import HotReads, HotResponse
from kvcore.rest.handlers import Handlers
from kvcore.rest.routing import Route, RouteTable, error_response, raw_path, respond
from kvcore.rest.swagger import docs_routes

log = logging.getLogger(__name__)

PREFIX: Final = "/client/v4/accounts/{account_id}/storage/kv/namespaces"
NAMESPACE: Final = PREFIX + "/{namespace_id}"
VALUE: Final = NAMESPACE + "/values/{key_name:path}"
OPENAPI_URL: Final = "/openapi.json"
_JSON: Final = "application/json"
_DESCRIPTION: Final = "The Cloudflare Workers KV REST API (client/v4), served by edgekv."


def kv_routes(h: Handlers) -> list[Route]:
    """The KV API: (path, endpoint, method, metrics label, OpenAPI operation)."""
    return [
        Route(PREFIX, h.list_namespaces, "GET", "namespaces", docs.LIST_NAMESPACES),
        Route(PREFIX, h.create_namespace, "POST", "namespaces", docs.CREATE_NAMESPACE),
        Route(NAMESPACE, h.get_namespace, "GET", "namespace", docs.GET_NAMESPACE),
        Route(NAMESPACE, h.rename_namespace, "PUT", "namespace", docs.RENAME_NAMESPACE),
        Route(NAMESPACE, h.delete_namespace, "DELETE", "namespace", docs.DELETE_NAMESPACE),
        Route(NAMESPACE + "/bulk", h.bulk_put, "PUT", "bulk", docs.BULK_PUT),
        Route(NAMESPACE + "/bulk/delete", h.bulk_delete, "POST", "bulk_delete", docs.BULK_DELETE),
        Route(NAMESPACE + "/bulk", h.bulk_delete, "DELETE", "bulk_delete", docs.BULK_DELETE_DEPRECATED),
        Route(NAMESPACE + "/bulk/get", h.bulk_get, "POST", "bulk_get", docs.BULK_GET),
        Route(NAMESPACE + "/keys", h.list_keys, "GET", "keys", docs.LIST_KEYS),
        Route(NAMESPACE + "/metadata/{key_name:path}", h.get_metadata, "GET", "metadata", docs.GET_METADATA),
        Route(VALUE, h.get_value, "GET", "values", docs.GET_VALUE),
        Route(VALUE, h.put_value, "PUT", "values", docs.PUT_VALUE),
        Route(VALUE, h.delete_value, "DELETE", "values", docs.DELETE_VALUE),
    ]


def ops_routes(backend: Backend, metrics: Metrics, openapi: dict[str, Any]) -> list[Route]:
    """/healthz, /readyz, /metrics and /openapi.json (not in the schema)."""
    openapi_body = envelope.dumps(openapi).encode()

    async def healthz(_: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=_JSON)

    async def readyz(_: Request) -> Response:
        ok, reason = await backend.ready()
        body = envelope.dumps({"status": "ok" if ok else "unavailable", "reason": reason}).encode()
        return Response(body, status_code=200 if ok else 503, media_type=_JSON)

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def openapi_json(_: Request) -> Response:
        return Response(openapi_body, media_type=_JSON)

    return [
        Route("/healthz", healthz, "GET", "healthz"),
        Route("/readyz", readyz, "GET", "readyz"),
        Route("/metrics", metrics_endpoint, "GET", "metrics"),
        Route(OPENAPI_URL, openapi_json, "GET", "other"),
    ]


def create_app(
    backend: Backend,
    metrics: Metrics,
    *,
    extra_routes: Iterable[BaseRoute] = (),
    title: str = "edgekv",
) -> RestApp:
    """The REST app of one process (central or a replica) over `backend`.

    `extra_routes` (starlette routes, e.g. the dashboard's) are matched after the table."""
    hot = HotReads.of(backend, backend.region)
    handlers = Handlers(backend, hot)
    api = [*kv_routes(handlers), *account_routes(backend)]
    openapi = docs.document(api, title=title, version="1.0", description=_DESCRIPTION)
    return RestApp(
        RouteTable([*api, *ops_routes(backend, metrics, openapi)]),
        [*docs_routes(OPENAPI_URL, title), *extra_routes],
        HttpMetrics(metrics, backend.region),
        hot,
        hot_route=next(r for r in api if r.endpoint == handlers.get_value),
    )


class RestApp:
    """The ASGI app: the hot read, then one router; HTTP metrics around both."""

    def __init__(
        self,
        table: RouteTable,
        others: list[BaseRoute],
        http: HttpMetrics,
        hot: HotReads | None,
        *,
        hot_route: Route,
    ) -> None:
        self.table = table
        self.router = Router([table, *others], default=_not_found)
        self.hot = hot
        self.http = http
        # A hot read is counted as a read of `hot_route` (the value GET it repeats); its
        # series are resolved once, since counting is much of what a hot read costs.
        self._hot_count, self._hot_duration = http.series(hot_route.name, "GET", 200)
        # `_hot_response` for a backend with a hot read (a replica), else None.
        self.hot_response: HotResponse | None = None if hot is None else self._hot_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # none served: a 403 (an HTTP answer makes uvicorn log ERROR)
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.router(scope, receive, send)  # lifespan
            return
        start = time.perf_counter()
        hot = self.hot
        if hot is not None and (answer := hot.answer(scope)) is not None:
            await send(answer[0])
            await send(answer[1])
            self._count_hot(start)
            return
        scope["app"] = self  # starlette routes then raise HTTPException (404, 405) to us
        status = 500
        try:
            found = self.table.lookup(raw_path(scope), scope["method"])
            if found is not None and found[2] is None:  # a table route, matched once
                scope["route"], scope["path_params"], _ = found
                try:
                    response = await respond(found[0], scope, receive)
                except Exception as exc:
                    response = _failure(exc)
                status = response.status_code
                await response(scope, receive, send)
            else:
                status = await self._route(scope, receive, send)
        finally:
            route = scope.get("route")
            name = route.name if isinstance(route, Route) else "other"
            self.http.record(name, scope["method"], status, time.perf_counter() - start)

    def _hot_response(self, scope: Scope, write: Callable[[bytes], object]) -> bool:
        """Answer a hot read by handing its HTTP/1.1 bytes to `write`
        (`HotReads.write_response`), counted and timed as `__call__` counts one (the
        write included); False, with nothing written or counted, when `scope` is not
        one. For `kvcore.serving.HotReadProtocol`, before any ASGI task starts."""
        start = time.perf_counter()
        hot = self.hot
        if hot is None or not hot.write_response(scope, write):
            return False
        self._count_hot(start)
        return True

    def _count_hot(self, start: float) -> None:
        self._hot_count.inc()
        self._hot_duration.observe(time.perf_counter() - start)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Everything else through starlette's router (a 405 of the table, /docs, the
        dashboard, trailing-slash redirects, 404); the status sent."""
        status, started = 500, False

        async def send_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.router(scope, receive, send_status)
        except Exception as exc:
            if started:
                log.error("REST request failed after its response started", exc_info=exc)
                raise
            await _failure(exc)(scope, receive, send_status)
        return status


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(NotFoundRoute())(scope, receive, send)


def _failure(exc: Exception) -> Response:
    """The envelope for an error that reached the app (raised outside the route table)."""
    if isinstance(exc, KVError):
        return error_response(exc)
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return error_response(NotFoundRoute())
        if exc.status_code == 405:
            allow = [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()
            ]
            return error_response(MethodNotAllowed(), *allow)
        return Response(envelope.failure(10001, str(exc.detail)), exc.status_code, exc.headers, _JSON)
    log.error("unhandled error in the REST app", exc_info=exc)
    return error_response(InternalError())
