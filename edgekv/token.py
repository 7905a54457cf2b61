"""`edgekv token create|list|revoke`: API tokens, managed at central over gRPC."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from edgekv.cli_support import option, option_group
from kvcore.errors import KVError
from kvcore.model import Permission, Token
from kvcore.rpc.client import CentralClient
from kvcore.settings import SettingsError, check_addr_list

T = TypeVar("T")
token_app = typer.Typer(no_args_is_help=True)
_err = Console(stderr=True)

Central = Annotated[
    str,
    typer.Option(
        envvar="EDGEKV_CENTRAL",
        help="HOST:PORT[,HOST:PORT...] of central's gRPC API; several fail over in order.",
        show_envvar=True,
    ),
]
Secret = Annotated[
    str | None,
    typer.Option(envvar="EDGEKV_CLUSTER_SECRET", help="Cluster secret for central.", show_envvar=True),
]
TlsCa = Annotated[str | None, typer.Option(envvar="EDGEKV_TLS_CA", help="PEM CA for TLS.", show_envvar=True)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a token command talks: central's gRPC address(es), the cluster secret and the
    CA of central's certificate; plus `--json` where the command has it."""

    central: str
    cluster_secret: str | None
    tls_ca: str | None
    as_json: bool = False

    def run(self, call: Callable[[CentralClient], Awaitable[T]]) -> T:
        """`call`'s result with a client of central. A malformed `--central` is one line
        and exit 2; central refusing or unreachable (a `KVError`) one line and exit 1."""
        try:
            check_addr_list(self.central, "--central (EDGEKV_CENTRAL)")
        except SettingsError as exc:
            _err.print(f"error: {exc}", highlight=False)
            raise typer.Exit(2) from None

        async def go() -> T:
            secret, ca = self.cluster_secret, self.tls_ca
            async with CentralClient(self.central, cluster_secret=secret, tls_ca=ca) as client:
                return await call(client)

        try:
            return asyncio.run(go())
        except KVError as exc:
            why = f": {exc.detail}" if exc.detail else ""
            _err.print(f"error: {exc.message}{why}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


def _command(name: str, *, as_json: bool = False) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Registers `name`: its own options, then `--central`, `--cluster-secret`, `--tls-ca`
    and (`as_json`) `--json`, handed to it first as one `Target`."""
    params = [
        option("central", Central, "127.0.0.1:7070"),
        option("cluster_secret", Secret),
        option("tls_ca", TlsCa),
        *([option("as_json", AsJson, False)] if as_json else []),
    ]

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        return token_app.command(name)(option_group(Target, params)(fn))

    return register


def _shown(token: Token) -> dict[str, str]:
    """What `--json` shows of a token, besides its secret (create) or creation time (list)."""
    return {"id": token.id, "account_id": token.account_id, "permission": token.permission.value}


@_command("create", as_json=True)
def create(
    to: Target,
    account: Annotated[
        str,
        typer.Option(
            envvar="EDGEKV_ACCOUNT_ID", help="Account id (32 hex) the token belongs to.", show_envvar=True
        ),
    ],
    permission: Annotated[Permission, typer.Option(help="read or write.")] = Permission.WRITE,
) -> None:
    """Create a token; its secret is printed once and never stored."""
    token, secret = to.run(lambda c: c.create_token(account, permission))
    if to.as_json:
        typer.echo(json.dumps({**_shown(token), "token": secret}))
    else:
        typer.echo(
            f"token id:   {token.id}\naccount:    {token.account_id}\n"
            f"permission: {token.permission.value}\nsecret:     {secret}"
        )


@_command("list", as_json=True)
def list_(
    to: Target,
    account: Annotated[
        str | None,
        typer.Option(envvar="EDGEKV_ACCOUNT_ID", help="Only this account's tokens.", show_envvar=True),
    ] = None,
) -> None:
    """List tokens (never their secrets)."""
    tokens = to.run(lambda c: c.list_tokens(account))
    if to.as_json:
        typer.echo(json.dumps([{**_shown(t), "created": t.created} for t in tokens]))
        return
    # Plain aligned columns, never truncated: `token revoke` needs the whole id.
    rows = [("id", "account", "permission", "created (UTC)")]
    for t in tokens:
        created = datetime.fromtimestamp(t.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((t.id, t.account_id, t.permission.value, created))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


@_command("revoke")
def revoke(
    to: Target, token_id: Annotated[str, typer.Argument(help="The token id (from `edgekv token list`).")]
) -> None:
    """Revoke a token; every replica stops accepting it at once."""
    to.run(lambda c: c.revoke_token(token_id))
    typer.echo(f"revoked {token_id}")
