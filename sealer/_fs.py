"""Durable file writes and file locks, shared by the store, the clusters and the sandbox."""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from sealer.errors import StoreBusyError
from sealer.faults import checkpoint


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside ``path`` survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file's content to disk (any descriptor of the file flushes all of its pages)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


WRITEBACK_STEP = 8 << 20  # how much a long write leaves dirty before starting the disk on it


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start the disk writing these bytes of a file now, without waiting for it.

    A long durable write otherwise leaves everything dirty in memory until its fsync, which
    then waits for the disk alone while the CPU idles; started every ``WRITEBACK_STEP`` bytes,
    the disk works while the next bytes are read and hashed, and the fsync finds little left
    (a 1 GiB load: 1.04 s to 0.61 s measured). Linux's DONTNEED begins the writeback of a
    range's dirty pages and drops only its clean ones, so what was just written stays cached."""
    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


class Writeback:
    """Follows a long write into ``fd`` from ``offset`` and starts the disk on each
    ``WRITEBACK_STEP`` of it; ``flush`` first hands a buffered file's bytes to the kernel."""

    def __init__(self, fd: int, offset: int = 0, flush: Callable[[], None] | None = None) -> None:
        self.fd, self.flush = fd, flush
        self.started = self.written = offset

    def wrote(self, n: int) -> None:
        self.written += n
        if self.written - self.started >= WRITEBACK_STEP:
            self.finish()

    def finish(self) -> None:
        """Start the disk on what is left (a writer that goes on to another file, not to an fsync)."""
        if self.written > self.started:
            if self.flush is not None:
                self.flush()
            start_writeback(self.fd, self.started, self.written - self.started)
            self.started = self.written


def atomic_write(path: Path, data: bytes, mode: int = 0o644, tmp_dir: Path | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = (tmp_dir or path.parent) / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        checkpoint()
        os.replace(tmp, path)
        fsync_dir(path.parent)
        checkpoint()
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def file_lock(path: Path, mode: int = fcntl.LOCK_EX, blocking: bool = True, busy: str = "") -> Iterator[None]:
    """An flock on ``path`` for the duration; StoreBusyError(``busy``) when not blocking and held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, mode | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError as err:
            raise StoreBusyError(busy or f"{path} is held by another sealer command") from err
        yield
    finally:
        os.close(fd)
