"""Shared by the benchmarks in this folder: the machine they ran on and a Markdown copy
of their table under ``bench/results/``. Not a benchmark itself (nothing to run)."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """One line: cores, RAM, CPU model, Python and OS, e.g. for a results file."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        ram_text = f"{ram:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        ram_text = "RAM unknown"
    return (
        f"nproc {os.cpu_count()}, {ram_text}, {cpu}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def command_line() -> str:
    """The command that ran this process, as a user would type it from the repo root."""
    return shlex.join([".venv/bin/python", *sys.argv])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table (numbers right-aligned, the first column left)."""
    align = ["---"] + ["---:"] * (len(headers) - 1)
    names = [" ".join(h.split()) for h in headers]  # multi-line terminal headers
    lines = ["| " + " | ".join(names) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class ResultTable:
    """One table of a results file: a title, column headers, rows of cells."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    left: int = 1  # columns aligned left (the labels); the rest are numbers
    no_wrap: Sequence[int] = ()  # columns whose cells must stay on one line

    def rich(self) -> Table:
        """The same table for the terminal."""
        table = Table(title=self.title)
        for i, header in enumerate(self.headers):
            table.add_column(
                header, justify="left" if i < self.left else "right", no_wrap=i in self.no_wrap
            )
        for row in self.rows:
            table.add_row(*row)
        return table

    def markdown(self) -> str:
        """The same table as GitHub Markdown, under a bold title."""
        return f"**{self.title}**\n\n" + markdown_table(self.headers, self.rows)


def write_results(
    name: str,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    notes: Sequence[str] = (),
    *,
    more_tables: Sequence[ResultTable] = (),
) -> Path:
    """Write ``bench/results/<name>.md``: title, command, machine, the table (and
    ``more_tables`` after it), notes."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# {title}",
        "",
        f"Command (from the repository root): `{command_line()}`",
        "",
        f"Machine: {machine()}. Run {stamp}. The machine is shared, so timings are",
        "noisy: read ratios and scaling, not single numbers.",
        "",
        markdown_table(headers, rows),
    ]
    for table in more_tables:
        parts += ["", table.markdown()]
    if notes:
        parts += ["", *(f"- {note}" for note in notes)]
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
