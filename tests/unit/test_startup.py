"""What starting sealer loads: --version nothing but sealer itself, a command's --help only
the command line, never the modules that do the work (YAML, HTTP, SSH, Ansible)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sealer import __version__

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"click", "yaml", "rich", "requests", "urllib3", "paramiko", "ansible_runner", "jinja2"}


def imported(*args: str) -> tuple[str, set[str]]:
    """stdout, and every module the command imported (Python's own import log)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sealer", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return proc.stdout, {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # the first is the header


def top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_version_imports_neither_click_nor_any_sealer_module() -> None:
    out, modules = imported("--version")
    assert out == f"sealer, version {__version__}\n"
    assert top(modules) & HEAVY == set()
    assert {m for m in modules if m.startswith("sealer.")} == set()


def test_help_imports_the_command_line_and_no_module_that_does_the_work() -> None:
    out, modules = imported("build", "--help")
    assert "Build an image from a Kubefile" in out
    assert "click" in modules
    assert top(modules) & (HEAVY - {"click"}) == set()
    # and, before it, the unchanged-rebuild check of sealer build (sealer.commands.build.replay)
    replay = {"sealer.commands", "sealer.commands.build", "sealer.commands._output", "sealer.build",
              "sealer.build.memo", "sealer.store", "sealer.store.root"}  # fmt: skip
    assert {m for m in modules if m.startswith("sealer.")} == {
        "sealer.cli",
        "sealer.errors",
        "sealer._signals",
        "sealer._secret_env",  # first of all: the passwords out of /proc/PID/environ
    } | replay
