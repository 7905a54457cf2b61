"""`edgekv token create|list|revoke`: API tokens, managed at central over gRPC."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from kvcore.errors import KVError
from kvcore.model import Permission
from kvcore.rpc.client import CentralClient
from kvcore.settings import SettingsError, check_addr_list

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


def _client(central: str, secret: str | None, tls_ca: str | None) -> CentralClient:
    try:
        check_addr_list(central, "--central (EDGEKV_CENTRAL)")
    except SettingsError as exc:
        _err.print(f"error: {exc}", highlight=False)
        raise typer.Exit(2) from None
    return CentralClient(central, cluster_secret=secret, tls_ca=tls_ca)


def _fail(exc: KVError) -> typer.Exit:
    why = f": {exc.detail}" if exc.detail else ""
    _err.print(f"error: {exc.message}{why}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@token_app.command("create")
def create(
    account: Annotated[str, typer.Option(help="Account id (32 hex) the token belongs to.")],
    permission: Annotated[Permission, typer.Option(help="read or write.")] = Permission.WRITE,
    central: Central = "127.0.0.1:7070",
    cluster_secret: Secret = None,
    tls_ca: TlsCa = None,
    as_json: AsJson = False,
) -> None:
    """Create a token; its secret is printed once and never stored."""

    async def go() -> None:
        async with _client(central, cluster_secret, tls_ca) as c:
            token, secret = await c.create_token(account, permission)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "id": token.id,
                        "account_id": token.account_id,
                        "permission": token.permission.value,
                        "token": secret,
                    }
                )
            )
        else:
            typer.echo(
                f"token id:   {token.id}\naccount:    {token.account_id}\n"
                f"permission: {token.permission.value}\nsecret:     {secret}"
            )

    try:
        asyncio.run(go())
    except KVError as exc:
        raise _fail(exc) from None


@token_app.command("list")
def list_(
    account: Annotated[str | None, typer.Option(help="Only this account's tokens.")] = None,
    central: Central = "127.0.0.1:7070",
    cluster_secret: Secret = None,
    tls_ca: TlsCa = None,
    as_json: AsJson = False,
) -> None:
    """List tokens (never their secrets)."""

    async def go() -> None:
        async with _client(central, cluster_secret, tls_ca) as c:
            tokens = await c.list_tokens(account)
        if as_json:
            typer.echo(
                json.dumps(
                    [
                        {
                            "id": t.id,
                            "account_id": t.account_id,
                            "permission": t.permission.value,
                            "created": t.created,
                        }
                        for t in tokens
                    ]
                )
            )
            return
        # Plain aligned columns, never truncated: `token revoke` needs the whole id.
        rows = [("id", "account", "permission", "created (UTC)")]
        for t in tokens:
            created = datetime.fromtimestamp(t.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
            rows.append((t.id, t.account_id, t.permission.value, created))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            typer.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())

    try:
        asyncio.run(go())
    except KVError as exc:
        raise _fail(exc) from None


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token id (from `edgekv token list`).")],
    central: Central = "127.0.0.1:7070",
    cluster_secret: Secret = None,
    tls_ca: TlsCa = None,
) -> None:
    """Revoke a token; every replica stops accepting it at once."""

    async def go() -> None:
        async with _client(central, cluster_secret, tls_ca) as c:
            await c.revoke_token(token_id)

    try:
        asyncio.run(go())
    except KVError as exc:
        raise _fail(exc) from None
    typer.echo(f"revoked {token_id}")
