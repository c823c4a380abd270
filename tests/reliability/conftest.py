"""Shared by the reliability suites: a small two-platform image, and a figure per suite
(cases tried, cases held) printed at the end of the run and listed in docs/reliability.md."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import Sealer

SMALL = "small/app:v1"

_tried: Counter[str] = Counter()
_held: Counter[str] = Counter()
FIGURES: list[str] = []  # extra lines a suite reports (kill points, states seen...)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" or "/reliability/" not in report.nodeid.replace("\\", "/"):
        return
    suite = report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py").removeprefix("test_")
    _tried[suite] += 1
    _held[suite] += report.passed


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _tried:
        return
    terminalreporter.section("reliability figures (cases tried / held)")
    for suite in sorted(_tried):
        terminalreporter.write_line(f"{suite:28} {_tried[suite]:4} tried {_held[suite]:4} held")
    for line in FIGURES:
        terminalreporter.write_line(line)


def make_small_context(root: Path) -> Path:
    """FROM scratch, one shared file and one per-arch file of 256 KiB: quick to build and move."""
    ctx = root / "small-ctx"
    for rel, size in (("common/readme.txt", 3000), ("amd64/bin/tool", 256 << 10), ("arm64/bin/tool", 256 << 10)):
        path = ctx / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY common/. .\nCOPY ${ARCH}/. .\nCMD echo small\n")
    return ctx


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Sealer:
    """A store holding SMALL for amd64 and arm64, shared read-only."""
    root = tmp_path_factory.mktemp("small")
    s = Sealer(root / "store")
    s.run("build", "--platform", "linux/amd64,linux/arm64", "-t", SMALL, str(make_small_context(root)))
    return s


def store_state(sealer: Sealer) -> tuple[list[dict[str, object]], set[str], set[str]]:
    """What a user could see of a store: images, blobs, and leftovers in its tmp/."""
    blobs = sealer.root / "blobs" / "sha256"
    tmp = sealer.root / "tmp"
    return (
        sealer.images() if sealer.root.exists() else [],
        {p.name for p in blobs.iterdir()} if blobs.exists() else set(),
        {p.name for p in tmp.iterdir() if not p.name.endswith(".lock")} if tmp.exists() else set(),
    )
