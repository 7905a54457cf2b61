"""The `/ui/api` route table: handlers of one request each, answered in Cloudflare's
envelope (`{"success", "errors", "messages", "result"}`) so the page reports every
failure with the API's own message.

A handler takes a `UiRequest` and returns `(HTTP status, JSON body)`; `json_handler`
wraps one that returns a plain result and raises `KVError`s. The same table answers
over HTTP (`routes()`) and, at central, over gRPC for a replica that relays
(`answer()`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kvcore import limits
from kvcore.errors import KVError, NotFoundRoute, ValidationError
from kvcore.model import Token
from kvcore.rest import envelope
from kvcore.rest.auth import authorize
from kvcore.rest.backend import Backend

PREFIX = "/ui/api"


@dataclass(frozen=True)
class UiRequest:
    path: str  # e.g. "/ui/api/locate"
    query: str  # raw query string, without "?"
    authorization: str  # the Authorization header ("" when absent)

    @property
    def params(self) -> Mapping[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def param(self, name: str) -> str:
        """A required query parameter (400 when missing or empty)."""
        value = self.params.get(name, "")
        if not value:
            raise ValidationError(f"{name}: required")
        return value


Handler = Callable[[UiRequest], Awaitable[tuple[int, bytes]]]


def json_handler(fn: Callable[[UiRequest], Awaitable[Any]]) -> Handler:
    """A handler answering `fn`'s result in the success envelope, a KVError in the failure one."""

    async def handler(req: UiRequest) -> tuple[int, bytes]:
        try:
            return 200, envelope.success(await fn(req))
        except KVError as exc:
            return exc.http_status, envelope.error_body(exc)

    return handler


async def authorize_read(backend: Backend, req: UiRequest) -> tuple[Token, str]:
    """The caller's token and the `account_id` parameter it may read (401/403 otherwise)."""
    account_id = req.param("account_id")
    return await authorize(backend, req.authorization or None, account_id, write=False), account_id


def key_target(req: UiRequest) -> tuple[str, str]:
    """The validated (`namespace_id`, `key`) parameters."""
    namespace_id = req.param("namespace_id")
    return namespace_id, limits.validate_key(req.param("key"), "key")


class DashboardApi:
    """Paths under `/ui/api` -> handlers."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self.handlers = dict(handlers)

    async def answer(self, path: str, query: str, authorization: str) -> tuple[int, bytes]:
        handler = self.handlers.get(path)
        if handler is None:
            err = NotFoundRoute()
            return err.http_status, envelope.error_body(err)
        return await handler(UiRequest(path, query, authorization))

    def routes(self) -> list[BaseRoute]:
        async def endpoint(request: Request) -> Response:
            status, body = await self.answer(
                request.url.path,
                request.url.query,
                request.headers.get("authorization", ""),
            )
            return Response(body, status_code=status, media_type="application/json")

        return [Route(path, endpoint, methods=["GET"]) for path in self.handlers]


def mean(total: float | None, count: float | None) -> float | None:
    """total / count, or None when nothing was counted."""
    if not count or total is None:
        return None
    return total / count
