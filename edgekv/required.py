"""Report every missing required option at once, not one per attempt.

click stops at the first required option it finds missing; an operator starting a
replica by hand then needs three tries to learn it wants --region, --central and
--data-dir. `AllMissingCommand` (the `cls` of our commands) lists them all, each with
its environment variable, as one usage error.
"""

from __future__ import annotations

from typing import Any

from typer._click.core import Context, Parameter  # typer vendors click: its classes, not click's
from typer._click.exceptions import MissingParameter, UsageError
from typer.core import TyperCommand


def _label(param: Parameter) -> str:
    name = param.opts[0] if param.opts else str(param.name)
    envvar = getattr(param, "envvar", None)
    return f"{name} ({envvar})" if isinstance(envvar, str) else name


class AllMissingCommand(TyperCommand):
    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        given = list(args)
        try:
            return super().parse_args(ctx, args)
        except MissingParameter:
            parser = self.make_parser(ctx)
            opts, _, _ = parser.parse_args(args=list(given))
            missing = [
                _label(p)
                for p in self.get_params(ctx)
                if p.required and opts.get(p.name or "") is None and _from_env(p, ctx) is None
            ]
            if len(missing) <= 1:
                raise
            raise UsageError("missing options: " + ", ".join(missing), ctx) from None


def _from_env(param: Parameter, ctx: Context) -> Any:
    return param.resolve_envvar_value(ctx)
