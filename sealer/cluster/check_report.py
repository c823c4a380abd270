"""What ``run --check`` says per host, built from the reports hosts returned (results.py).

In check mode the roles only read: the rootfs and registry rsyncs run with ``--dry-run`` and
say what they would send and delete, the registry's host says whether it runs, the Kubernetes
and app roles say whether init, join and the image's commands are done. This module turns those
reports into one row per host; nothing here knows a task by its title.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sealer.cluster.results import HostReport, Reports

REGISTRY_ROLE = "sealer_registry"


@dataclass(frozen=True)
class Topology:
    """Which host plays which part: what the inventory's groups say."""

    master0: str
    registry_host: str
    kube_hosts: frozenset[str]
    # each host's files of the cluster's own (Configs, rendered templates: customize.py)
    customized: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass
class HostCheck:
    platform: str
    rootfs_files: int = 0
    rootfs_bytes: int = 0
    rootfs_deleted: int = 0
    rootfs_paths: list[str] = field(default_factory=list)  # the first the sync plugin names
    rootfs_paths_truncated: bool = False  # the transfer sends more files than it names
    configs: list[str] = field(default_factory=list)  # the paths sent that the Configs and env make
    script: str = "unknown"  # pending: the init script would run; done
    registry_files: int = 0
    registry_bytes: int = 0
    registry_action: str = "none"  # none, start, restart
    init: str = "none"  # pending, done, none (not master0)
    join: str = "none"
    cmds: str = "none"

    def idle(self) -> bool:
        return (
            self.rootfs_files == 0
            and self.rootfs_deleted == 0
            and self.script == "done"
            and self.registry_files == 0
            and self.registry_action == "none"
            and all(state in ("done", "none") for state in (self.init, self.join, self.cmds))
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "rootfs": {"files": self.rootfs_files, "bytes": self.rootfs_bytes, "deleted": self.rootfs_deleted,
                       "paths": list(self.rootfs_paths), "pathsTruncated": self.rootfs_paths_truncated,
                       "script": self.script},
            "configs": list(self.configs),
            "registry": {"files": self.registry_files, "bytes": self.registry_bytes, "action": self.registry_action},
            "init": self.init,
            "join": self.join,
            "cmds": self.cmds,
        }  # fmt: skip


def _pending(report: HostReport | None, key: str) -> str:
    if report is None:
        return "unknown"
    return "done" if report.flag(key) else "pending"


def registry_action(state: HostReport | None, changed_roles: set[str]) -> str:
    """What the registry host's registry would do: restart (or start) when its data, settings,
    credentials or unit change, start when it is not up, else nothing."""
    if state is None:
        return "unknown"
    up = state.flag("running") and (state.flag("enabled") or not state.flag("systemd"))
    if REGISTRY_ROLE in changed_roles:
        return "restart" if state.flag("running") else "start"
    return "none" if up else "start"


def host_check(host: str, platform: str, reports: Reports, topology: Topology, changed_roles: set[str]) -> HostCheck:
    row = HostCheck(platform)
    rootfs = reports.get(host, "rootfs")
    if rootfs is not None:
        row.rootfs_files = rootfs.number("files")
        row.rootfs_bytes = rootfs.number("bytes")
        row.rootfs_deleted = rootfs.number("deleted")
        row.rootfs_paths = rootfs.strings("paths")
        row.rootfs_paths_truncated = rootfs.flag("paths_truncated")
        row.script = "pending" if rootfs.flag("would_initialise") else "done"
        own = topology.customized.get(host, frozenset())
        row.configs = [p for p in rootfs.strings("paths") if p in own]
    if host == topology.registry_host or reports.get(host, "registry-state") is not None:  # each replica
        sync = reports.get(host, "registry")
        if sync is not None:
            row.registry_files, row.registry_bytes = sync.number("files"), sync.number("bytes")
        row.registry_action = registry_action(reports.get(host, "registry-state"), changed_roles)
    kubernetes = _pending(reports.get(host, "kubernetes-state"), "joined")
    if host == topology.master0:
        row.init = kubernetes
        row.cmds = _pending(reports.get(host, "app-state"), "done")
    elif host in topology.kube_hosts:
        row.join = kubernetes
    return row
