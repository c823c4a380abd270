"""Hostile ``RUN`` instructions: the build host is not the build's to change.

Each case builds ``FROM scratch`` with one RUN that tries something a build step must not do
(write outside its rootfs, kill a process of the host, read the host's secrets, reach the
network, fork without end) and checks the host afterwards. What a RUN writes into its working
directory (its rootfs) lands in the RUN layer, so a step that managed to read a secret would
carry it there: the cases look for the canary in that layer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.helpers import SEALER, Sealer, sh

FORK_BOMB_DEADLINE = 60  # seconds: a bounded build ends long before; an unbounded one never does


@dataclass
class HostileSealer(Sealer):
    """sealer with extra environment (a HOME, a DOCKER_CONFIG, a secret variable)."""

    extra: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        return {**super().env(), **(self.extra or {})}


@pytest.fixture
def secret_dir() -> Iterator[Path]:
    """A directory outside /tmp (which a RUN sees as its own tmpfs anyway), removed afterwards."""
    path = Path("/var/lib") / f"sealer-test-secrets-{uuid.uuid4().hex[:12]}"
    path.mkdir(mode=0o700)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def build(sealer: Sealer, tmp_path: Path, kubefile: str, *args: str) -> subprocess.CompletedProcess[str]:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Kubefile").write_text(kubefile)
    return sealer.run("build", "--platform", "linux/amd64", "-t", "hostile:1", *args, str(ctx), check=False)


def run_layer_file(sealer: Sealer, name: str) -> bytes | None:
    """``name`` as the image's RUN layer holds it, or None."""
    doc = yaml.safe_load(sealer.run("inspect", "hostile:1", "--platform", "linux/amd64").stdout)
    for layer in doc["spec"]["layers"]:
        if layer["type"] != "RUN":
            continue
        blob = sealer.root / "blobs" / "sha256" / layer["id"].split(":")[1]
        proc = subprocess.run(["tar", "-xOf", str(blob), name], capture_output=True, check=False)
        if proc.returncode == 0:
            return proc.stdout
    return None


# ---- writing outside the rootfs ---------------------------------------------------------


WRITE_TARGETS = {
    "/tmp": "/tmp/{marker}",
    "/etc": "/etc/{marker}",
    "/var/tmp": "/var/tmp/{marker}",
    "the store": "{store}/{marker}",
    "the store through ..": "../../{marker}",  # the rootfs is a directory of the store's tmp/
    "the store's blobs": "{store}/blobs/sha256/{marker}",
    "the context": "{context}/{marker}",
}


@pytest.mark.parametrize("case", list(WRITE_TARGETS))
def test_run_cannot_write_outside_its_rootfs(case: str, sealer: Sealer, tmp_path: Path) -> None:
    marker = f"sealer-hostile-{uuid.uuid4().hex[:12]}"
    target = WRITE_TARGETS[case].format(marker=marker, store=sealer.root, context=tmp_path / "ctx")
    host_path = sealer.root / marker if target.startswith("../") else Path(target)
    try:
        build(sealer, tmp_path, f"FROM scratch\nRUN echo x > {target}; echo done > ran\n")
        assert not host_path.exists(), f"RUN wrote {host_path} on the build host"
        assert run_layer_file(sealer, "ran") == b"done\n"  # the step itself ran, in its rootfs
    finally:
        host_path.unlink(missing_ok=True)


# ---- other processes ---------------------------------------------------------------------


def test_run_cannot_kill_a_process_of_the_host(sealer: Sealer, tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        build(sealer, tmp_path, f"FROM scratch\nRUN kill -9 {sleeper.pid}; ls /proc > procs; true\n")
        time.sleep(0.2)
        assert sleeper.poll() is None, "RUN killed a process of the build host"
        seen = (run_layer_file(sealer, "procs") or b"").split()
        assert str(sleeper.pid).encode() not in seen or sleeper.pid < 10
    finally:
        sleeper.kill()
        sleeper.wait()


# ---- secrets -----------------------------------------------------------------------------


SECRETS = ("/root", "HOME", "DOCKER_CONFIG", "the store's index.json", "the environment")


@pytest.mark.parametrize("case", SECRETS)
def test_run_cannot_read_the_hosts_secrets(case: str, sealer: Sealer, tmp_path: Path, secret_dir: Path) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    home, docker = secret_dir / "home", secret_dir / "docker"
    for d in (home, docker):
        d.mkdir()
    (home / ".netrc").write_text(f"machine example.com password {canary}\n")
    (docker / "config.json").write_text(f'{{"auths": {{"example.com": {{"auth": "{canary}"}}}}}}\n')
    root_canary = Path("/root") / f".sealer-test-{uuid.uuid4().hex[:12]}"
    env = {"HOME": str(home), "DOCKER_CONFIG": str(docker), "SEALER_SSH_PASSWORD": canary}
    hostile = HostileSealer(sealer.root, env)
    read = {
        "/root": f"cat {root_canary}",
        "HOME": f"cat {home}/.netrc",
        "DOCKER_CONFIG": f"cat {docker}/config.json",
        "the store's index.json": f"cat {sealer.root}/index.json",
        "the environment": "env",
    }[case]
    try:
        if case == "/root":
            root_canary.write_text(canary + "\n")
            root_canary.chmod(0o600)
        if case == "the store's index.json":
            canary = "schemaVersion"  # what every index.json holds
        hostile.run("build", "--platform", "linux/amd64", "-t", "seed:1", str(_empty_context(tmp_path)))
        build(hostile, tmp_path, f"FROM scratch\nRUN {read} > leaked 2>&1; echo done > ran\n")
        assert run_layer_file(hostile, "ran") == b"done\n"
        leaked = run_layer_file(hostile, "leaked") or b""
        assert canary.encode() not in leaked, f"RUN read {case}: {leaked[:200]!r}"
    finally:
        root_canary.unlink(missing_ok=True)


def _empty_context(tmp_path: Path) -> Path:
    ctx = tmp_path / "seed"
    ctx.mkdir(exist_ok=True)
    (ctx / "f").write_text("seed\n")
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY f .\n")
    return ctx


# ---- network -----------------------------------------------------------------------------


@contextlib.contextmanager
def pong_server() -> Iterator[int]:
    """A loopback TCP server answering every connection with ``pong``."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"pong")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


CONNECT = (
    "python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', {port}), 3); "
    'print(s.recv(16).decode())" > net 2>/dev/null || echo refused > net'
)


@pytest.mark.parametrize(("flag", "expected"), [("", b"refused\n"), ("--network=host ", b"pong\n")])
def test_run_reaches_the_network_only_when_asked(flag: str, expected: bytes, sealer: Sealer, tmp_path: Path) -> None:
    with pong_server() as port:
        proc = build(sealer, tmp_path, f"FROM scratch\nRUN {flag}{CONNECT.format(port=port)}\n")
    assert proc.returncode == 0, proc.stderr
    assert run_layer_file(sealer, "net") == expected


# ---- fork bombs --------------------------------------------------------------------------


@contextlib.contextmanager
def safety_net(limit: int) -> Iterator[Path]:
    """A pids cgroup of the test's own around the command, so that an unbounded fork bomb (the
    code before confinement) cannot take the machine; skipped where none can be made."""
    base = Path("/sys/fs/cgroup/pids")
    if not (base / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 pids hierarchy to hold a fork bomb safely")
    group = base / f"sealer-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        (group / "pids.max").write_text(str(limit))
        yield group
    finally:
        for _ in range(200):  # a bomb forks while it is killed: kill until nothing is left
            pids = (group / "cgroup.procs").read_text().split()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            time.sleep(0.05)
        for child in sorted(group.glob("*/"), reverse=True):
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        group.rmdir()


def test_a_fork_bomb_fails_the_build_in_bounded_time(sealer: Sealer, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Kubefile").write_text("FROM scratch\nRUN bomb() { bomb | bomb & }; bomb; sleep 600\n")
    with safety_net(1500) as group:
        started = time.monotonic()
        proc = subprocess.Popen(
            ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(group), *SEALER,
             "build", "--platform", "linux/amd64", "-t", "bomb:1", str(ctx)],
            env=sealer.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            _, err = proc.communicate(timeout=FORK_BOMB_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"a fork bomb in RUN was still running after {FORK_BOMB_DEADLINE} s")
        elapsed = time.monotonic() - started
        assert proc.returncode == 1
        assert err.decode().startswith("sealer: error: Kubefile:2: RUN "), err.decode()[:300]
        assert "process" in err.decode()
        # nothing of the bomb is left, and the machine still forks
        assert (group / "cgroup.procs").read_text().split() == []
    assert sh("true") == ""
    assert sealer.images() == []
    print(f"fork bomb refused in {elapsed:.1f} s")
