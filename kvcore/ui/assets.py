"""The dashboard's static files, served from the package at `/ui`.

Every response carries a Content-Security-Policy that allows only this origin's own
script, style and API calls: no inline script, no CDN, no framing.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kvcore.errors import NotFoundRoute
from kvcore.rest import envelope

_TYPES: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def load_assets() -> dict[str, bytes]:
    """name -> bytes of every file the dashboard serves (package data, read once)."""
    root = resources.files(__package__ or "kvcore.ui").joinpath("static")
    return {name: root.joinpath(name).read_bytes() for name in _TYPES}


def asset_routes() -> list[BaseRoute]:
    """`GET /ui` (and `/ui/`) -> the page; `GET /ui/{app.js,app.css}` -> the files."""
    files = load_assets()

    def respond(name: str) -> Response:
        return Response(files[name], media_type=_TYPES[name], headers=SECURITY_HEADERS)

    async def index(_: Request) -> Response:
        return respond("index.html")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            err = NotFoundRoute()
            return Response(
                envelope.error_body(err), status_code=err.http_status, media_type="application/json"
            )
        return respond(name)

    return [
        Route("/ui", index, methods=["GET"]),
        Route("/ui/", index, methods=["GET"]),
        Route("/ui/{name:str}", asset, methods=["GET"]),
    ]
