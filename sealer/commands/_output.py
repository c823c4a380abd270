"""Rendering shared by the commands: rich progress on stderr, tables and JSON on stdout."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

# rich is imported only when a person is watching: scripts and CI pay nothing for it.


def info(message: str) -> None:
    """One line for a person, on stderr."""
    sys.stderr.write(message + "\n")


class RichReporter:
    """Progress bars on stderr while work runs; silent when stderr is not a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet or not sys.stderr.isatty()

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        if self.quiet:
            yield lambda n: None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TransferSpeedColumn,
        )

        console = Console(stderr=True, highlight=False)
        columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
        if total:
            columns += [BarColumn(), DownloadColumn(), TransferSpeedColumn()]
        with Progress(*columns, console=console, transient=True) as progress:
            task_id = progress.add_task(description, total=total or None)
            yield lambda n: progress.advance(task_id, n)
        console.print(f"[green]✓[/] {description}")

    def note(self, message: str) -> None:
        if not self.quiet:
            info(f"· {message}")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def print_yaml(value: Any) -> None:
    import yaml

    class BlockDumper(yaml.SafeDumper):
        """Indents lists under their key and writes multi-line strings as blocks, as kubectl does."""

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)

    def str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)

    BlockDumper.add_representer(str, str_presenter)
    sys.stdout.write(yaml.dump(value, Dumper=BlockDumper, sort_keys=False, default_flow_style=False))


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1000
    return f"{n}B"


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        sys.stdout.write("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
