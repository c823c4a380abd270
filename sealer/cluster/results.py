"""What a host did, as data: the one place sealer reads a task's result.

The collection's action plugins return what they found under the result's ``sealer`` key: the
controller's rsync to a host (``sealer.cluster.sync``: files, bytes, deleted, paths, the
receiving shell's events) and the shell scripts run on hosts (``sealer.cluster.host_report``:
one JSON line each, versioned). ansible-runner hands each task's result to sealer as an event's
``event_data.res``; :func:`host_report` takes a report out of it, and every reader in sealer
(the delivery's figures, the check report) works on those reports, never on a task's output
text or its title.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# the version of the reports the collection's plugins and scripts write; a report of another
# version is not read (a collection and a sealer of different releases)
REPORT_VERSION = 1


@dataclass(frozen=True)
class HostReport:
    """One task's report from one host: its kind (``rootfs``, ``registry``, ``registry-state``,
    ``swarm``, ...), what it said, whether the task changed the host, and when it arrived."""

    host: str
    kind: str
    data: Mapping[str, Any]
    changed: bool = False
    at: float = 0.0  # time.monotonic() when sealer read it

    def number(self, key: str) -> int:
        value = self.data.get(key, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def flag(self, key: str) -> bool:
        return self.data.get(key) is True

    def text(self, key: str) -> str:
        value = self.data.get(key)
        return value if isinstance(value, str) else ""

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []


def host_report(host: str, res: Mapping[str, Any], at: float = 0.0) -> HostReport | None:
    """The report in one task's result (``event_data.res``), or None when it has none."""
    data = res.get("sealer") if isinstance(res, Mapping) else None
    if not isinstance(data, Mapping) or data.get("v") != REPORT_VERSION:
        return None
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        return None
    return HostReport(host, kind, dict(data), bool(res.get("changed")), at)


@dataclass
class Reports:
    """Every host's reports of one playbook run, the latest of each kind per host."""

    by_host: dict[str, dict[str, HostReport]] = field(default_factory=dict)

    def add(self, report: HostReport) -> None:
        self.by_host.setdefault(report.host, {})[report.kind] = report

    def get(self, host: str, kind: str) -> HostReport | None:
        return self.by_host.get(host, {}).get(kind)

    def of_kind(self, *kinds: str) -> list[HostReport]:
        return [r for reports in self.by_host.values() for k, r in reports.items() if k in kinds]
