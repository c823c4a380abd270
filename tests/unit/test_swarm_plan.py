"""Which hosts a run delivers to through a swarm, and spec.distribution in a Clusterfile."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sealer.cluster.clusterfile import parse_clusterfile, to_clusterfile
from sealer.cluster.deploy import DELIVERY_KINDS, delivery_of
from sealer.cluster.results import HostReport
from sealer.cluster.runner import HostSummary, PlaybookResult
from sealer.cluster.swarm import SWARM_THRESHOLD, Delivery, plan
from sealer.errors import ClusterfileError
from sealer.oci.platform import Platform

AMD, ARM = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")
ROOT = Path(__file__).resolve().parents[2]
MANY = [f"10.0.1.{i}" for i in range(1, SWARM_THRESHOLD + 2)]  # one past the threshold
FEW = [f"10.0.2.{i}" for i in range(1, SWARM_THRESHOLD + 1)]  # at the threshold


def test_swarm_takes_every_new_host_rsync_none() -> None:
    groups = {AMD: ["10.0.0.1"], ARM: ["10.0.0.2", "10.0.0.3"]}
    assert plan("swarm", groups, set()) == groups
    assert plan("rsync", groups, set()) == {}
    # a re-run: every host had its delivery
    assert plan("swarm", groups, {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) == {}
    # a join: only the new host
    assert plan("swarm", groups, {"10.0.0.1", "10.0.0.2"}) == {ARM: ["10.0.0.3"]}


def test_auto_swarms_a_platform_only_past_the_threshold_of_new_hosts() -> None:
    assert plan("auto", {AMD: MANY, ARM: FEW}, set()) == {AMD: MANY}
    # joining one host to a large cluster stays on rsync
    assert plan("auto", {AMD: MANY}, set(MANY[:-1])) == {}


def test_delivery_json_names_the_fallback_hosts() -> None:
    d = Delivery("swarm", 12.3456, {"10.0.0.3": "killed", "10.0.0.2": "timeout"}, {"10.0.0.2": 5})
    assert d.to_json() == {"method": "swarm", "seconds": 12.346, "fallback": ["10.0.0.2", "10.0.0.3"],
                           "filesSent": {"10.0.0.2": 5}, "wholeBySwarm": []}  # fmt: skip


CLUSTERFILE = """\
apiVersion: sealer.cloud/v2
kind: Cluster
metadata: {name: c}
spec:
  image: kubernetes:v1
  hosts: [{ips: [10.0.0.1], roles: [master]}]
"""


def test_clusterfile_distribution(tmp_path: Path) -> None:
    path = tmp_path / "Clusterfile"
    path.write_text(CLUSTERFILE)
    assert parse_clusterfile(path).distribution == "auto"
    path.write_text(CLUSTERFILE + "  distribution: swarm\n")
    cluster = parse_clusterfile(path)
    assert cluster.distribution == "swarm"
    path.write_text(to_clusterfile(cluster))
    assert parse_clusterfile(path).distribution == "swarm"
    path.write_text(CLUSTERFILE + "  distribution: p2p\n")
    with pytest.raises(
        ClusterfileError, match=r"Clusterfile:7: spec.distribution is one of rsync, swarm, auto, not 'p2p'"
    ):
        parse_clusterfile(path)


def report(host: str, kind: str, at: float, **data: object) -> HostReport:
    return HostReport(host, kind, {"v": 1, "kind": kind, **data}, at=at)


def test_delivery_counts_the_files_rsync_sent_and_the_hosts_that_fell_back(tmp_path: Path) -> None:
    result = PlaybookResult(
        "successful", 0, tmp_path, hosts={"a": HostSummary(), "b": HostSummary(), "c": HostSummary()}
    )
    result.role_starts["sealer_rootfs"] = 10.0
    for one in (
        report("a", "swarm-tool", 10.5, rc=0, error=""),
        report("a", "swarm", 13.0, complete=True, unpacked=True, failed="", seconds=3),
        report("a", "initialise", 19.5, initialised=True),  # after the delivery: not counted
        report("b", "swarm-tool", 10.5, rc=0, error=""),
        report(
            "b", "swarm", 12.0, complete=False, unpacked=False, failed="aria2c ended before the download was complete"
        ),
        report("b", "rootfs", 14.5, files=2, items=3, paths=["bin/helm", "bin/registry"]),
        report("b", "registry", 15.0, files=7),  # the registry's tree: not the rootfs's delivery
        report("c", "swarm-tool", 10.5, rc=23, error="rsync: connection unexpectedly closed"),
        report("c", "rootfs", 14.0, files=5),
    ):
        result.reports.add(one)
    delivery = delivery_of(result, True, 2.0)
    assert delivery.to_json() == {"method": "swarm", "seconds": 6.5, "fallback": ["b", "c"],
                                  "filesSent": {"a": 0, "b": 2, "c": 5}, "wholeBySwarm": ["a"]}  # fmt: skip
    assert delivery.fallback["b"] == "aria2c ended before the download was complete"
    assert delivery.fallback["c"] == "aria2c could not be sent: rsync: connection unexpectedly closed"


def test_the_delivery_kinds_are_what_the_rootfs_role_reports_before_its_init_scripts() -> None:
    tasks = yaml.safe_load((ROOT / "roles" / "sealer_rootfs" / "tasks" / "swarm.yml").read_text())
    tasks += yaml.safe_load((ROOT / "roles" / "sealer_rootfs" / "tasks" / "main.yml").read_text())
    kinds = [next(v["kind"] for k, v in t.items() if k.startswith("sealer.cluster.")) for t in tasks
             if any(k.startswith("sealer.cluster.") for k in t)]  # fmt: skip
    assert set(DELIVERY_KINDS) <= set(kinds)
    assert "initialise" in kinds and "initialise" not in DELIVERY_KINDS
