"""What the tests share: running the real ``sealer`` command against a store of their own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SEALER = [sys.executable, "-m", "sealer"]


@dataclass
class Sealer:
    """The sealer command bound to one store (``SEALER_ROOT``)."""

    root: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "SEALER_ROOT": str(self.root)}

    def run(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*SEALER, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
            input=input and input.decode(),
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"sealer {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*SEALER, *args], env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)

    def images(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.json("images", "--output", "json")
        return result


def build_examples(sealer: Sealer, platforms: str = "linux/amd64,linux/arm64", context_root: Path = EXAMPLES) -> None:
    sealer.run("build", "--platform", platforms, "-t", "kubernetes:v1.19.8", str(context_root / "kubernetes-base"))
    sealer.run(
        "build", "--platform", platforms, "-t", "kubernetes-multi-arch:v1.19.8", str(context_root / "multi-arch")
    )


def copy_tree(src: Path, dst: Path) -> None:
    """A fresh copy whose files all have new times (a new checkout)."""
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy)


def sh(*args: str) -> str:
    """Run a tool (tar, file, skopeo...) and return what it printed; it must succeed."""
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout
