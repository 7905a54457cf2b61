"""OpenAPI descriptions of our own routes (served at /openapi.json, shown at /docs).

The handlers parse their input by hand (so every error is a Cloudflare envelope), so
FastAPI cannot infer parameters or bodies; each route declares them here through
`openapi_extra`. Shapes follow `cloudflare-kv-openapi.json`, written as OpenAPI 3.1
(JSON Schema) since that is what FastAPI emits.
"""

from __future__ import annotations

from typing import Any

from kvcore import limits

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
    """The `openapi_extra` of one route."""
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
