"""The check report is built in Python from what hosts report as data. The events here are
recorded from real `sealer run --check` runs on the sandbox (an amd64 master, an arm64 node),
trimmed to what sealer reads (tests/data/events): a new cluster, then the same after a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sealer.cluster.check_report import HostCheck, Topology, host_check
from sealer.cluster.runner import PlaybookResult, read_event
from sealer.progress import SilentReporter

EVENTS = Path(__file__).resolve().parents[1] / "data" / "events"
MASTER, NODE = "10.213.1.11", "10.213.1.12"
TOPOLOGY = Topology(MASTER, MASTER, frozenset((MASTER, NODE)))


def replay(name: str, tmp_path: Path) -> PlaybookResult:
    result = PlaybookResult("successful", 0, tmp_path)
    events: list[dict[str, Any]] = json.loads((EVENTS / f"{name}.json").read_text())
    for event in events:
        read_event(result, event, SilentReporter(), check=True)
    return result


def checks(result: PlaybookResult) -> dict[str, HostCheck]:
    return {
        host: host_check(host, "", result.reports, TOPOLOGY, result.changed_roles.get(host, set()))
        for host in (MASTER, NODE)
    }


def test_a_new_cluster_would_get_everything(tmp_path: Path) -> None:
    result = replay("check-new-cluster", tmp_path)
    rows = checks(result)
    master, node = rows[MASTER], rows[NODE]
    # each host its own platform's rootfs: the same files, other bytes
    assert (master.rootfs_files, node.rootfs_files) == (22, 22)
    assert master.rootfs_bytes == 117638932 and node.rootfs_bytes == 93697444
    assert "bin/kubeadm" in master.rootfs_paths and master.rootfs_deleted == 0
    assert master.script == node.script == "pending"
    assert (master.registry_files, master.registry_action) == (32, "start")
    assert (node.registry_files, node.registry_action) == (0, "none")
    assert (master.init, master.join, master.cmds) == ("pending", "none", "pending")
    assert (node.init, node.join, node.cmds) == ("none", "pending", "none")
    assert not master.idle() and not node.idle()
    assert result.changed_tasks[MASTER] and "sealer_registry" in result.changed_roles[MASTER]


def test_after_a_run_there_is_nothing_to_do(tmp_path: Path) -> None:
    result = replay("check-unchanged", tmp_path)
    rows = checks(result)
    assert all(row.idle() for row in rows.values()), rows
    assert rows[MASTER].registry_action == "none" and rows[MASTER].cmds == "done"
    assert not result.changed_tasks


def test_a_registry_whose_files_change_restarts_and_one_that_is_down_starts(tmp_path: Path) -> None:
    result = replay("check-unchanged", tmp_path)
    state = result.reports.get(MASTER, "registry-state")
    assert state is not None
    assert host_check(MASTER, "", result.reports, TOPOLOGY, {"sealer_registry"}).registry_action == "restart"
    result.reports.add(type(state)(MASTER, state.kind, {**state.data, "running": False}))
    assert host_check(MASTER, "", result.reports, TOPOLOGY, set()).registry_action == "start"


def test_a_host_that_reported_nothing_is_not_called_done(tmp_path: Path) -> None:
    empty = PlaybookResult("successful", 0, tmp_path)
    row = host_check(MASTER, "linux/amd64", empty.reports, TOPOLOGY, set())
    assert (row.script, row.registry_action, row.init, row.cmds) == ("unknown", "unknown", "unknown", "unknown")
    assert not row.idle()
