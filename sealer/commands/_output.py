"""Rendering shared by the commands: rich progress on stderr, tables and JSON on stdout."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

# rich is imported only when a person is watching: scripts and CI pay nothing for it.


def info(message: str) -> None:
    """One line for a person, on stderr."""
    sys.stderr.write(message + "\n")


class RichReporter:
    """Progress bars on stderr while work runs; silent when stderr is not a terminal.

    A task opened while another runs (a blob inside a push, from any thread) becomes a row of
    its own under it and disappears when done; the outermost task leaves one finished line.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet or not sys.stderr.isatty()
        self._lock = threading.Lock()
        self._open = 0
        self._progress: Any = None
        self._console: Any = None
        self._rows: dict[str, Any] = {}  # status key -> its row in the running display

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        if self.quiet:
            yield lambda n: None
            return
        with self._lock:
            if self._progress is None:
                self._progress = self._new_progress()
                self._progress.start()
            self._open += 1
            outermost = self._open == 1
            progress = self._progress
            task_id = progress.add_task(description, total=total or None)
        try:
            yield lambda n: progress.advance(task_id, n)
        finally:
            with self._lock:
                self._open -= 1
                if self._open == 0:
                    progress.stop()
                    self._progress = None
                    self._rows.clear()
                else:
                    progress.remove_task(task_id)
        if outermost:
            self._console.print(f"[green]✓[/] {description}")

    def _new_progress(self) -> Any:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TransferSpeedColumn,
        )

        self._console = Console(stderr=True, highlight=False)
        return Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            console=self._console, transient=True,
        )  # fmt: skip

    def note(self, message: str) -> None:
        if not self.quiet:
            info(f"· {message}")

    def status(self, key: str, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            if self._progress is None:
                return
            row = self._rows.get(key)
            if row is None:
                self._rows[key] = self._progress.add_task(f"  {key}: {text}", total=None)
            else:
                self._progress.update(row, description=f"  {key}: {text}")


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

    # for str subclasses too (Digest): yaml matches plain representers by exact type
    BlockDumper.add_multi_representer(str, str_presenter)
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


def become_password_source() -> Callable[[], str | None]:
    """sudo's password for hosts that ask for one: $SEALER_BECOME_PASSWORD (taken out of the
    environment when sealer starts, so that no child inherits it and /proc does not show it),
    else a prompt when on a terminal."""
    from sealer._secret_env import take_become_password

    given = take_become_password()
    asked: list[str] = []

    def password() -> str | None:
        if given is not None:
            return given
        if not sys.stdin.isatty():
            return None
        if not asked:
            import getpass  # only a prompt loads it (and the terminal modules it needs)

            asked.append(getpass.getpass("sudo password on the hosts: "))
        return asked[0]

    return password
