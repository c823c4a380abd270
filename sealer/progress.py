"""How library code reports progress without printing: it calls a Reporter the caller chose."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol


class Reporter(Protocol):
    def task(
        self, description: str, total: int | None = None
    ) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        """A unit of long work; the yielded function advances it by a number of bytes or steps."""
        ...

    def note(self, message: str) -> None:
        """One line worth telling a person (a cache hit, a skipped step)."""
        ...

    def status(self, key: str, text: str) -> None:
        """The latest state of one of several things worked on at once (a host), shown live
        under the running task."""
        ...


class SilentReporter:
    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        yield lambda n: None

    def note(self, message: str) -> None:
        return None

    def status(self, key: str, text: str) -> None:
        return None
