from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, ROOT, Registry, Sealer, build_examples, start_registry


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A loopback docker-registry standing in for docker.io, seeded with the example's images
    (scripts/upstream-registry.py); every sealer the tests run fetches docker.io through it."""
    root = tmp_path_factory.mktemp("upstream")
    script = [sys.executable, str(ROOT / "scripts" / "upstream-registry.py")]
    address = subprocess.run([*script, "start", str(root)], capture_output=True, text=True, check=True).stdout.strip()
    os.environ["SEALER_REGISTRY_MIRRORS"] = f"docker.io={address}"
    yield address
    subprocess.run([*script, "stop", str(root)], check=False)


@pytest.fixture(scope="session")
def prepared_examples(upstream: str) -> Path:
    """The examples with their per-arch binaries (fetched and compiled by examples/prepare.sh)."""
    if os.geteuid() != 0:
        pytest.fail("the suite runs as root (it installs packages and creates network namespaces)")
    subprocess.run(["bash", str(EXAMPLES / "prepare.sh")], check=True)
    return EXAMPLES


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    """sealer with an empty store of this test's own."""
    return Sealer(tmp_path / "store")


@pytest.fixture(scope="session")
def example_store(tmp_path_factory: pytest.TempPathFactory, prepared_examples: Path) -> Iterator[Sealer]:
    """A store holding the example base and app for amd64 and arm64, shared read-only by tests."""
    s = Sealer(tmp_path_factory.mktemp("example-store") / "store")
    build_examples(s)
    yield s


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real registry (Debian's docker-registry) on loopback, shared by the session."""
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The same with htpasswd authentication."""
    reg = start_registry(tmp_path_factory.mktemp("auth-registry"), "alice", "canary-Pa55word")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built from the repository root and installed offline into a path of its own,
    as a user installs it."""
    work = tmp_path_factory.mktemp("collection")
    galaxy = str(Path(sys.executable).parent / "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", str(ROOT), "--output-path", str(work)],
                   check=True, capture_output=True, cwd=work)  # fmt: skip
    tarball = next(work.glob("sealer-cluster-*.tar.gz"))
    subprocess.run([galaxy, "collection", "install", "--offline", "-p", str(work / "cols"), str(tarball)],
                   check=True, capture_output=True, cwd=work)  # fmt: skip
    return work / "cols"
