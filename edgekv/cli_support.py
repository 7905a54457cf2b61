"""Plumbing for command-line front ends (`edgekv kv`, `edgekv token`): failures turned
into one line on stderr and an exit code, options shared by many commands declared
once (`option_group`), a progress bar that only shows where it helps, and small
formatting helpers. No commands live here."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kvcore.client.bulkfile import BulkFileError
from kvcore.errors import KVError

P = ParamSpec("P")
R = TypeVar("R")
G = TypeVar("G")

EXIT_API = 1  # the API refused, or could not be reached
EXIT_USAGE = 2  # bad arguments or a malformed input file (click's own usage errors are 2 too)
PROGRESS_MIN_ITEMS = 2000  # smaller jobs finish before a bar is worth drawing


class UsageError(Exception):
    """Bad arguments or input: exit 2."""


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


def one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn every failure into one line on stderr and an exit code, never a traceback
    (set EDGEKV_DEBUG=1 to see the traceback of an unexpected error)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except (UsageError, BulkFileError) as exc:
            fail(str(exc), EXIT_USAGE)
        except KVError as exc:
            fail(exc.message, EXIT_API)
        except httpx.HTTPError as exc:
            fail(f"HTTP request failed: {exc}", EXIT_API)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get("EDGEKV_DEBUG"):
                raise
            fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_API)

    return wrapper


def option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    """One option of a group: a typer `Annotated[...]` type and its default."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def option_group(
    build: Callable[..., G], params: Sequence[inspect.Parameter]
) -> Callable[[Callable[Concatenate[G, P], R]], Callable[..., R]]:
    """Decorates a command whose first parameter is a group of options, `G`: typer sees
    the command's own parameters, then `params` (in that order, as `--help` lists them);
    the command gets those as one value, `build(**their values)`. So options many
    commands take (`--endpoint`, `--token`, ...) are declared once."""

    def decorate(fn: Callable[Concatenate[G, P], R]) -> Callable[..., R]:
        signature = inspect.signature(fn, eval_str=True)
        shown = [*list(signature.parameters.values())[1:], *params]
        names = [p.name for p in params]

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> R:
            group = build(**{name: kwargs.pop(name) for name in names})
            return fn(group, *args, **kwargs)

        command.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
        annotations = {p.name: p.annotation for p in shown}
        command.__annotations__ = annotations | {"return": signature.return_annotation}
        return command

    return decorate


def confirm(question: str) -> bool:
    """wrangler's `confirm()` (workers-sdk `src/dialogs.ts`): asked on a terminal, default
    yes; elsewhere (stdin not a terminal, or CI set: its `isNonInteractiveOrCI`) the
    fallback answer, yes, is printed and used."""
    if sys.stdin.isatty() and not os.environ.get("CI"):
        return typer.confirm(question, default=True, err=True)
    typer.echo(f"? {question}\nUsing fallback value in non-interactive context: yes", err=True)
    return True


def print_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))


def format_expiration(expiration: int | None) -> str:
    if expiration is None:
        return ""
    return dt.datetime.fromtimestamp(expiration, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@contextlib.contextmanager
def progress_bar(total: int, label: str, enabled: bool | None) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`. The bar goes to stderr; by default only when stderr is a
    terminal and the job is large (`enabled` forces it on or off)."""
    console = Console(stderr=True)
    show = enabled if enabled is not None else (console.is_terminal and total >= PROGRESS_MIN_ITEMS)
    if not show:
        yield lambda _n: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
