"""What a KV request names in its path (account, namespace, key), checked once.

The route table (`kvcore.rest.routing`) leaves the raw bytes of each path segment in
`scope["path_params"]`. Here they are percent-decoded strictly
(`kvcore.rest.parsing.decode_segment`) and validated with `kvcore.limits`, in one order
for every route: the account, then the caller's token against it (401 / 403), and only
then the namespace id (400 / 10011 unless 32 lowercase hex) and the key (1 to 512
bytes, 414 past that, since it is named in the URL). So a token of account A learns
nothing about account B, and a bad key gets the same field and message on every route.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request

from kvcore import limits
from kvcore.model import Token
from kvcore.rest.auth import authorize
from kvcore.rest.backend import Backend
from kvcore.rest.parsing import decode_segment, header

# (raw namespace segment, raw key segment) -> (namespace id, key): a pure function of
# the bytes, so repeat requests for a key skip the decoding and the validation.
_KEYS: dict[tuple[bytes, bytes], tuple[str, str]] = {}
_KEYS_MAX: Final = 8192


def segment(raw: bytes, field: str) -> str:
    """One path segment as text (see `decode_segment`; plain ASCII is taken as is)."""
    return raw.decode("ascii") if raw.isascii() and b"%" not in raw else decode_segment(raw, field)


async def account(backend: Backend, request: Request, *, write: bool) -> tuple[str, Token]:
    """The path's account id and the caller's token, allowed to act on it."""
    account_id = segment(request.path_params["account_id"], "account_id")
    token = await authorize(backend, header(request.scope, b"authorization"), account_id, write=write)
    return account_id, token


async def namespace(backend: Backend, request: Request, *, write: bool) -> tuple[str, str]:
    """(account id, namespace id) of a namespace route, after auth."""
    account_id, _ = await account(backend, request, write=write)
    return account_id, namespace_id(request.path_params["namespace_id"])


async def key(backend: Backend, request: Request, *, write: bool) -> tuple[str, str, str]:
    """(account id, namespace id, key) of a `.../values/{key}` or `.../metadata/{key}`
    route, after auth."""
    account_id, _ = await account(backend, request, write=write)
    params = request.path_params
    raw = (params["namespace_id"], params["key_name"])
    found = _KEYS.get(raw)
    if found is None:
        ns = namespace_id(raw[0])
        name = key_name(raw[1])
        if len(_KEYS) >= _KEYS_MAX:
            _KEYS.clear()
        found = _KEYS[raw] = (ns, name)
    return account_id, *found


def key_name(raw: bytes) -> str:
    """A key segment, decoded and validated (400 naming `key_name`; 414 past 512 bytes)."""
    return limits.validate_key(decode_segment(raw, "key_name"), in_url=True)


def namespace_id(raw: bytes) -> str:
    """A namespace id segment, decoded and in its issued form (400 / 10011 otherwise)."""
    return limits.validate_namespace_id(segment(raw, "namespace_id"))
