"""The collection's action plugins turn what rsync and the hosts' scripts say into data: read here
from a real rsync's output and from reports as the roles' scripts print them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from sealer.cluster.results import REPORT_VERSION, host_report

ROOT = Path(__file__).resolve().parents[2]


def plugin(name: str, base: type = object) -> ModuleType:
    """A plugin's module, its parsing functions tested alone: Ansible itself is not imported here,
    since it reads its settings once per process, at its first import (sealer's inventory reading
    sets some for that import: tests/unit/test_inventory_file.py)."""
    spec = importlib.util.spec_from_file_location(f"sealer_plugin_{name}", ROOT / "plugins" / "action" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    stub = ModuleType("ansible.plugins.action")
    stub.ActionBase = base  # type: ignore[attr-defined]
    names = ("ansible", "ansible.plugins", "ansible.plugins.action")
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update({n: ModuleType(n) for n in names[:2]} | {names[2]: stub})
    try:
        spec.loader.exec_module(module)
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
    return module


SYNC = plugin("sync")
HOST_REPORT = plugin("host_report")


def local_rsync(src: Path, dest: Path, dry_run: bool, checksum: bool = False) -> subprocess.CompletedProcess[str]:
    """The plugin's own command line, to a local directory instead of a host."""
    args = {"src": f"{src}/", "dest": f"{dest}/", "target": "x", "rsh": "ssh", "checksum": checksum}
    command = SYNC.rsync_command(args, dry_run)
    command = [c for c in command if not c.startswith("--rsh=")]
    command[-1] = f"{dest}/"
    return subprocess.run(command, capture_output=True, text=True, check=True)


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "manifests").mkdir(parents=True)
    (src / "manifests" / "dashboard.yaml").write_text("kind: Deployment\n" * 100)
    (src / "bin").mkdir()
    (src / "bin" / "helm").write_bytes(b"\x7fELF" + bytes(5000))
    (dest / "etc").mkdir(parents=True)
    (dest / "etc" / "old.conf").write_text("old\n")
    return src, dest


def test_a_dry_run_says_what_rsync_would_send_and_delete(trees: tuple[Path, Path]) -> None:
    src, dest = trees
    proc = local_rsync(src, dest, dry_run=True)
    report = SYNC.parse(proc.stdout, "sealer-event would-initialise sha256:abc\n")
    assert report["v"] == REPORT_VERSION
    assert (report["files"], report["bytes"], report["deleted"]) == (2, 5004 + 1700, 2)
    assert sorted(report["paths"]) == ["bin/helm", "manifests/dashboard.yaml"]
    assert report["would_initialise"] and not report["initialised"]
    assert not (dest / "bin").exists()  # a dry run


def test_a_run_sends_and_a_second_one_finds_nothing(trees: tuple[Path, Path]) -> None:
    src, dest = trees
    first = SYNC.parse(local_rsync(src, dest, dry_run=False).stdout, "sealer-event stopped 4242\n")
    assert first["files"] == 2 and first["items"] > 2 and first["stopped"] == ["4242"]
    again = SYNC.parse(local_rsync(src, dest, dry_run=False).stdout, "")
    assert (again["items"], again["files"], again["bytes"], again["deleted"], again["paths"]) == (0, 0, 0, 0, [])


def test_a_file_changed_in_place_is_found_and_repaired_by_content_alone(trees: tuple[Path, Path]) -> None:
    # sealer verify (a check with checksums) and sealer run --verify: a file of the same size with
    # its time put back is what rsync's quick check (size and time) never sees
    src, dest = trees
    local_rsync(src, dest, dry_run=False)
    helm = dest / "bin" / "helm"
    before = helm.stat()
    helm.write_bytes(b"\x7fELF" + b"\x01" * 5000)  # same size
    os.utime(helm, ns=(before.st_atime_ns, before.st_mtime_ns))
    quick = SYNC.parse(local_rsync(src, dest, dry_run=True).stdout, "")
    assert quick["files"] == 0  # the default re-run's compare: as fast as before, and blind to it
    found = SYNC.parse(local_rsync(src, dest, dry_run=True, checksum=True).stdout, "")
    assert (found["files"], found["paths"]) == (1, ["bin/helm"])
    assert helm.read_bytes() != (src / "bin" / "helm").read_bytes()  # a check changes nothing
    repaired = SYNC.parse(local_rsync(src, dest, dry_run=False, checksum=True).stdout, "")
    assert repaired["paths"] == ["bin/helm"]
    assert helm.read_bytes() == (src / "bin" / "helm").read_bytes()
    assert "--checksum" not in SYNC.rsync_command({"src": "a", "dest": "b", "target": "x", "rsh": "ssh"}, False)


def test_the_report_names_the_first_paths_sent_and_says_when_there_were_more() -> None:
    lines = "".join(f"sealer-item >f+++++++++ f{i}\n" for i in range(SYNC.PATHS_KEPT + 5))
    many = SYNC.parse(lines, "")
    assert many["files"] == SYNC.PATHS_KEPT + 5 and len(many["paths"]) == SYNC.PATHS_KEPT
    assert many["paths_truncated"] is True
    few = SYNC.parse("sealer-item >f+++++++++ a\nsealer-item cd+++++++++ d/\n", "")
    assert few["paths"] == ["a"] and few["paths_truncated"] is False


def test_the_actions_result_carries_the_report_and_not_the_command_line(
    trees: tuple[Path, Path], tmp_path: Path
) -> None:
    class Base:
        def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
            return {}

    module = plugin("sync", Base)
    rsh = tmp_path / "rsh"  # the "host" is this machine: rsync's remote command runs here
    rsh.write_text('#!/bin/sh\nshift\nexec sh -c "$*"\n')
    rsh.chmod(0o755)
    src, dest = trees
    action = module.ActionModule()
    long_script = "x" * 5000  # as the receiving shell's script makes --rsync-path long
    action._task = SimpleNamespace(args={"src": f"{src}/", "dest": f"{dest}/", "target": "host", "rsh": str(rsh),
                                         "kind": "rootfs", "rsync_path": f"{long_script}=; rsync"})  # fmt: skip
    action._play_context = SimpleNamespace(check_mode=False)
    result = action.run(task_vars={})
    assert result["rc"] == 0 and result["changed"], result
    assert result["sealer"]["files"] == 2 and result["sealer"]["paths_truncated"] is False
    assert "cmd" not in result and long_script not in repr(result)
    assert (dest / "bin" / "helm").is_file()


def test_a_failed_rsync_is_named_by_its_own_words() -> None:
    said = "sealer-event created /x\nrsync: connection unexpectedly closed (0 bytes received so far) [sender]\n"
    assert SYNC.reason("", said + "Connection to 10.0.0.1 closed.\n", 12) == (
        "rsync: connection unexpectedly closed (0 bytes received so far) [sender]"
    )
    assert SYNC.reason("", "", 12) == "rsync exited 12"


def test_a_hosts_report_is_its_last_line_of_this_version() -> None:
    out = '\r\nsome output of the init script\n{"v": 1, "changed": true, "complete": true, "failed": ""}\n'
    assert HOST_REPORT.report_of(out) == {"v": 1, "changed": True, "complete": True, "failed": ""}
    assert HOST_REPORT.report_of('{"v": 2, "complete": true}\n') is None
    assert HOST_REPORT.report_of('{"v": 1}\nnot json after it\n') is None
    assert HOST_REPORT.report_of("") is None


def test_sealer_reads_only_typed_reports_of_its_version() -> None:
    report = host_report("h", {"changed": True, "sealer": {"v": 1, "kind": "rootfs", "files": 3}})
    assert report is not None and report.kind == "rootfs" and report.changed and report.number("files") == 3
    assert report.number("missing") == 0 and report.text("files") == "" and not report.flag("files")
    others = ({"sealer": {"v": 2, "kind": "rootfs"}}, {"sealer": {"v": 1}}, {"stdout": "x"}, {"sealer": {"hosts": []}})
    for res in others:
        assert host_report("h", res) is None
