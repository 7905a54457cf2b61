"""The Cloudflare Workers KV REST API, built once against the `Backend` protocol.

`create_app(backend, metrics)` gives a FastAPI app with the 14 operations under
`/client/v4/accounts/{account_id}/storage/kv/namespaces...`, plus `/healthz`, `/readyz`
and `/metrics`. Handlers parse by hand (`kvcore.rest.parsing`) so that every error,
however malformed the input, is Cloudflare's failure envelope with a 4xx. The value
read is served by the ASGI fast path in `kvcore.rest.fastpath`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from kvcore.errors import (
    InternalError,
    KVError,
    MethodNotAllowed,
    NotFoundRoute,
    ValidationError,
)
from kvcore.metrics import CONTENT_TYPE_LATEST, Metrics
from kvcore.rest import envelope
from kvcore.rest import openapi_docs as docs
from kvcore.rest.accounts import add_account_routes
from kvcore.rest.backend import Backend
from kvcore.rest.fastpath import EdgeMiddleware, read_value
from kvcore.rest.handlers import Handlers
from kvcore.rest.swagger import docs_routes

log = logging.getLogger(__name__)

PREFIX = "/client/v4/accounts/{account_id}/storage/kv/namespaces"
_JSON = "application/json"


def _error_response(exc: KVError) -> Response:
    return Response(envelope.error_body(exc), status_code=exc.http_status, media_type=_JSON)


async def _kv_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, KVError)
    return _error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return _error_response(ValidationError(f"{where}: {first.get('msg', 'invalid')}"))


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _error_response(NotFoundRoute())
    if exc.status_code == 405:
        response = _error_response(MethodNotAllowed())
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    return Response(envelope.failure(10001, str(exc.detail)), status_code=exc.status_code, media_type=_JSON)


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.error("unhandled error in the REST app", exc_info=exc)
    return _error_response(InternalError())


class EdgeKVApp(FastAPI):
    """FastAPI, entered through `EdgeMiddleware`: HTTP metrics and the value-read fast
    path run before FastAPI's own per-request work (its telemetry check, the Starlette
    middleware stack, routing)."""

    edge: EdgeMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.edge is None:
            await super().__call__(scope, receive, send)
        else:
            await self.edge(scope, receive, send)


def create_app(
    backend: Backend,
    metrics: Metrics,
    *,
    extra_routes: Iterable[BaseRoute] = (),
    title: str = "edgekv",
) -> FastAPI:
    """The REST app of one process (central or a replica) over `backend`.

    `extra_routes` (e.g. an `APIRouter`'s `.routes`) are added after the standard ones.
    """
    app = EdgeKVApp(
        title=title,
        version="1.0",
        description="The Cloudflare Workers KV REST API (client/v4), served by edgekv.",
        openapi_url="/openapi.json",
        docs_url=None,  # served offline below (kvcore.rest.swagger)
        redoc_url=None,
    )
    h = Handlers(backend)

    def route(path: str, method: str, endpoint: Any, operation_id: str, extra: dict[str, Any]) -> None:
        app.add_api_route(
            PREFIX + path,
            endpoint,
            methods=[method],
            operation_id=operation_id,
            response_class=Response,
            openapi_extra=extra,
            tags=["kv"],
        )

    ns = [docs.ACCOUNT, docs.NAMESPACE]
    key = [docs.ACCOUNT, docs.NAMESPACE, docs.KEY]
    ns_schema = docs.envelope(docs.ref("Namespace"))
    bulk_schema = docs.envelope(docs.ref("BulkResult"))
    title_body = docs.json_body(docs.ref("NamespaceTitle"))
    delete_body = docs.json_body(docs.ref("BulkDelete"))

    route(
        "",
        "GET",
        h.list_namespaces,
        "workers-kv-namespace-list-namespaces",
        docs.operation(
            "List namespaces",
            [docs.ACCOUNT, *docs.NAMESPACE_LIST_PARAMS],
            docs.envelope(
                {"type": "array", "items": docs.ref("Namespace")},
                {
                    "type": "object",
                    "properties": {
                        k: {"type": "number"} for k in ("count", "page", "per_page", "total_count")
                    },
                },
            ),
        ),
    )
    route(
        "",
        "POST",
        h.create_namespace,
        "workers-kv-namespace-create-a-namespace",
        docs.operation("Create a namespace", [docs.ACCOUNT], ns_schema, body=title_body),
    )
    route(
        "/{namespace_id}",
        "GET",
        h.get_namespace,
        "workers-kv-namespace-get-a-namespace",
        docs.operation("Get a namespace", ns, ns_schema),
    )
    route(
        "/{namespace_id}",
        "PUT",
        h.rename_namespace,
        "workers-kv-namespace-rename-a-namespace",
        docs.operation("Rename a namespace", ns, ns_schema, body=title_body),
    )
    route(
        "/{namespace_id}",
        "DELETE",
        h.delete_namespace,
        "workers-kv-namespace-remove-a-namespace",
        docs.operation("Remove a namespace and all its keys", ns, docs.NO_RESULT),
    )
    route(
        "/{namespace_id}/bulk",
        "PUT",
        h.bulk_put,
        "workers-kv-namespace-write-multiple-key-value-pairs",
        docs.operation(
            "Write up to 10,000 key-value pairs (the whole body under 100 MB)",
            ns,
            bulk_schema,
            body=docs.json_body(docs.ref("BulkWrite")),
        ),
    )
    route(
        "/{namespace_id}/bulk/delete",
        "POST",
        h.bulk_delete,
        "workers-kv-namespace-delete-multiple-key-value-pairs",
        docs.operation("Delete up to 10,000 keys", ns, bulk_schema, body=delete_body),
    )
    route(
        "/{namespace_id}/bulk",
        "DELETE",
        h.bulk_delete,
        "workers-kv-namespace-delete-multiple-key-value-pairs-deprecated",
        {
            **docs.operation("Delete up to 10,000 keys (deprecated form)", ns, bulk_schema, body=delete_body),
            "deprecated": True,
        },
    )
    route(
        "/{namespace_id}/bulk/get",
        "POST",
        h.bulk_get,
        "workers-kv-namespace-get-multiple-key-value-pairs",
        docs.operation(
            "Read up to 100 keys",
            ns,
            docs.envelope(docs.ref("BulkGetResult")),
            body=docs.json_body(docs.ref("BulkGet")),
        ),
    )
    route(
        "/{namespace_id}/keys",
        "GET",
        h.list_keys,
        "workers-kv-namespace-list-a-namespace'-s-keys",
        docs.operation(
            "List a namespace's keys (cursor pagination)",
            [*ns, *docs.KEYS_LIST_PARAMS],
            docs.envelope(
                {"type": "array", "items": docs.ref("Key")},
                {"type": "object", "properties": {"count": {"type": "number"}, "cursor": {"type": "string"}}},
            ),
        ),
    )
    route(
        "/{namespace_id}/metadata/{key_name:path}",
        "GET",
        h.get_metadata,
        "workers-kv-namespace-read-the-metadata-for-a-key",
        docs.operation("Read the metadata of a key", [*key, docs.CONSISTENCY], docs.envelope(docs.ANY)),
    )

    async def get_value(request: Request) -> Response:
        # Normally answered by the fast path in EdgeMiddleware; kept for completeness.
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        status, headers, body = await read_value(backend, request.scope, raw_path)
        return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})

    route(
        "/{namespace_id}/values/{key_name:path}",
        "GET",
        get_value,
        "workers-kv-namespace-read-key-value-pair",
        docs.operation(
            "Read a value (raw bytes)",
            [*key, docs.CONSISTENCY],
            None,
            ok_content=docs.VALUE_CONTENT,
            ok_headers=docs.VALUE_HEADERS,
        ),
    )
    route(
        "/{namespace_id}/values/{key_name:path}",
        "PUT",
        h.put_value,
        "workers-kv-namespace-write-key-value-pair-with-metadata",
        docs.operation(
            "Write a value, with optional metadata and expiration",
            [*key, *docs.EXPIRATION_PARAMS, docs.IF_MATCH, docs.IF_NONE_MATCH],
            docs.NO_RESULT,
            body=docs.VALUE_BODY,
            ok_headers={"ETag": docs.VALUE_HEADERS["ETag"]},
        ),
    )
    route(
        "/{namespace_id}/values/{key_name:path}",
        "DELETE",
        h.delete_value,
        "workers-kv-namespace-delete-key-value-pair",
        docs.operation("Delete a key", [*key, docs.IF_MATCH], docs.NO_RESULT),
    )

    async def healthz(_: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=_JSON)

    async def readyz(_: Request) -> Response:
        ok, reason = await backend.ready()
        body = envelope.dumps({"status": "ok" if ok else "unavailable", "reason": reason}).encode()
        return Response(body, status_code=200 if ok else 503, media_type=_JSON)

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    add_account_routes(app, backend)
    for path, endpoint in (("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics_endpoint)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False, response_class=Response)
    app.router.routes.extend(docs_routes("/openapi.json", title))
    app.router.routes.extend(extra_routes)

    app.add_exception_handler(KVError, _kv_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.edge = EdgeMiddleware(partial(FastAPI.__call__, app), backend=backend, metrics=metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(docs.SCHEMAS)
            components["securitySchemes"] = docs.SECURITY_SCHEMES
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
