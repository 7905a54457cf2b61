"""Account discovery with only an API token: the calls wrangler, the Cloudflare SDKs and
the dashboard make before they know an account id.

    GET /client/v4/user/tokens/verify            {"id", "status": "active"}
    GET /client/v4/accounts/{account_id}/tokens/verify   (the account-owned form)
    GET /client/v4/memberships                   [{"id", "account": {...}, "roles", "status"}]
    GET /client/v4/accounts                      [{"id", "name", "type", "settings"}]
    GET /client/v4/accounts/{account_id}         {"id", "name", "type", "settings"}
    GET /client/v4/user                          403, code 9109 (see below)

Sources: wrangler 4.x `src/user/whoami.ts` (`/user/tokens/verify`, `/user`, `/accounts`)
and `src/user/choose-account.ts` (`/memberships`, paged with `page` until
`page * per_page >= total_count`); shapes from Cloudflare's API reference and the
Python SDK's models (`Account` needs `id`, `name`, `type`).

An edgekv token belongs to exactly one account, so every answer shows that account
only, found through `Backend.authenticate`: a replica answers from its replicated
token table without asking central. edgekv has no account names, so an account's
name is its id. It has no users either, so `/user` answers 9109 "Unauthorized to
access requested resource" (wrangler then prints the account table without an email);
`/user/tokens/verify` still succeeds, since wrangler and the SDK use it to check a
token. Membership roles are Cloudflare's permission-group names for what the token
may do ("Workers KV Storage Read" / "... Write").
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from kvcore import limits
from kvcore.errors import AuthenticationError, InvalidApiToken, Unauthorized
from kvcore.model import Permission, Token
from kvcore.rest import envelope, target
from kvcore.rest.auth import bearer_secret, token_for_secret
from kvcore.rest.backend import Backend
from kvcore.rest.openapi_docs import ACCOUNT, operation
from kvcore.rest.parsing import query, query_int
from kvcore.rest.routing import Route

V4: Final = "/client/v4"
_JSON: Final = "application/json"
ROLES: Final = {Permission.READ: "Workers KV Storage Read", Permission.WRITE: "Workers KV Storage Write"}
# Cloudflare's bounds for `per_page` on /accounts and /memberships (default 20).
_MIN_PER_PAGE: Final = 5
_MAX_PER_PAGE: Final = 50
_VALID_TOKEN_MESSAGE: Final = '[{"code":10000,"message":"This API Token is valid and active","type":null}]'


def account_json(account_id: str) -> dict[str, Any]:
    """Cloudflare's `Account` object for an edgekv account (its name is its id)."""
    return {
        "id": account_id,
        "name": account_id,
        "type": "standard",
        "settings": {"enforce_twofactor": False, "abuse_contact_email": None},
    }


def membership_json(token: Token) -> dict[str, Any]:
    """Cloudflare's `Membership` of the token's own account (id: the token's id)."""
    return {
        "id": token.id,
        "account": account_json(token.account_id),
        "roles": [ROLES[token.permission]],
        "status": "accepted",
        "api_access_enabled": True,
    }


def token_verify_json(token: Token) -> dict[str, Any]:
    return {"id": token.id, "status": "active"}


def _ok(body: bytes) -> Response:
    return Response(body, media_type=_JSON)


def _one_page(request: Request, items: list[dict[str, Any]]) -> Response:
    """A `page` / `per_page` listing with Cloudflare's `result_info`."""
    q = query(request.scope)
    page = query_int(q, "page", 1, 2**31) or 1
    per_page = query_int(q, "per_page", _MIN_PER_PAGE, _MAX_PER_PAGE) or limits.DEFAULT_PER_PAGE
    chunk = items[(page - 1) * per_page : page * per_page]
    total_pages = (len(items) + per_page - 1) // per_page
    info = {
        "page": page,
        "per_page": per_page,
        "count": len(chunk),
        "total_count": len(items),
        "total_pages": total_pages,
    }
    return _ok(envelope.success(chunk, info))


class AccountHandlers:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def _token(self, request: Request) -> Token:
        secret = bearer_secret(request.headers.get("authorization"))
        token = await token_for_secret(self.backend, secret)
        if token is None:
            raise AuthenticationError("Authentication error: unknown or revoked token")
        return token

    async def verify_user_token(self, request: Request) -> Response:
        try:
            token = await self._token(request)
        except AuthenticationError as exc:
            raise InvalidApiToken() from exc
        return _ok(_verified(token))

    async def verify_account_token(self, request: Request) -> Response:
        _, token = await target.account(self.backend, request, write=False)
        return _ok(_verified(token))

    async def memberships(self, request: Request) -> Response:
        token = await self._token(request)
        return _one_page(request, [membership_json(token)])

    async def accounts(self, request: Request) -> Response:
        token = await self._token(request)
        return _one_page(request, [account_json(token.account_id)])

    async def account(self, request: Request) -> Response:
        _, token = await target.account(self.backend, request, write=False)
        return _ok(envelope.success(account_json(token.account_id)))

    async def user(self, request: Request) -> Response:
        await self._token(request)
        raise Unauthorized("Unauthorized to access requested resource: edgekv tokens belong to an account")


def _verified(token: Token) -> bytes:
    body = envelope.success(token_verify_json(token)).decode()
    return body.replace('"messages":[]', '"messages":' + _VALID_TOKEN_MESSAGE, 1).encode()


# -- OpenAPI (shapes of the Cloudflare API reference, trimmed to what is served)

_ACCOUNT_SCHEMA: Final = {
    "type": "object",
    "required": ["id", "name", "type"],
    "properties": {
        "id": {"type": "string", "maxLength": 32},
        "name": {"type": "string"},
        "type": {"enum": ["standard", "enterprise"]},
        "settings": {"type": "object"},
    },
}
_MEMBERSHIP_SCHEMA: Final = {
    "type": "object",
    "required": ["id", "account", "roles", "status"],
    "properties": {
        "id": {"type": "string"},
        "account": _ACCOUNT_SCHEMA,
        "roles": {"type": "array", "items": {"type": "string"}},
        "status": {"enum": ["accepted", "pending", "rejected"]},
        "api_access_enabled": {"type": ["boolean", "null"]},
    },
}
_VERIFY_SCHEMA: Final = {
    "type": "object",
    "required": ["id", "status"],
    "properties": {"id": {"type": "string"}, "status": {"enum": ["active", "disabled", "expired"]}},
}
_PAGE_PARAMS: Final = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {
        "name": "per_page",
        "in": "query",
        "schema": {"type": "integer", "minimum": _MIN_PER_PAGE, "maximum": _MAX_PER_PAGE},
    },
]
_PAGE_INFO: Final = {
    "type": "object",
    "properties": {
        k: {"type": "number"} for k in ("page", "per_page", "count", "total_count", "total_pages")
    },
}


def _envelope(result: dict[str, Any], info: dict[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "success": {"enum": [True]},
        "errors": {"type": "array"},
        "messages": {"type": "array"},
        "result": result,
    }
    if info is not None:
        props["result_info"] = info
    return {"type": "object", "required": ["success", "errors", "messages", "result"], "properties": props}


def account_routes(backend: Backend) -> list[Route]:
    """The discovery routes (central's and every replica's): all GET, metrics label "other"."""
    h = AccountHandlers(backend)
    listed = {"type": "array"}

    def route(path: str, endpoint: Any, operation_id: str, doc: dict[str, Any]) -> Route:
        return Route(
            V4 + path, endpoint, "GET", "other", {"tags": ["accounts"], "operationId": operation_id, **doc}
        )

    return [
        route(
            "/user/tokens/verify",
            h.verify_user_token,
            "user-api-tokens-verify-token",
            operation("Verify the token (user form)", [], _envelope(_VERIFY_SCHEMA)),
        ),
        route(
            "/accounts/{account_id}/tokens/verify",
            h.verify_account_token,
            "account-api-tokens-verify-token",
            operation("Verify the token (account form)", [ACCOUNT], _envelope(_VERIFY_SCHEMA)),
        ),
        route(
            "/memberships",
            h.memberships,
            "user'-s-account-memberships-list-memberships",
            operation(
                "The token's account membership",
                _PAGE_PARAMS,
                _envelope({**listed, "items": _MEMBERSHIP_SCHEMA}, _PAGE_INFO),
            ),
        ),
        route(
            "/accounts",
            h.accounts,
            "accounts-list-accounts",
            operation(
                "The token's account",
                _PAGE_PARAMS,
                _envelope({**listed, "items": _ACCOUNT_SCHEMA}, _PAGE_INFO),
            ),
        ),
        route(
            "/accounts/{account_id}",
            h.account,
            "accounts-account-details",
            operation("One account (the token's own)", [ACCOUNT], _envelope(_ACCOUNT_SCHEMA)),
        ),
        route(
            "/user",
            h.user,
            "user-user-details",
            operation("User details: 9109 for every edgekv token (tokens have no user)", [], None),
        ),
    ]
