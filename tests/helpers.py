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
        # each store has its own Docker config.json, so logins never touch the real one
        return {**os.environ, "SEALER_ROOT": str(self.root), "DOCKER_CONFIG": str(self.root.parent / "docker")}

    def run(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        raw = subprocess.run([*SEALER, *args], env=self.env(), capture_output=True, check=False, input=input)
        proc = subprocess.CompletedProcess(
            raw.args, raw.returncode, raw.stdout.decode(errors="replace"), raw.stderr.decode(errors="replace")
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


@dataclass
class Registry:
    """Debian's docker-registry on a free loopback port, with a throwaway root."""

    address: str
    root: Path
    process: subprocess.Popen[bytes]
    user: str | None = None
    password: str | None = None

    def skopeo_creds(self) -> list[str]:
        return ["--creds", f"{self.user}:{self.password}"] if self.user else []

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(
    root: Path, user: str | None = None, password: str | None = None, storage: Path | None = None, extra: str = ""
) -> Registry:
    """``storage``: serve an existing registry tree as it is (default: a new one under root);
    ``extra``: more top-level sections of the registry's config.yml."""
    import time
    import urllib.error
    import urllib.request

    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if user and password:
        import bcrypt

        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        (root / "htpasswd").write_text(f"{user}:{hashed}\n")
        auth = f"auth:\n  htpasswd:\n    realm: sealer-test\n    path: {root / 'htpasswd'}\n"
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage or root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: sealer-tests\n{auth}{extra}"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")],
        stdout=open(root / "log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError(f"docker-registry did not start: {(root / 'log').read_text()}")
    return Registry(f"127.0.0.1:{port}", root, proc, user, password)
