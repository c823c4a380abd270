"""SIGTERM and SIGINT to a sealer command: it ends its children (a RUN's whole process tree
included), removes its temporary files, and leaves the store as a SIGKILL would (the old
state or the new one, never a half), exiting 128 + the signal's number with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import SEALER, Sealer
from tests.reliability.conftest import FIGURES, SMALL, store_state

DEADLINE = 30.0  # seconds: a command that cleans up and exits does so long before
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def wait_for(condition, what: str, timeout: float = DEADLINE) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def interrupt(proc: subprocess.Popen[bytes], signum: int) -> tuple[int, str, float]:
    """Send ``signum`` to sealer alone (as kill(1) does) and wait for it to exit."""
    started = time.monotonic()
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"sealer still running {DEADLINE} s after {signal.Signals(signum).name}")
    return proc.returncode, err.decode(), time.monotonic() - started


def assert_consistent(sealer: Sealer, before: tuple[object, ...]) -> None:
    images, _blobs, tmp = store_state(sealer)
    assert tmp == set(), f"temporary files left in the store: {sorted(tmp)}"
    assert images == before[0]
    fsck = sealer.run("fsck", check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


@pytest.mark.parametrize("name", list(SIGNALS))
def test_a_signal_ends_a_build_and_its_run(name: str, sealer: Sealer, tmp_path: Path) -> None:
    signum = SIGNALS[name]
    marker = f"sealer-signal-{uuid.uuid4().hex[:12]}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("x\n")
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY f .\n")
    sealer.run("build", "--platform", "linux/amd64", "-t", "sig:1", str(ctx))  # the old state: an image
    before = store_state(sealer)
    # a sleeper in the RUN's shell, and one that left the RUN's session and process group
    sleeper = f"python3 -c 'import time; time.sleep(600)' {marker}"
    (ctx / "Kubefile").write_text(f"FROM scratch\nCOPY f .\nRUN setsid {sleeper} & {sleeper}; true\n")
    proc = subprocess.Popen([*SEALER, "build", "--platform", "linux/amd64", "-t", "sig:1", str(ctx)],
                            env=sealer.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_for(lambda: len([p for p in processes_with(marker) if _is_python(p)]) >= 2, "the RUN to start")
        code, err, elapsed = interrupt(proc, signum)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = processes_with(marker)
    for pid in left:  # never leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert left == [], "processes of the RUN outlived sealer"
    assert code == 128 + signum, err
    assert err.count("\n") == 1 and err.startswith("sealer: "), err
    assert_consistent(sealer, before)
    FIGURES.append(f"signals: build with a running RUN, {name}: exited in {elapsed:.2f} s")


def _is_python(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe").split("/")[-1].startswith("python")
    except OSError:
        return False


@pytest.mark.parametrize("name", list(SIGNALS))
def test_a_signal_ends_a_load_from_stdin(name: str, small_store: Sealer, sealer: Sealer, tmp_path: Path) -> None:
    signum = SIGNALS[name]
    archive = tmp_path / "small.tar"
    small_store.run("save", "-o", str(archive), SMALL)
    data = archive.read_bytes()
    before = store_state(sealer)
    proc = subprocess.Popen([*SEALER, "load", "-i", "-"], env=sealer.env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None
    try:
        proc.stdin.write(data[: len(data) // 2])  # half the archive, then nothing: load waits
        proc.stdin.flush()
        tmp = sealer.root / "tmp"
        wait_for(lambda: tmp.exists() and any(p.suffix == ".load" for p in tmp.iterdir()), "the load to stage")
        time.sleep(0.3)
        code, err, elapsed = interrupt(proc, signum)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 128 + signum, err
    assert err.count("\n") == 1 and err.startswith("sealer: "), err
    assert_consistent(sealer, before)
    FIGURES.append(f"signals: load from stdin, {name}: exited in {elapsed:.2f} s")
