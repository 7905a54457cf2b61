"""`/docs`: Swagger UI served from the installed `swagger-ui-bundle` package, not a CDN.

The usual Swagger UI page loads its JavaScript and CSS from a public CDN, so the page
is blank on a machine without internet (an air-gapped region, a laptop on a plane).
Here the page points at `/docs/assets/...`, served from the package's files.
swagger-ui-bundle (PyPI, Apache-2.0, no dependencies) vendors the Swagger UI release
files; it is the package Connexion uses for the same purpose. The page is the one
FastAPI's `get_swagger_ui_html` writes, with its default options.
"""

from __future__ import annotations

import html
import json

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"
_OPTIONS = {
    "url": "",
    "dom_id": "#swagger-ui",
    "layout": "BaseLayout",
    "deepLinking": True,
    "showExtensions": True,
    "showCommonExtensions": True,
}
_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="shortcut icon" href="{assets}/favicon-32x32.png">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui">
</div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
const ui = SwaggerUIBundle(Object.assign({options}, {{
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}}))
</script>
</body>
</html>
"""


def docs_page(openapi_url: str, title: str) -> str:
    """The HTML of /docs for the document at `openapi_url`."""
    options = json.dumps({**_OPTIONS, "url": openapi_url}).replace("<", "\\u003c")
    return _PAGE.format(assets=ASSETS, title=html.escape(f"{title} - API docs"), options=options)


def docs_routes(openapi_url: str, title: str) -> list[BaseRoute]:
    """The /docs page and its assets (GET /docs/assets/swagger-ui-bundle.js, ...)."""
    page_html = docs_page(openapi_url, title)

    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(page_html)

    return [
        Route("/docs", page, methods=["GET"], include_in_schema=False),
        Mount(ASSETS, app=StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui"),
    ]
