"""The web dashboard: static assets served at `/ui` and the JSON routes under `/ui/api`.

The assets (`static/`: one HTML page, one stylesheet, one script; no build step, nothing
from a CDN) call the Cloudflare REST API of the process that served them, with the API
token the user typed, kept in `sessionStorage` only. What the REST API has no route for
(the regions, where a key's copies are) comes from `/ui/api`, whose handlers live with
the process that answers them: `central.dashboard` and `replica.dashboard`.
"""
