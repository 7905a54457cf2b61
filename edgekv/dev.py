"""`edgekv dev`: central and one replica per region as child processes on loopback.

With `--store postgresql://... --centrals N`, N centrals share that database and the
replicas are spread over them (round robin).

Prints a table of regions and URLs with a dev account and API token, optionally
writes the same facts as JSON (`--info-file`) for scripts, restarts a child that
exits (edgekv.supervise), and stops every child cleanly on Ctrl-C or SIGTERM.
`--base-port N` fixes the ports (central gRPC N, central HTTP N+1, replicas N+2...).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgekv.launch import Process, central_argv, free_port, replica_argv, stop_all, wait_ready
from edgekv.supervise import Supervisor
from kvcore.listen import port_in_use
from kvcore.settings import SettingsError, parse_size

_out = Console()
_err = Console(stderr=True)


def _centrals(
    root: Path, store: str, ports: list[tuple[int, int]], delay: float, account_id: str, token: str
) -> list[Process]:
    """One central per (gRPC, HTTP) port pair on `store`: "central" (RocksDB in
    root/central), "central-2", ..."""
    out: list[Process] = []
    for n, (grpc_port, http_port) in enumerate(ports, 1):
        name = "central" if n == 1 else f"central-{n}"
        grpc, http = f"127.0.0.1:{grpc_port}", f"127.0.0.1:{http_port}"
        argv = central_argv(data_dir=root / name, grpc_addr=grpc, http_addr=http, propagation_delay_s=delay)
        # The store by environment, not argv: a postgresql:// URL may carry a password,
        # and any user on the machine can read a process's command line (ps).
        env = {
            **os.environ,
            "EDGEKV_STORE": store,
            "EDGEKV_BOOTSTRAP_ACCOUNT": account_id,
            "EDGEKV_BOOTSTRAP_TOKEN": token,
        }
        out.append(_child(name, name, argv, root, f"http://{http}", grpc=grpc, env=env))
    return out


def _child(name: str, stem: str, argv: list[str], root: Path, http: str, **kw: Any) -> Process:
    """A child of `edgekv dev` with its data in root/STEM and its log in root/STEM.log, in a
    session of its own (Ctrl-C reaches us; we stop children in order), SIGTERMed if we die."""
    return Process(name, argv, root / f"{stem}.log", http, root / stem, own_session=True, **kw)


def _ports(base: int | None, count: int) -> list[int]:
    """`count` loopback ports: free ones, or base..base+count-1 (each checked free)."""
    if base is None:
        return [free_port() for _ in range(count)]
    if not 1024 <= base <= 65535 - count:
        raise typer.BadParameter(f"--base-port: between 1024 and {65535 - count}")
    taken = [p for p in range(base, base + count) if port_in_use(f"127.0.0.1:{p}")]
    if taken:
        raise typer.BadParameter(f"--base-port: 127.0.0.1:{taken[0]} is already in use")
    return list(range(base, base + count))


def _credentials(data_dir: Path) -> tuple[str, str]:
    """The dev account and token: kept in the data dir so a restart reuses them."""
    path = data_dir / "dev-credentials.json"
    if path.exists():
        saved = json.loads(path.read_text())
        return str(saved["account_id"]), str(saved["token"])
    account_id, token = secrets.token_hex(16), "dev-" + secrets.token_urlsafe(24)
    path.write_text(json.dumps({"account_id": account_id, "token": token}))
    path.chmod(0o600)
    return account_id, token


def dev_command(
    regions: Annotated[str, typer.Option(envvar="EDGEKV_REGIONS", help="Comma-separated region names.")] = (
        "us,eu,ap"
    ),
    propagation_delay: Annotated[
        float, typer.Option(envvar="EDGEKV_PROPAGATION_DELAY", help="Seconds within which updates propagate.")
    ] = 60.0,
    cache_bytes: Annotated[
        str, typer.Option(envvar="EDGEKV_CACHE_BYTES", help="Edge cache bound per replica.")
    ] = "64MiB",
    data_dir: Annotated[
        str | None,
        typer.Option(envvar="EDGEKV_DATA_DIR", help="Keep data here (default: a temp dir, removed)."),
    ] = None,
    info_file: Annotated[
        str | None, typer.Option(help="Also write account, token and URLs as JSON to this file.")
    ] = None,
    walkthrough: Annotated[
        bool, typer.Option(help="Walk through the system once the cluster is up (make demo).")
    ] = False,
    store: Annotated[
        str,
        typer.Option(envvar="EDGEKV_STORE", help="'rocksdb' or a postgresql:// URL shared by the centrals."),
    ] = "rocksdb",
    n_centrals: Annotated[
        int,
        typer.Option(
            "--centrals", envvar="EDGEKV_CENTRALS", help="Centrals on the store (over 1 needs PostgreSQL)."
        ),
    ] = 1,
    base_port: Annotated[
        int | None,
        typer.Option(
            envvar="EDGEKV_BASE_PORT",
            help="Fixed ports: central gRPC N, central HTTP N+1, replicas N+2... (default: free ports).",
        ),
    ] = None,
    workerd: Annotated[
        bool, typer.Option(help="Give each region a workerd KV listener (--workerd-addr) for Workers.")
    ] = False,
) -> None:
    names = [r.strip() for r in regions.split(",") if r.strip()]
    if not names or len(set(names)) != len(names):
        raise typer.BadParameter("--regions: give distinct names, e.g. us,eu,ap")
    try:
        parse_size(cache_bytes)
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from None
    if n_centrals < 1 or (n_centrals > 1 and not store.startswith(("postgresql://", "postgres://"))):
        raise typer.BadParameter("--centrals: at least 1; more than 1 share a --store postgresql://... only")

    temp = data_dir is None
    root = Path(data_dir or tempfile.mkdtemp(prefix="edgekv-dev-"))
    root.mkdir(parents=True, exist_ok=True)
    account_id, token = _credentials(root)
    # Fixed ports keep their documented layout for the first central (gRPC N, HTTP N+1,
    # replicas N+2..., then --workerd's listeners); further centrals take the pairs after.
    n_workerd = len(names) if workerd else 0
    ports = _ports(base_port, 2 + len(names) + n_workerd + 2 * (n_centrals - 1))
    pairs = [(ports[0], ports[1])]
    extra = ports[2 + len(names) + n_workerd :]
    pairs += [(extra[i], extra[i + 1]) for i in range(0, len(extra), 2)]
    centrals = _centrals(root, store, pairs, propagation_delay, account_id, token)
    central = centrals[0]
    replicas: list[Process] = []
    # --workerd: each region's workerd KV listener, on the ports after the replicas'.
    workerd_ports = ports[2 + len(names) : 2 + len(names) + n_workerd]
    workerd_addrs = {name: f"127.0.0.1:{port}" for name, port in zip(names, workerd_ports, strict=False)}
    for name, port in zip(names, ports[2 : 2 + len(names)], strict=True):
        argv = replica_argv(
            region=name,
            # Round robin for the first choice, then the others to fail over to.
            central=_rotated([c.grpc for c in centrals], len(replicas)),
            data_dir=root / f"replica-{name}",
            http_addr=f"127.0.0.1:{port}",
            cache_bytes=cache_bytes,
            workerd_addr=workerd_addrs.get(name),
        )
        replicas.append(_child(name, f"replica-{name}", argv, root, f"http://127.0.0.1:{port}"))
    children = [*centrals, *replicas]
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    # SIGINT too: a shell starts a background job (`edgekv dev &`) with SIGINT ignored,
    # and Ctrl-C or `kill -INT` must stop the cluster all the same.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        # The first central creates the schema and the dev token; the others find both.
        for group in ([central], centrals[1:], replicas):
            for child in group:
                child.start()
            wait_ready(group)
        info = {
            "account_id": account_id,
            "token": token,
            "central": {"http": central.http, "grpc": central.grpc},
            "regions": {r.name: r.http for r in replicas},
            "centrals": [{"http": c.http, "grpc": c.grpc} for c in centrals],
        }
        if workerd_addrs:
            info["workerd"] = workerd_addrs
        _print_table(info, root, propagation_delay)
        if info_file:
            tmp = Path(info_file + ".tmp")
            tmp.touch(mode=0o600)  # it holds the dev token: readable by its owner only
            tmp.write_text(json.dumps(info, indent=2))
            tmp.replace(info_file)  # atomic: a script polling for the file never reads half of it
        if walkthrough:
            from edgekv.walkthrough import walk

            walk(info, propagation_delay)
        _out.print("[dim]A process that exits is restarted; Ctrl-C stops every process.[/dim]")
        Supervisor(children, lambda line: _err.print(line, highlight=False)).run_forever()
    except KeyboardInterrupt:
        _err.print("stopping...")
    except (RuntimeError, TimeoutError) as exc:
        _err.print(f"error: {exc}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        stop_all(children[::-1])
        if info_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(info_file)
        if temp:
            shutil.rmtree(root, ignore_errors=True)


def _print_table(info: dict[str, Any], root: Path, delay: float) -> None:
    table = Table(title=f"edgekv dev cluster (propagation delay {delay:g}s)")
    table.add_column("process")
    table.add_column("HTTP (REST API under /client/v4, /metrics, /docs)", no_wrap=True)
    workerd = info.get("workerd", {})
    if workerd:
        table.add_column("workerd KV", no_wrap=True)
    for n, central in enumerate(info["centrals"], 1):
        table.add_row("central" if n == 1 else f"central-{n}", central["http"], *([""] if workerd else []))
    for name, url in info["regions"].items():
        table.add_row(f"replica {name}", url, *([workerd[name]] if workerd else []))
    _out.print(table)
    first = next(iter(info["regions"].values()))
    for line in (
        f"central gRPC:  {', '.join(c['grpc'] for c in info['centrals'])}",
        f"account id:    [bold]{info['account_id']}[/bold]",
        f"API token:     [bold]{info['token']}[/bold]  (write permission)",
        f"data and logs: {root}",
        f"dashboard:     {info['central']['http']}/ui  (and /ui on every replica; sign in with the token)",
        f'Cloudflare SDK: Cloudflare(base_url="{first}/client/v4", api_token="{info["token"]}")',
        f"edgekv kv:      export EDGEKV_ENDPOINT={first} EDGEKV_ACCOUNT_ID={info['account_id']} "
        f"EDGEKV_API_TOKEN={info['token']}",
        f"edgekv token:   export EDGEKV_CENTRAL={','.join(c['grpc'] for c in info['centrals'])}"
        "  (then: edgekv token create --permission read)",
    ):
        _out.print(line, soft_wrap=True, highlight=False)


def _rotated(addrs: list[str], start: int) -> str:
    """'b,c,a' for (['a', 'b', 'c'], 1): every central, starting at `start` (mod len)."""
    k = start % len(addrs)
    return ",".join(addrs[k:] + addrs[:k])
