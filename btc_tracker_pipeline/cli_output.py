"""How ``btc-tracker`` writes: full-width output in pipes and logs, one-line usage errors,
``--version`` and the checks of numeric options.

Only rich and typer are imported here, so ``btc-tracker --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from typer.core import TyperGroup

DISTRIBUTION = "btc-tracker-pipeline"
# Width of a console whose output is not a terminal: wide enough that no table cell is
# cut ("…") and no line is wrapped, whatever a market's question or a path holds.
PIPE_WIDTH = 100_000


class PipeConsole(Console):
    """A rich Console that never squeezes its output when it is not a terminal.

    rich lays tables out for 80 columns (or $COLUMNS) when stdout is a pipe or a file,
    cutting ids and numbers with "…". Writing to anything but a terminal, this console
    is as wide as a line needs (tables keep their natural width); on a terminal it
    behaves as usual.
    """

    def _writes_to_terminal(self) -> bool:
        # Not is_terminal: FORCE_COLOR (common in CI) makes that true for a pipe too.
        isatty = getattr(self.file, "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:  # a closed file
            return False

    @property
    def size(self) -> ConsoleDimensions:
        """The terminal's size, or PIPE_WIDTH columns when not writing to a terminal."""
        dimensions = Console.size.fget(self)  # type: ignore[attr-defined]
        if self._writes_to_terminal():
            return dimensions
        return ConsoleDimensions(PIPE_WIDTH, dimensions.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


def print_error(console: Console, message: str) -> None:
    """One ``error: …`` line (never wrapped, so it can be copied whole)."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


@contextlib.contextmanager
def _one_line_usage_errors(console: Console) -> Iterator[None]:
    try:
        yield
    except typer.TyperException as exc:  # click's UsageError, BadParameter, …
        if type(exc).__name__ == "NoArgsIsHelpError":  # typer prints the help
            raise
        print_error(console, exc.format_message())
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            console.print(f"Try '{ctx.command_path} -h' for help.", soft_wrap=True, markup=False)
        raise typer.Exit(exc.exit_code) from exc


class OneLineErrors(TyperGroup):
    """A command group whose usage errors (bad option values, unknown options, missing
    ones) are one ``error: …`` line and one hint line, exit code 2, instead of a panel."""

    err_console = PipeConsole(stderr=True)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse the group's own options; a mistake is one line."""
        with _one_line_usage_errors(self.err_console):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        """Run the subcommand; a mistake in its arguments is one line."""
        with _one_line_usage_errors(self.err_console):
            return super().invoke(ctx)


def package_version() -> str:
    """The installed version of btc-tracker (``unknown`` when run from a bare checkout)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def show_version(value: bool) -> None:
    """typer callback of ``--version``: print the version and exit 0."""
    if value:
        typer.echo(f"btc-tracker {package_version()}")
        raise typer.Exit()


# --------------------------------------------------------------------------- numbers


def finite(value: float | None) -> float | None:
    """typer callback: refuse NaN and ±inf (typer's min/max let NaN through)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def positive(value: float | None) -> float | None:
    """typer callback: a finite number > 0."""
    if finite(value) is not None and value <= 0:  # type: ignore[operator]
        raise typer.BadParameter(f"{value:g} is not > 0")
    return value


def interval(
    low: float, high: float, *, include_low: bool = False, include_high: bool = False
) -> Callable[[float | None], float | None]:
    """typer callback: a finite number in (low, high), with ``low`` (``include_low``)
    and/or ``high`` (``include_high``) allowed too."""
    shown = f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"

    def check(value: float | None) -> float | None:
        if finite(value) is None:
            return value
        above = value >= low if include_low else value > low  # type: ignore[operator]
        below = value <= high if include_high else value < high  # type: ignore[operator]
        if not (above and below):
            raise typer.BadParameter(f"{value:g} is not in {shown}")
        return value

    return check


def bad_value(option: str, message: str) -> typer.BadParameter:
    """A usage error of ``option`` found in a command's body (one line, exit 2)."""
    return typer.BadParameter(message, param_hint=f"'{option}'")


PORT = {"min": 0, "max": 65_535}
# numpy's SeedSequence takes any non-negative integer; 2**63 - 1 keeps it an int64.
SEED = {"min": 0, "max": 2**63 - 1}
