"""A failed response back into the `kvcore.errors` class the server raised.

The registry is built from the error tree itself (every class defined in
`kvcore.errors` carries its HTTP status and Cloudflare code as class data), as
aiokafka's `for_code()` is built from its subclasses, so it cannot drift from the
classes. A response is matched, first to last:

1. its (HTTP status, code) pair: the class that says exactly that;
2. its status, where one family of the tree owns it (401, 403, 405, 412, 413, 414, 503);
3. its code, where one family owns it (10009 is KeyNotFound with any status);
4. its status class: a 404 is a missing key, a 5xx `InternalError`, any other
   `ValidationError`.

A family is a class and the subclasses that keep its status (or code): 401 is
`AuthenticationError`, whose `InvalidApiToken` says 401 too. A status (or code) that
two families share decides nothing by itself: 10000 is 401 `AuthenticationError` and
403 `PermissionDenied`, 404 belongs to three classes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable

from kvcore import errors
from kvcore.errors import InternalError, KeyNotFound, KVError, ValidationError

ErrorClass = type[KVError]


def _owners(key: Callable[[ErrorClass], Hashable]) -> dict[Hashable, ErrorClass]:
    """`key(cls)` -> the one family root that says it; keys two families say are left out."""
    roots: dict[Hashable, set[ErrorClass]] = {}
    for cls in errors.error_classes():
        parent = cls.__mro__[1]
        if not (issubclass(parent, KVError) and parent is not KVError and key(parent) == key(cls)):
            roots.setdefault(key(cls), set()).add(cls)
    return {k: next(iter(found)) for k, found in roots.items() if len(found) == 1}


def _exact() -> dict[tuple[int, int], ErrorClass]:
    table: dict[tuple[int, int], ErrorClass] = {}
    for cls in errors.error_classes():
        table.setdefault((cls.http_status, cls.code), cls)  # a parent wins over a twin child
    return table


_BY_PAIR = _exact()
_BY_STATUS = _owners(lambda cls: cls.http_status)
_BY_CODE = _owners(lambda cls: cls.code)


def for_code(code: int | None) -> ErrorClass | None:
    """The class one family owns this Cloudflare code with, or None (unknown, or shared)."""
    return _BY_CODE.get(code) if code is not None else None


def for_response(status: int, code: int | None) -> ErrorClass:
    """The class of a failed response (rules 1 to 4 of the module docstring)."""
    found = _BY_PAIR.get((status, code)) if code is not None else None
    found = found or _BY_STATUS.get(status) or for_code(code)
    if found is not None:
        return found
    if status == 404:
        return KeyNotFound
    return InternalError if status >= 500 else ValidationError


def first_error(body: bytes) -> tuple[int | None, str | None]:
    """`(code, message)` of the first entry of a Cloudflare envelope's `errors`, or Nones."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    errors_list = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors_list, list) and errors_list and isinstance(errors_list[0], dict):
        code = errors_list[0].get("code")
        message = errors_list[0].get("message")
        return (code if isinstance(code, int) else None), (str(message) if message is not None else None)
    return None, None


def error_from_response(status: int, body: bytes) -> KVError:
    """The error a failed response reports: its class by `for_response`, its message the
    envelope's (or `HTTP <status>: <start of the body>` when there is none)."""
    code, message = first_error(body)
    if message is None:
        snippet = body[:200].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    return for_response(status, code)(message)
