"""`/docs`: Swagger UI served from the installed `swagger-ui-bundle` package, not a CDN.

FastAPI's default page loads Swagger UI's JavaScript and CSS from a public CDN, so the
page is blank on a machine without internet (an air-gapped region, a laptop on a
plane). Here the same page points at `/docs/assets/...`, served from the package's
files. swagger-ui-bundle (PyPI, Apache-2.0, no dependencies) vendors the Swagger UI
release files; it is the package Connexion uses for the same purpose.
"""

from __future__ import annotations

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


def docs_routes(openapi_url: str, title: str) -> list[BaseRoute]:
    """The /docs page and its assets (GET /docs/assets/swagger-ui-bundle.js, ...)."""

    async def page(_: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    return [
        Route("/docs", page, methods=["GET"], include_in_schema=False),
        Mount(ASSETS, app=StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui"),
    ]
