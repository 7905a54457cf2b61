"""OpenAPI descriptions of our own routes (served at /openapi.json, shown at /docs).

The handlers parse their input by hand (so every error is a Cloudflare envelope), so
each route declares its parameters, body and responses here, as data (`Route.doc`);
`document` assembles them. Shapes follow `cloudflare-kv-openapi.json`, written as
OpenAPI 3.1 (JSON Schema).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kvcore import limits

if TYPE_CHECKING:
    from kvcore.rest.routing import Route

Schema = dict[str, Any]

ANY: Schema = {}  # any JSON value
_REF = "#/components/schemas/"


def ref(name: str) -> Schema:
    return {"$ref": _REF + name}


_MESSAGES: Schema = {"type": "array", "items": ref("Message")}

SCHEMAS: dict[str, Schema] = {
    "Message": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "integer", "minimum": 1000}, "message": {"type": "string"}},
    },
    "Failure": {
        "type": "object",
        "required": ["success", "errors", "messages", "result"],
        "properties": {
            "success": {"enum": [False]},
            "errors": {**_MESSAGES, "minItems": 1},
            "messages": _MESSAGES,
            "result": {"type": "null"},
        },
    },
    "Namespace": {
        "type": "object",
        "required": ["id", "title"],
        "properties": {
            "id": {"type": "string", "maxLength": 32},
            "title": {"type": "string", "maxLength": limits.MAX_TITLE_CHARS},
            "supports_url_encoding": {"type": "boolean"},
        },
    },
    "Key": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "expiration": {"type": "number"}, "metadata": ANY},
    },
    "BulkResult": {
        "type": "object",
        "required": ["successful_key_count", "unsuccessful_keys"],
        "properties": {
            "successful_key_count": {"type": "number"},
            "unsuccessful_keys": {"type": "array", "items": {"type": "string"}},
        },
    },
    "BulkGetResult": {
        "type": "object",
        "required": ["values"],
        "properties": {
            "values": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [
                        {"type": "null"},
                        {"type": ["string", "number", "boolean", "object", "array"]},
                        {
                            "type": "object",
                            "required": ["value", "metadata"],
                            "properties": {"value": ANY, "metadata": ANY, "expiration": {"type": "number"}},
                        },
                    ]
                },
            }
        },
    },
    "NamespaceTitle": {
        "type": "object",
        "required": ["title"],
        "properties": {"title": {"type": "string", "minLength": 1, "maxLength": limits.MAX_TITLE_CHARS}},
    },
    "BulkWrite": {
        "type": "array",
        "maxItems": limits.MAX_BULK_ITEMS,
        "items": {
            "type": "object",
            "required": ["key", "value"],
            "properties": {
                "key": {"type": "string", "minLength": 1, "maxLength": limits.MAX_KEY_BYTES},
                "value": {"type": "string", "maxLength": limits.MAX_VALUE_BYTES},
                "base64": {"type": "boolean", "default": False},
                "expiration": {"type": "number"},
                "expiration_ttl": {"type": "number", "minimum": limits.MIN_EXPIRATION_TTL_S},
                "metadata": ANY,
            },
        },
    },
    "BulkDelete": {
        "type": "array",
        "maxItems": limits.MAX_BULK_ITEMS,
        "items": {"type": "string", "minLength": 1, "maxLength": limits.MAX_KEY_BYTES},
    },
    "BulkGet": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "minItems": 1,
                "maxItems": limits.MAX_BULK_GET_KEYS,
                "items": {"type": "string", "minLength": 1, "maxLength": limits.MAX_KEY_BYTES},
            },
            "type": {"enum": ["text", "json"], "default": "text"},
            "withMetadata": {"type": "boolean", "default": False},
        },
    },
}

SECURITY_SCHEMES: dict[str, Schema] = {"api_token": {"type": "http", "scheme": "bearer"}}


def envelope(result: Schema, result_info: Schema | None = None) -> Schema:
    props: Schema = {
        "success": {"enum": [True]},
        "errors": _MESSAGES,
        "messages": _MESSAGES,
        "result": result,
    }
    if result_info is not None:
        props["result_info"] = result_info
    return {"type": "object", "required": ["success", "errors", "messages", "result"], "properties": props}


def _param(name: str, where: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


ACCOUNT = _param("account_id", "path", {"type": "string", "maxLength": 32}, "Account identifier.", True)
NAMESPACE = _param("namespace_id", "path", {"type": "string", "maxLength": 32}, "Namespace identifier.", True)
KEY = _param(
    "key_name",
    "path",
    {"type": "string", "minLength": 1, "maxLength": limits.MAX_KEY_BYTES},
    "The key, percent-encoded (at most 512 bytes decoded).",
    True,
)
CONSISTENCY = _param(
    "consistency",
    "query",
    {"enum": ["strong", "eventual"]},
    "edgekv extension: 'strong' reads from central.",
)
IF_MATCH = _param(
    "If-Match", "header", {"type": "string"}, 'edgekv extension: write only if the version is "<version>".'
)
IF_NONE_MATCH = _param(
    "If-None-Match", "header", {"enum": ["*"]}, "edgekv extension: write only if the key does not exist."
)
NAMESPACE_LIST_PARAMS = [
    _param("page", "query", {"type": "integer", "minimum": 1, "default": 1}, "Page number."),
    _param(
        "per_page",
        "query",
        {"type": "integer", "minimum": 1, "maximum": limits.MAX_PER_PAGE, "default": 20},
        "Results per page.",
    ),
    _param("order", "query", {"enum": ["id", "title"]}, "Field to order results by."),
    _param("direction", "query", {"enum": ["asc", "desc"]}, "Direction to order namespaces."),
]
KEYS_LIST_PARAMS = [
    _param(
        "limit",
        "query",
        {"type": "integer", "minimum": limits.MIN_LIST_LIMIT, "maximum": limits.MAX_LIST_LIMIT},
        "Keys per page.",
    ),
    _param("prefix", "query", {"type": "string"}, "Only keys starting with this prefix."),
    _param("cursor", "query", {"type": "string"}, "Cursor of the next page (from result_info.cursor)."),
]
EXPIRATION_PARAMS = [
    _param("expiration", "query", {"type": "number", "minimum": 0}, "Absolute expiry, epoch seconds."),
    _param(
        "expiration_ttl",
        "query",
        {"type": "number", "minimum": limits.MIN_EXPIRATION_TTL_S},
        "Expiry in seconds from now (at least 60).",
    ),
]

_FAILURE = {"application/json": {"schema": ref("Failure")}}


def operation(
    summary: str,
    params: list[Schema],
    ok: Schema | None,
    *,
    body: Schema | None = None,
    ok_content: dict[str, Any] | None = None,
    ok_headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The OpenAPI operation of one route (without its operationId and tags)."""
    ok_response: Schema = {"description": "Success."}
    if ok_content is not None:
        ok_response["content"] = ok_content
    elif ok is not None:
        ok_response["content"] = {"application/json": {"schema": ok}}
    if ok_headers:
        ok_response["headers"] = ok_headers
    extra: dict[str, Any] = {
        "summary": summary,
        "parameters": params,
        "security": [{"api_token": []}],
        "responses": {
            "200": ok_response,
            "4XX": {"description": "Failure (Cloudflare error envelope).", "content": _FAILURE},
            "503": {"description": "A dependency is unavailable.", "content": _FAILURE},
        },
    }
    if body is not None:
        extra["requestBody"] = body
    return extra


def json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


VALUE_BODY: Schema = {
    "required": True,
    "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["value"],
                "properties": {"value": {"type": "string", "format": "binary"}, "metadata": ANY},
            },
            "encoding": {"metadata": {"contentType": "application/json"}},
        },
    },
}

_HEADER = {"schema": {"type": "string"}}
VALUE_HEADERS = {
    "expiration": {**_HEADER, "description": "Expiry in epoch seconds, when the key expires."},
    "ETag": {**_HEADER, "description": 'The key\'s version, "<version>" (edgekv extension).'},
    "Age": {**_HEADER, "description": "Seconds since the served copy was current (edgekv extension)."},
    "X-Edgekv-Region": {**_HEADER, "description": "Region that served the read."},
    "X-Edgekv-Source": {**_HEADER, "description": "central, cache or read-through."},
}
VALUE_CONTENT = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
NO_RESULT = envelope({"type": "null"})
RESULT_INFO_FIELDS = ("count", "page", "per_page", "total_count")


# -- the KV operations (`kvcore.rest.app` pairs each with its path and endpoint)

_NS = [ACCOUNT, NAMESPACE]
_KEY = [ACCOUNT, NAMESPACE, KEY]
_NS_RESULT = envelope(ref("Namespace"))
_BULK_RESULT = envelope(ref("BulkResult"))
_TITLE_BODY = json_body(ref("NamespaceTitle"))
_DELETE_BODY = json_body(ref("BulkDelete"))


def kv(operation_id: str, summary: str, params: list[Schema], ok: Schema | None, **kw: Any) -> Schema:
    """One operation of the KV API (tag "kv")."""
    return {"tags": ["kv"], "operationId": operation_id, **operation(summary, params, ok, **kw)}


LIST_NAMESPACES = kv(
    "workers-kv-namespace-list-namespaces",
    "List namespaces",
    [ACCOUNT, *NAMESPACE_LIST_PARAMS],
    envelope(
        {"type": "array", "items": ref("Namespace")},
        {"type": "object", "properties": {k: {"type": "number"} for k in RESULT_INFO_FIELDS}},
    ),
)
CREATE_NAMESPACE = kv(
    "workers-kv-namespace-create-a-namespace", "Create a namespace", [ACCOUNT], _NS_RESULT, body=_TITLE_BODY
)
GET_NAMESPACE = kv("workers-kv-namespace-get-a-namespace", "Get a namespace", _NS, _NS_RESULT)
RENAME_NAMESPACE = kv(
    "workers-kv-namespace-rename-a-namespace", "Rename a namespace", _NS, _NS_RESULT, body=_TITLE_BODY
)
DELETE_NAMESPACE = kv(
    "workers-kv-namespace-remove-a-namespace", "Remove a namespace and all its keys", _NS, NO_RESULT
)
BULK_PUT = kv(
    "workers-kv-namespace-write-multiple-key-value-pairs",
    "Write up to 10,000 key-value pairs (the whole body under 100 MB)",
    _NS,
    _BULK_RESULT,
    body=json_body(ref("BulkWrite")),
)
BULK_DELETE = kv(
    "workers-kv-namespace-delete-multiple-key-value-pairs",
    "Delete up to 10,000 keys",
    _NS,
    _BULK_RESULT,
    body=_DELETE_BODY,
)
BULK_DELETE_DEPRECATED = {
    **kv(
        "workers-kv-namespace-delete-multiple-key-value-pairs-deprecated",
        "Delete up to 10,000 keys (deprecated form)",
        _NS,
        _BULK_RESULT,
        body=_DELETE_BODY,
    ),
    "deprecated": True,
}
BULK_GET = kv(
    "workers-kv-namespace-get-multiple-key-value-pairs",
    "Read up to 100 keys",
    _NS,
    envelope(ref("BulkGetResult")),
    body=json_body(ref("BulkGet")),
)
LIST_KEYS = kv(
    "workers-kv-namespace-list-a-namespace'-s-keys",
    "List a namespace's keys (cursor pagination)",
    [*_NS, *KEYS_LIST_PARAMS],
    envelope(
        {"type": "array", "items": ref("Key")},
        {"type": "object", "properties": {"count": {"type": "number"}, "cursor": {"type": "string"}}},
    ),
)
GET_METADATA = kv(
    "workers-kv-namespace-read-the-metadata-for-a-key",
    "Read the metadata of a key",
    [*_KEY, CONSISTENCY],
    envelope(ANY),
)
GET_VALUE = kv(
    "workers-kv-namespace-read-key-value-pair",
    "Read a value (raw bytes)",
    [*_KEY, CONSISTENCY],
    None,
    ok_content=VALUE_CONTENT,
    ok_headers=VALUE_HEADERS,
)
PUT_VALUE = kv(
    "workers-kv-namespace-write-key-value-pair-with-metadata",
    "Write a value, with optional metadata and expiration",
    [*_KEY, *EXPIRATION_PARAMS, IF_MATCH, IF_NONE_MATCH],
    NO_RESULT,
    body=VALUE_BODY,
    ok_headers={"ETag": VALUE_HEADERS["ETag"]},
)
DELETE_VALUE = kv("workers-kv-namespace-delete-key-value-pair", "Delete a key", [*_KEY, IF_MATCH], NO_RESULT)


def document(routes: Iterable[Route], *, title: str, version: str, description: str) -> Schema:
    """The OpenAPI 3.1 document of `routes` (those with a `doc`), with our components."""
    paths: dict[str, dict[str, Schema]] = {}
    for route in routes:
        if route.doc is not None:
            paths.setdefault(route.openapi_path, {})[route.method.lower()] = route.doc
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "description": description, "version": version},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }
