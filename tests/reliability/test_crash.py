"""Crash consistency: build, load, pull, rmi, tag and merge are each killed with SIGKILL at 50
points of their run: at checkpoints the store offers (sealer/faults.py: every blob chunk written,
every rename, every garbage removal) spread over the whole run, and the rest at times spread
over it. After every kill: ``fsck`` is clean, ``images`` shows the old state or the new one and
nothing in between, and running the command again succeeds and gives the new state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, Registry, Sealer
from tests.reliability.conftest import FIGURES

TRIALS = 50


class ForkRunner:
    """sealer commands forked from one process that imported sealer once (forkrun.py)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.forkrun"], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip

    def run(
        self, root: Path, args: list[str], kill_at: int | None = None, kill_after: float | None = None
    ) -> tuple[int, int, str, str]:
        """(exit code or -9, checkpoints reached, stdout, stderr)"""
        env = {"SEALER_ROOT": str(root), "DOCKER_CONFIG": str(root.parent / "docker"), "SEALER_CHECKPOINTS": "1",
               "SOURCE_DATE_EPOCH": "1700000000"}  # fmt: skip
        if kill_at is not None:
            env["SEALER_KILL_AT"] = str(kill_at)
        out, err = self.work / "out", self.work / "err"
        request = {"args": args, "env": env, "kill_after": kill_after, "out": str(out), "err": str(err)}
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return answer["code"], answer["checkpoints"], out.read_text(), err.read_text()

    def images(self, root: Path) -> frozenset[tuple[str, str, str]]:
        code, _, out, err = self.run(root, ["images", "--output", "json"])
        assert code == 0, err
        return frozenset((r["name"], r["platform"]["architecture"], r["id"]) for r in json.loads(out))

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkRunner]:
    r = ForkRunner(tmp_path_factory.mktemp("forkrun"))
    yield r
    r.close()


def write_context(path: Path, files: dict[str, int], kubefile: str) -> Path:
    for rel, mib in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(os.urandom(mib << 20))
    (path / "Kubefile").write_text(kubefile)
    return path


BOTH = "linux/amd64,linux/arm64"


@dataclass
class Scenario:
    before: Path  # a store to copy for each trial
    args: list[str]


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> dict[str, Scenario]:
    work = tmp_path_factory.mktemp("crash")
    app = write_context(work / "app", {"common/a.bin": 2, "common/b.bin": 1, "amd64/c.bin": 2, "arm64/c.bin": 2},
                        "FROM scratch\nCOPY common/. .\nCOPY ${ARCH}/. .\nCMD echo app\n")  # fmt: skip
    empty = Sealer(work / "empty" / "store")
    empty.run("images")
    full = Sealer(work / "full" / "store")
    full.run("build", "--platform", BOTH, "-t", "crash/app:v1", str(app))
    archive = work / "app.tar"
    full.run("save", "-o", str(archive), "crash/app:v1")
    remote = f"{registry.address}/crash/app:v1"
    full.run("tag", "crash/app:v1", remote)
    full.run("push", remote)
    # a base and two apps on it, for rmi, tag and merge
    rich = Sealer(work / "rich" / "store")
    base = write_context(work / "base", {"bin/kube": 1, "amd64/bin/reg": 1, "arm64/bin/reg": 1},
                         "FROM scratch\nCOPY bin .\nCOPY ${ARCH}/. .\n")  # fmt: skip
    rich.run("build", "--platform", BOTH, "-t", "base:v1", str(base))
    for name in ("app1", "app2"):
        ctx = write_context(work / name, {f"charts/{name}.bin": 2}, f"FROM base:v1\nCOPY charts .\nCMD echo {name}\n")
        rich.run("build", "--platform", BOTH, "-t", f"{name}:v1", str(ctx))
    return {
        "build": Scenario(empty.root, ["build", "--platform", BOTH, "-t", "crash/app:v1", str(app)]),
        "load": Scenario(empty.root, ["load", "-i", str(archive)]),
        "pull": Scenario(empty.root, ["pull", remote]),
        "rmi": Scenario(rich.root, ["rmi", "app1:v1"]),
        "tag": Scenario(rich.root, ["tag", "app1:v1", "app1:v2"]),
        "merge": Scenario(rich.root, ["merge", "app1:v1", "app2:v1", "-t", "merged:v1", "--platform", BOTH]),
    }


def fresh_copy(template: Path, trial: Path) -> Path:
    if trial.exists():
        shutil.rmtree(trial)
    shutil.copytree(template, trial / "store", symlinks=True)
    return trial / "store"


@pytest.mark.parametrize("command", ["build", "load", "pull", "rmi", "tag", "merge"])
def test_killed_at_any_point_leaves_old_or_new_state(
    command: str, scenarios: dict[str, Scenario], runner: ForkRunner, tmp_path: Path
) -> None:
    sc = scenarios[command]
    # one whole run: the new state, how many checkpoints it has, how long it takes
    root = fresh_copy(sc.before, tmp_path / "whole")
    old = runner.images(root)
    start = time.perf_counter()
    code, total, _, err = runner.run(root, sc.args)
    duration = time.perf_counter() - start
    assert code == 0, err
    new = runner.images(root)
    assert new != old
    assert total > 0

    by_checkpoint = min(total, TRIALS * 4 // 5)
    points: list[tuple[int | None, float | None]] = [
        (1 + (i * (total - 1)) // max(by_checkpoint - 1, 1), None) for i in range(by_checkpoint)
    ]
    timed = TRIALS - by_checkpoint
    points += [(None, duration * (i + 0.5) / timed) for i in range(timed)]
    landed = seen_old = seen_new = 0
    for kill_at, kill_after in points:
        root = fresh_copy(sc.before, tmp_path / "trial")
        code, _, _, err = runner.run(root, sc.args, kill_at=kill_at, kill_after=kill_after)
        assert code in (0, -9), f"{command} at {kill_at or kill_after}: exit {code}: {err}"
        landed += code == -9
        state = runner.images(root)
        assert state in (old, new), f"{command} killed at {kill_at or kill_after}: a state between old and new"
        seen_old += state == old
        seen_new += state == new
        fsck_code, _, fsck_out, fsck_err = runner.run(root, ["fsck"])
        assert fsck_code == 0, f"{command} killed at {kill_at or kill_after}: fsck: {fsck_out} {fsck_err}"
        again, _, _, err = runner.run(root, sc.args)
        if command == "rmi" and state == new:
            assert again != 0 and "app1:v1" in err  # already gone: says so
        else:
            assert again == 0, f"{command} after a kill at {kill_at or kill_after}: {err}"
        assert runner.images(root) == new
        assert runner.run(root, ["fsck"])[0] == 0
    FIGURES.append(
        f"crash {command:6}: {len(points)} kill points ({by_checkpoint} of {total} checkpoints, {timed} by time"
        f" over {duration * 1000:.0f} ms); {landed} kills landed; after: {seen_old} old, {seen_new} new, 0 partial"
    )
    assert landed >= by_checkpoint
