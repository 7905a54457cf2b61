"""`edgekv kv ...`: wrangler-style commands over the REST API of central or any region.

    edgekv kv namespace create|list|rename|delete
    edgekv kv key put|get|list|delete
    edgekv kv bulk put|delete|get FILE.json

Every command takes `--endpoint`, `--token` and `--account` (or EDGEKV_ENDPOINT,
EDGEKV_API_TOKEN, EDGEKV_ACCOUNT_ID); key and bulk commands name the namespace by
`--namespace-id` (EDGEKV_NAMESPACE_ID) or by title with `--namespace` / `--binding`.
Humans get tables, scripts `--json`. Errors are one line on stderr: exit 1 when the
API refused or could not be reached, 2 for usage errors and malformed input files.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgekv.cli_support import (
    EXIT_API,
    UsageError,
    confirm,
    fail,
    format_expiration,
    handle_errors,
    option,
    option_group,
    print_json,
    progress_bar,
)
from kvcore.client import BulkResult, KVClient, Namespace
from kvcore.client.bulkfile import load_json, parse_keys, parse_put_items
from kvcore.clock import SYSTEM_CLOCK
from kvcore.errors import NamespaceNotFound

DEFAULT_BATCH = 1000  # as wrangler: a tenth of the API's 10,000

kv_app = typer.Typer(
    name="kv",
    help="Manage namespaces, keys and bulk data (wrangler kv style).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
namespace_app = typer.Typer(help="Create, list, rename and delete namespaces.", no_args_is_help=True)
key_app = typer.Typer(help="Put, get, list and delete single keys.", no_args_is_help=True)
bulk_app = typer.Typer(help="Write, delete and read many keys from a JSON file.", no_args_is_help=True)


@kv_app.callback()
def _quiet_http_logs() -> None:
    """Keep stderr for our one-line messages: the `edgekv` entry point logs at INFO,
    and httpx would log every request there."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


kv_app.add_typer(namespace_app, name="namespace")
kv_app.add_typer(key_app, name="key")
kv_app.add_typer(bulk_app, name="bulk")

Endpoint = Annotated[
    str | None,
    typer.Option("--endpoint", envvar="EDGEKV_ENDPOINT", help="API base URL, e.g. http://127.0.0.1:8787"),
]
Token = Annotated[str | None, typer.Option("--token", envvar="EDGEKV_API_TOKEN", help="API token.")]
Account = Annotated[str | None, typer.Option("--account", envvar="EDGEKV_ACCOUNT_ID", help="Account id.")]
Timeout = Annotated[float, typer.Option("--timeout", envvar="EDGEKV_TIMEOUT", help="Seconds per request.")]
NamespaceId = Annotated[
    str | None, typer.Option("--namespace-id", envvar="EDGEKV_NAMESPACE_ID", help="Namespace id.")
]
Title = Annotated[
    str | None, typer.Option("--namespace", "--binding", help="Namespace title (looked up by title).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, max=10_000, help="Items per request (API maximum 10,000).")
]
ShowProgress = Annotated[
    bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal).")
]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a command talks: the API, the account and, for key and bulk commands, the
    namespace (by id, or by title looked up); plus `--json` where the command has it."""

    endpoint: str | None
    token: str | None
    account: str | None
    timeout: float  # seconds per request
    namespace_id: str | None = None
    namespace_title: str | None = None
    as_json: bool = False

    def connect(self) -> KVClient:
        """The client (UsageError naming every missing one of endpoint, token, account)."""
        given = (
            ("--endpoint (EDGEKV_ENDPOINT)", self.endpoint),
            ("--token (EDGEKV_API_TOKEN)", self.token),
            ("--account (EDGEKV_ACCOUNT_ID)", self.account),
        )
        missing = [name for name, value in given if not value]
        if missing:
            raise UsageError("missing " + ", ".join(missing))
        assert self.endpoint and self.token and self.account
        return make_client(self.endpoint, self.account, self.token, self.timeout)

    def namespace(self, client: KVClient, title: str | None = None, namespace_id: str | None = None) -> str:
        """The namespace's id: `--namespace-id` (or `namespace_id`), or the id of the namespace
        titled `--namespace`/`--binding` (or `title`); exactly one of them (UsageError)."""
        namespace_id = namespace_id or self.namespace_id
        title = title or self.namespace_title
        if namespace_id and title:
            raise UsageError("give either --namespace-id or --namespace/--binding, not both")
        if namespace_id:
            return namespace_id
        if title:
            try:
                return client.find_namespace(title).id
            except NamespaceNotFound:
                raise NamespaceNotFound(f"namespace not found: no namespace titled {title!r}") from None
        raise UsageError("name the namespace with --namespace-id or --namespace/--binding TITLE")

    @contextlib.contextmanager
    def session(self) -> Iterator[tuple[KVClient, str]]:
        """`(client, namespace id)` for a key or bulk command; the client closed after."""
        with self.connect() as client:
            yield client, self.namespace(client)


def make_client(endpoint: str, account: str, token: str, timeout: float) -> KVClient:
    """Builds the API client; tests replace it to talk to an in-process server."""
    return KVClient(endpoint, account, token, timeout=timeout)


def _command(
    app: typer.Typer, name: str, *, namespace: bool = False, as_json: bool = False, timeout_s: float = 30.0
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Registers `name` on `app`: its own options, then (in this order) `--namespace-id`
    and `--namespace/--binding` when it names a namespace, `--endpoint`, `--token`,
    `--account`, `--timeout` (default `timeout_s`), and `--json` when it prints JSON;
    the command gets them as its first argument, a `Target`. Failures: `handle_errors`."""
    params = [
        *([option("namespace_id", NamespaceId), option("namespace_title", Title)] if namespace else []),
        option("endpoint", Endpoint),
        option("token", Token),
        option("account", Account),
        option("timeout", Timeout, timeout_s),
        *([option("as_json", AsJson, False)] if as_json else []),
    ]

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        return app.command(name)(handle_errors(option_group(Target, params)(fn)))

    return register


# -- namespace ---------------------------------------------------------------------------


def _print_namespace(ns: Namespace, as_json: bool, line: str) -> None:
    if as_json:
        print_json({"id": ns.id, "title": ns.title})
    else:
        typer.echo(line)


@_command(namespace_app, "create", as_json=True)
def namespace_create(
    to: Target, title: Annotated[str, typer.Argument(help="Title of the new namespace.")]
) -> None:
    """Create a namespace."""
    with to.connect() as client:
        ns = client.create_namespace(title)
    _print_namespace(ns, to.as_json, f"Created namespace {ns.title!r} with id {ns.id}")


@_command(namespace_app, "list", as_json=True)
def namespace_list(to: Target) -> None:
    """List every namespace of the account (all pages)."""
    with to.connect() as client:
        namespaces = client.list_namespaces()
    if to.as_json:
        print_json([{"id": ns.id, "title": ns.title} for ns in namespaces])
        return
    table = Table("id", "title")
    for ns in namespaces:
        table.add_row(ns.id, ns.title)
    Console(soft_wrap=True).print(table)


@_command(namespace_app, "rename", as_json=True)
def namespace_rename(
    to: Target,
    old_title: Annotated[str | None, typer.Argument(help="Current title (or use --namespace-id).")] = None,
    new_name: Annotated[str, typer.Option("--new-name", help="The new title.")] = "",
    namespace_id: NamespaceId = None,
) -> None:
    """Rename a namespace."""
    if not new_name:
        raise UsageError("--new-name is required")
    with to.connect() as client:
        ns = client.rename_namespace(to.namespace(client, old_title, namespace_id), new_name)
    _print_namespace(ns, to.as_json, f"Renamed namespace {ns.id} to {ns.title!r}")


@_command(namespace_app, "delete", namespace=True)
def namespace_delete(
    to: Target, title: Annotated[str | None, typer.Argument(help="Title (or use --namespace-id).")] = None
) -> None:
    """Delete a namespace and all its keys."""
    if title and to.namespace_title:
        raise UsageError("give the title once")
    with to.connect() as client:
        ns_id = to.namespace(client, title)
        client.delete_namespace(ns_id)
    typer.echo(f"Deleted namespace {ns_id}")


# -- key ---------------------------------------------------------------------------------


def _parse_metadata(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--metadata is not valid JSON: {exc}") from exc


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from exc


@_command(key_app, "put", namespace=True)
def key_put(
    to: Target,
    key: Annotated[str, typer.Argument(help="The key to write.")],
    value: Annotated[str | None, typer.Argument(help="The value (or use --path).")] = None,
    path: Annotated[Path | None, typer.Option("--path", help="Read the value from this file.")] = None,
    ttl: Annotated[int | None, typer.Option("--ttl", help="Expire after N seconds (>= 60).")] = None,
    expiration: Annotated[int | None, typer.Option("--expiration", help="Expire at epoch seconds.")] = None,
    metadata: Annotated[str | None, typer.Option("--metadata", help="JSON metadata.")] = None,
) -> None:
    """Write one key (from VALUE or --path FILE)."""
    if (value is None) == (path is None):
        raise UsageError("give exactly one of VALUE or --path FILE")
    meta = _parse_metadata(metadata)
    body = _read_file(path) if path is not None else str(value)
    with to.session() as (client, ns_id):
        client.namespace(ns_id).put(key, body, expiration=expiration, expiration_ttl=ttl, metadata=meta)
    typer.echo(f"Wrote key {key!r} to namespace {ns_id}", err=True)


@_command(key_app, "get", namespace=True)
def key_get(
    to: Target,
    key: Annotated[str, typer.Argument(help="The key to read.")],
    text: Annotated[bool, typer.Option("--text", help="Decode as UTF-8 and end with a newline.")] = False,
    strong: Annotated[bool, typer.Option("--strong", help="Read from central (consistency=strong).")] = False,
) -> None:
    """Print a key's value: raw bytes on stdout (or text with --text)."""
    with to.session() as (client, ns_id):
        value = client.namespace(ns_id).get(key, "bytes", "strong" if strong else None)
    if value is None:
        fail(f"key not found: {key!r}", EXIT_API)
    if text:
        typer.echo(value.decode("utf-8", "replace"))
    else:
        out = typer.get_binary_stream("stdout")
        out.write(value)
        out.flush()


@_command(key_app, "list", namespace=True, as_json=True)
def key_list(
    to: Target,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only keys starting with this.")] = None,
) -> None:
    """List keys (following cursors to the end)."""
    with to.session() as (client, ns_id):
        keys = client.list_keys(ns_id, prefix)
    if to.as_json:
        print_json(keys)
        return
    table = Table("name", "expiration", "metadata")
    for info in keys:
        meta = json.dumps(info["metadata"], ensure_ascii=False) if "metadata" in info else ""
        table.add_row(info["name"], format_expiration(info.get("expiration")), meta)
    table.caption = _n_keys(len(keys))
    Console(soft_wrap=True).print(table)


@_command(key_app, "delete", namespace=True)
def key_delete(to: Target, key: Annotated[str, typer.Argument(help="The key to delete.")]) -> None:
    """Delete one key."""
    with to.session() as (client, ns_id):
        client.namespace(ns_id).delete(key)
    typer.echo(f"Deleted key {key!r} from namespace {ns_id}", err=True)


# -- bulk --------------------------------------------------------------------------------

KeysFile = Annotated[
    Path, typer.Argument(help="JSON array of keys, or of {name} objects as `key list --json` prints.")
]


def _n_keys(n: int) -> str:
    """'1 key', '2 keys'."""
    return f"{n} key" if n == 1 else f"{n} keys"


def _report_bulk(verb: str, result: BulkResult, as_json: bool) -> None:
    done, failed = result.successful_key_count, result.unsuccessful_keys
    if as_json:
        print_json({"successful_key_count": done, "unsuccessful_keys": failed})
    if failed:
        sample = ", ".join(repr(k) for k in failed[:5])
        more = ", ..." if len(failed) > 5 else ""
        were = "was" if len(failed) == 1 else "were"
        fail(f"{_n_keys(len(failed))} {were} not {verb} ({sample}{more})", EXIT_API)
    if not as_json:
        typer.echo(f"Success: {verb} {_n_keys(done)}")


@_command(bulk_app, "put", namespace=True, as_json=True, timeout_s=60.0)
def bulk_put(
    to: Target,
    file: Annotated[Path, typer.Argument(help="JSON array of {key, value, ...} objects.")],
    batch_size: BatchSize = DEFAULT_BATCH,
    progress: ShowProgress = None,
) -> None:
    """Write many keys from a wrangler-format JSON file."""
    items = parse_put_items(load_json(file), file, now=SYSTEM_CLOCK.now())
    with to.session() as (client, ns_id), progress_bar(len(items), "writing", progress) as advance:
        result = client.bulk_put(ns_id, items, batch_size=batch_size, progress=advance)
    _report_bulk("written", result, to.as_json)


@_command(bulk_app, "delete", namespace=True, as_json=True, timeout_s=60.0)
def bulk_delete(
    to: Target,
    file: KeysFile,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Do not ask for confirmation before deleting.")
    ] = False,
    batch_size: BatchSize = DEFAULT_BATCH,
    progress: ShowProgress = None,
) -> None:
    """Delete many keys listed in a JSON file (asks first, as wrangler, unless --force)."""
    keys = parse_keys(load_json(file), file)
    with to.session() as (client, ns_id):
        question = f"Are you sure you want to delete all the keys read from {str(file)!r} from {ns_id}?"
        if not force and not confirm(question):
            typer.echo(f"Not deleting keys read from {str(file)!r}.", err=True)
            return
        with progress_bar(len(keys), "deleting", progress) as advance:
            result = client.bulk_delete(ns_id, keys, batch_size=batch_size, progress=advance)
    _report_bulk("deleted", result, to.as_json)


@_command(bulk_app, "get", namespace=True, timeout_s=60.0)
def bulk_get(
    to: Target,
    file: KeysFile,
    with_metadata: Annotated[bool, typer.Option("--metadata", help="Include metadata.")] = False,
    value_type: Annotated[str, typer.Option("--type", help="text or json.")] = "text",
    progress: ShowProgress = None,
) -> None:
    """Read many keys (100 per request); prints a JSON object of key -> value (null if missing)."""
    if value_type not in ("text", "json"):
        raise UsageError("--type must be 'text' or 'json'")
    keys = parse_keys(load_json(file), file)
    with to.session() as (client, ns_id), progress_bar(len(keys), "reading", progress) as advance:
        values = client.bulk_get(ns_id, keys, type=value_type, with_metadata=with_metadata, progress=advance)
    print_json(values)


def main() -> None:  # pragma: no cover - for `python -m edgekv.kv`
    kv_app(prog_name="edgekv kv")


if __name__ == "__main__":  # pragma: no cover
    main()
