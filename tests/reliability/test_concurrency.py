"""Commands racing on one store: each ends correctly or with a clear refusal, and fsck is clean.
And a full disk: the command fails with a clear message and the store is left as it was."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import SEALER, Registry, Sealer
from tests.reliability.conftest import SMALL, make_small_context, store_state

BOTH = "linux/amd64,linux/arm64"


def context(path: Path, mib: int, kubefile: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "data.bin").write_bytes(os.urandom(mib << 20))
    (path / "Kubefile").write_text(kubefile)
    return path


def together(sealer: Sealer, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        subprocess.Popen([*SEALER, *args], env=sealer.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in commands
    ]
    out = []
    for args, p in zip(commands, procs, strict=True):
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(args, p.returncode, stdout, stderr))
    return out


def names(sealer: Sealer) -> set[str]:
    return {str(r["name"]) for r in sealer.images()}


def test_two_builds_at_once(sealer: Sealer, tmp_path: Path) -> None:
    a = context(tmp_path / "a", 24, "FROM scratch\nCOPY data.bin .\n")
    b = context(tmp_path / "b", 24, "FROM scratch\nCOPY data.bin .\n")
    results = together(sealer, ["build", "--platform", BOTH, "-t", "a:v1", str(a)],
                       ["build", "--platform", BOTH, "-t", "b:v1", str(b)])  # fmt: skip
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert names(sealer) == {"a:v1", "b:v1"}
    assert sealer.run("fsck").returncode == 0


def test_a_build_and_an_rmi_of_its_base(sealer: Sealer, tmp_path: Path) -> None:
    base = context(tmp_path / "base", 8, "FROM scratch\nCOPY data.bin .\n")
    sealer.run("build", "--platform", BOTH, "-t", "base:v1", str(base))
    app = context(tmp_path / "app", 32, "FROM base:v1\nCOPY data.bin app/\n")
    build, rmi = together(sealer, ["build", "--platform", BOTH, "-t", "app:v1", str(app)], ["rmi", "base:v1"])
    assert rmi.returncode == 0, rmi.stderr
    # the build either read its base before the rmi (and holds every blob it needs) or was refused clearly
    if build.returncode != 0:
        assert build.stderr.count("\n") == 1 and "base:v1" in build.stderr, build.stderr
        assert names(sealer) == set()
    else:
        assert names(sealer) == {"app:v1"}
    assert sealer.run("fsck").returncode == 0
    sealer.run("prune")
    assert sealer.run("fsck").returncode == 0
    if build.returncode == 0:  # every layer of the app, its base's included, survived the rmi's garbage collection
        sealer.run("save", "-o", str(tmp_path / "app.tar"), "app:v1")


def test_a_pull_and_a_load_of_the_same_image(
    small_store: Sealer, sealer: Sealer, registry: Registry, tmp_path: Path
) -> None:
    remote = f"{registry.address}/race/app:v1"
    small_store.run("tag", SMALL, remote)
    small_store.run("push", remote)
    archive = tmp_path / "app.tar"
    small_store.run("save", "-o", str(archive), remote)
    pull, load = together(sealer, ["pull", remote], ["load", "-i", str(archive)])
    assert (pull.returncode, load.returncode) == (0, 0), (pull.stderr, load.stderr)
    ids = {r["id"] for r in sealer.images()}
    assert ids == {r["id"] for r in small_store.images() if r["name"] == remote}
    assert sealer.run("fsck").returncode == 0


def test_rmi_and_prune_while_a_load_runs(small_store: Sealer, sealer: Sealer, tmp_path: Path) -> None:
    archive = tmp_path / "small.tar"
    small_store.run("save", "-o", str(archive), SMALL)
    sealer.run("load", "-i", str(archive))
    sealer.run("tag", SMALL, "other:v1")
    load, rmi, prune = together(sealer, ["load", "-i", str(archive)], ["rmi", SMALL], ["prune"])
    assert load.returncode == 0 and rmi.returncode == 0, (load.stderr, rmi.stderr)
    assert prune.returncode == 0 or "busy" in prune.stderr, prune.stderr
    assert sealer.run("fsck").returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MiB tmpfs to hold a store."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.parametrize("command", ["build", "load", "pull"])
def test_a_full_disk_fails_clearly_and_keeps_the_store(
    command: str, small_disk: Path, small_store: Sealer, registry: Registry, tmp_path: Path
) -> None:
    sealer = Sealer(small_disk / "store")
    sealer.run("build", "--platform", BOTH, "-t", SMALL, str(make_small_context(tmp_path)))
    big = context(tmp_path / "big", 16, "FROM scratch\nCOPY data.bin .\n")
    other = Sealer(tmp_path / "other-store")
    other.run("build", "--platform", "linux/amd64", "-t", f"{registry.address}/big/app:v1", str(big))
    before = store_state(sealer)
    if command == "build":
        proc = sealer.run("build", "--platform", "linux/amd64", "-t", "big:v1", str(big), check=False)
    elif command == "load":
        other.run("save", "-o", str(tmp_path / "big.tar"), f"{registry.address}/big/app:v1")
        proc = sealer.run("load", "-i", str(tmp_path / "big.tar"), check=False)
    else:
        other.run("push", f"{registry.address}/big/app:v1")
        proc = sealer.run("pull", f"{registry.address}/big/app:v1", check=False)
    assert proc.returncode != 0
    assert "No space left on device" in proc.stderr and "disk is full" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert store_state(sealer) == before
    assert sealer.run("fsck").returncode == 0
