"""Workers' `list()` over the backend's key pages.

A Worker may ask for 1 to 1,000 keys a page (`limit`); the REST API, and so the
backend and central, serve 10 to 1,000. A page under 10 is cut from a 10-key backend
page, and its cursor then says where in that backend page to resume:
`~<keys already returned>~<backend cursor>` (a backend cursor never holds `~`). Like
any cursor it is stateless: the next call fetches that backend page again.
"""

from __future__ import annotations

from typing import Any, Final

from kvcore import limits
from kvcore.errors import ValidationError
from kvcore.model import KeyPage
from kvcore.rest.backend import Backend
from kvcore.rest.envelope import dumps

# The Workers binding's smallest `list({limit})`; REST's is limits.MIN_LIST_LIMIT.
MIN_BINDING_LIST_LIMIT: Final = 1
_MARK: Final = "~"


def _unwrap(cursor: str) -> tuple[int, str]:
    if not cursor.startswith(_MARK):
        return 0, cursor
    skip, sep, inner = cursor[1:].partition(_MARK)
    if not sep or not skip.isdigit() or not 0 < int(skip) < limits.MIN_LIST_LIMIT:
        raise ValidationError("cursor: malformed cursor")
    return int(skip), inner


async def binding_page(
    backend: Backend, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
) -> KeyPage:
    """Up to `limit` (1..1000) keys after `cursor`, with the cursor of the rest ("" = done)."""
    skip, inner = _unwrap(cursor)
    fetch = min(max(limit + skip, limits.MIN_LIST_LIMIT), limits.MAX_LIST_LIMIT)
    page = await backend.list_keys(account_id, namespace_id, prefix, fetch, inner)
    keys = page.keys[skip : skip + limit]
    consumed = skip + len(keys)
    if consumed < len(page.keys):  # part of this backend page is still to be returned
        return KeyPage(keys, f"{_MARK}{consumed}{_MARK}{inner}")
    return KeyPage(keys, page.cursor)


def list_body(page: KeyPage) -> bytes:
    """A key page as workerd reads it: metadata as JSON *text* (workerd parses it)."""
    items = []
    for info in page.keys:
        item: dict[str, Any] = {"name": info.name}
        if info.expiration is not None:
            item["expiration"] = int(info.expiration)
        if info.metadata_json is not None:
            item["metadata"] = info.metadata_json
        items.append(item)
    out: dict[str, Any] = {"keys": items, "list_complete": not page.cursor}
    if page.cursor:
        out["cursor"] = page.cursor
    return dumps(out).encode()
