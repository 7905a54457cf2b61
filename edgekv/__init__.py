"""The `edgekv` command.

Every flag also reads an `EDGEKV_*` environment variable (typer's `envvar`), so the
same settings work from a shell, a systemd unit or docker compose.
"""

from __future__ import annotations

import logging
import os
import sys

# gRPC's C core logs transport trouble (a failed TLS handshake) at INFO and WARNING as
# its own lines on stderr; our messages already say what went wrong, in one line; its
# errors stay visible. Set before grpc is first imported; GRPC_VERBOSITY, if set, wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import typer

from edgekv.dev import dev_command
from edgekv.kv import kv_app
from edgekv.required import AllMissingCommand
from edgekv.serve import central_command, replica_command
from edgekv.token import token_app

app = typer.Typer(
    name="edgekv",
    help="edgekv: a multi-region key-value service with edge read replicas, "
    "speaking the Cloudflare Workers KV API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(
    "central",
    cls=AllMissingCommand,
    help="Run the authority: the store, the gRPC API and the change stream.",
)(central_command)
app.command(
    "replica",
    cls=AllMissingCommand,
    help="Run one region's edge: hot-key cache, read-through, write forwarding.",
)(replica_command)
app.command("dev", help="Run central and one replica per region on loopback, for development.")(dev_command)
app.add_typer(
    token_app, name="token", help="Create, list and revoke API tokens (talks to central over gRPC)."
)
app.add_typer(kv_app, name="kv", help="Wrangler-style client of the KV REST API.")


def main() -> None:
    # Client commands stay quiet; the servers raise their own logger to INFO.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    app()
