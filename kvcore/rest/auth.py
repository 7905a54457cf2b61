"""Bearer-token auth for the KV routes.

The token secret is hashed (SHA-256, hex) and looked up through the backend on every
request: lookups are in-memory at central and at replicas, and with no cache here a
revocation takes effect on the very next request. The account check comes before any
namespace is touched, so a token of account A learns nothing about account B.
"""

from __future__ import annotations

from kvcore.errors import AuthenticationError, PermissionDenied
from kvcore.model import Permission, Token, token_hash
from kvcore.rest.backend import Backend

_MAX_TOKEN_CHARS = 256
# secret -> SHA-256: a pure function, memoized because it is on every request's path
# (the lookup by hash still happens every time, so a revocation is still immediate).
_HASHES: dict[str, str] = {}
_HASHES_MAX = 4096


def _hash(secret: str) -> str:
    digest = _HASHES.get(secret)
    if digest is None:
        if len(_HASHES) >= _HASHES_MAX:
            _HASHES.clear()
        digest = _HASHES[secret] = token_hash(secret)
    return digest


def bearer_secret(authorization: str | None) -> str:
    """The secret of an `Authorization: Bearer <secret>` header (401 when missing or malformed)."""
    if not authorization:
        raise AuthenticationError("Authentication error: missing Authorization header")
    scheme, _, secret = authorization.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or " " in secret or len(secret) > _MAX_TOKEN_CHARS:
        raise AuthenticationError("Authentication error: expected 'Authorization: Bearer <token>'")
    return secret


def secret_hash_of(authorization: str | None) -> str:
    """The SHA-256 (hex) of a Bearer header's secret; 401 when malformed."""
    return _hash(bearer_secret(authorization))


async def token_for_secret(backend: Backend, secret: str) -> Token | None:
    """The live token with this bearer secret, or None."""
    return await backend.authenticate(_hash(secret))


async def authorize(
    backend: Backend, authorization: str | None, account_id: str | None, *, write: bool
) -> Token:
    """The token allowed to act on `account_id`; raises 401 / 403 otherwise.

    `account_id=None` stands for the token's own account: requests of workerd's KV
    binding (`kvcore.workerd`) name a namespace but no account."""
    token = await token_for_secret(backend, bearer_secret(authorization))
    if token is None:
        raise AuthenticationError("Authentication error: unknown or revoked token")
    if account_id is not None and token.account_id != account_id:
        raise PermissionDenied("Authentication error: this token is not valid for this account")
    if write and token.permission is not Permission.WRITE:
        raise PermissionDenied("Authentication error: this token has read permission only")
    return token
