"""Durability, seen from the kernel: commands run under strace, and the trace must show that
every file renamed into ``blobs/`` (and every ``index.json`` replacing the last) was fsynced
after it was last opened for writing and before its rename, and that its directory was fsynced
after the rename (for a blob: before the next ``index.json`` that could name it). Unpacked layer
trees renamed into ``layers/`` hold only fsynced files and are followed by a directory fsync.

A kill leaves the page cache behind; a power cut does not. Without these fsyncs a blob (or
index.json) could be renamed in, durable as a name, with content the disk never received.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import SEALER, Registry, Sealer
from tests.reliability.conftest import FIGURES, SMALL

TRACED = "trace=%file,fsync,fdatasync,sync_file_range"
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")

_CALL = re.compile(r"^(?P<pid>\d+)\s+(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|\?)(?:<(?P<retpath>[^>]*)>)?")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_DIRFD_STRING = re.compile(r'(?:AT_FDCWD|-?\d+)(?:<([^>]*)>)?,\s*"((?:[^"\\]|\\.)*)"')
_FD = re.compile(r"^-?\d+<([^>]*)>")


@dataclass
class Trace:
    """The calls of a strace -f -y log that matter here, in order."""

    write_opens: dict[str, list[int]] = field(default_factory=dict)  # path -> when opened for writing
    fsyncs: dict[str, list[int]] = field(default_factory=dict)  # path (file or directory) -> when
    renames: list[tuple[int, str, str]] = field(default_factory=list)  # (when, from, to)

    @classmethod
    def parse(cls, text: str) -> Trace:
        trace = cls()
        pending: dict[str, str] = {}
        for n, raw in enumerate(text.splitlines()):
            line = raw.rstrip()
            pid = line.split(" ", 1)[0]
            if line.endswith("<unfinished ...>"):
                pending[pid] = line[: -len("<unfinished ...>")].rstrip()
                continue
            resumed = re.match(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$", line)
            if resumed:
                line = pending.pop(resumed.group(1), "") + resumed.group(2)
            call = _CALL.match(line)
            if not call or call["ret"] in ("?",) or call["ret"].startswith("-"):
                continue  # not a call, or it failed
            name, args = call["name"], call["args"]
            if name in ("open", "openat", "creat") and call["retpath"]:
                flags = args.split(", ")[2 if name == "openat" else 1] if ", " in args else ""
                if name == "creat" or any(f in flags for f in WRITE_FLAGS):
                    trace.write_opens.setdefault(call["retpath"], []).append(n)
            elif name in ("fsync", "fdatasync"):
                fd = _FD.match(args)
                if fd:
                    trace.fsyncs.setdefault(fd.group(1), []).append(n)
            elif name in ("rename", "renameat", "renameat2"):
                if name == "rename":
                    src, dst = _STRING.findall(args)[:2]
                else:
                    (d1, src), (d2, dst) = _DIRFD_STRING.findall(args)[:2]
                    src, dst = os.path.join(d1, src), os.path.join(d2, dst)  # absolute paths stay
                trace.renames.append((n, src, dst))
        return trace

    def synced_between(self, path: str, after: int, before: int) -> bool:
        return any(after < t < before for t in self.fsyncs.get(path, []))


def check(trace: Trace, store: Path) -> dict[str, int]:
    """The durability rules over one trace; returns how many renames of each kind it checked."""
    blobs, layers, index = str(store / "blobs" / "sha256"), str(store / "layers"), str(store / "index.json")
    index_times = [t for t, _, dst in trace.renames if dst == index]
    counts = {"blobs": 0, "index.json": 0, "layer trees": 0}
    problems: list[str] = []
    for when, src, dst in trace.renames:
        parent = os.path.dirname(dst)
        if dst == index or parent == blobs:
            kind = "index.json" if dst == index else "blobs"
            opened = max((t for t in trace.write_opens.get(src, []) if t < when), default=-1)
            if not trace.synced_between(src, opened, when):
                problems.append(f"{src} -> {dst}: no fsync of the file between its last write and its rename")
            later_index = min((t for t in index_times if t > when), default=1 << 62)
            deadline = later_index if kind == "blobs" else 1 << 62
            if not trace.synced_between(parent, when, deadline):
                problems.append(f"{src} -> {dst}: no fsync of {parent} after the rename (and before the next index)")
            counts[kind] += 1
        elif parent == layers and not dst.endswith(".gone"):
            for path, opens in trace.write_opens.items():
                written = path.startswith(src + "/") and opens[-1] < when
                if written and not trace.synced_between(path, opens[-1], when):
                    problems.append(f"{path}: a file of layer tree {dst} not fsynced before the tree's rename")
            if not trace.synced_between(layers, when, 1 << 62):
                problems.append(f"{dst}: no fsync of {layers} after the rename")
            counts["layer trees"] += 1
    assert not problems, f"{len(problems)} problems, the first: " + "\n".join(problems[:3])
    return counts


def traced(sealer: Sealer, log: Path, *args: str, stdin: bytes | None = None) -> Trace:
    if shutil.which("strace") is None:
        pytest.fail("strace is needed (scripts/install-system-deps.sh installs it)")
    cmd = ["strace", "-f", "-y", "-qq", "-s", "4096", "-e", TRACED, "-o", str(log), *SEALER, *args]
    proc = subprocess.run(cmd, env=sealer.env(), input=stdin, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return Trace.parse(log.read_text(errors="replace"))


def test_build_syncs_blobs_index_and_layer_trees(sealer: Sealer, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "etc").mkdir(parents=True)
    for i in range(5):
        (ctx / "etc" / f"f{i}").write_bytes(os.urandom(1000 * (i + 1)))
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY etc .\nRUN cat etc/* > all && rm etc/f0\nCMD true\n")
    trace = traced(sealer, tmp_path / "strace.log", "build", "--platform", "linux/amd64,linux/arm64", "-t", "d:1",
                   str(ctx))  # fmt: skip
    counts = check(trace, sealer.root)
    assert counts["blobs"] >= 6 and counts["index.json"] >= 1 and counts["layer trees"] >= 1, counts
    FIGURES.append(f"durability: build, renames checked {counts}")


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_load_syncs_blobs_and_index(source: str, small_store: Sealer, sealer: Sealer, tmp_path: Path) -> None:
    archive = tmp_path / "small.tar"
    small_store.run("save", "-o", str(archive), SMALL)
    log = tmp_path / "strace.log"
    if source == "file":
        trace = traced(sealer, log, "load", "-i", str(archive))
    else:
        trace = traced(sealer, log, "load", "-i", "-", stdin=archive.read_bytes())
    counts = check(trace, sealer.root)
    assert counts["blobs"] >= 5 and counts["index.json"] >= 1, counts
    FIGURES.append(f"durability: load from {source}, renames checked {counts}")


def test_pull_syncs_blobs_and_index(small_store: Sealer, sealer: Sealer, registry: Registry, tmp_path: Path) -> None:
    remote = f"{registry.address}/durability/small:v1"
    small_store.run("tag", SMALL, remote)
    small_store.run("push", remote)
    trace = traced(sealer, tmp_path / "strace.log", "pull", remote)
    counts = check(trace, sealer.root)
    assert counts["blobs"] >= 5 and counts["index.json"] >= 1, counts
    FIGURES.append(f"durability: pull, renames checked {counts}")
