"""Which hosts a run delivers to through a swarm, and spec.distribution in a Clusterfile."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sealer.cluster.clusterfile import parse_clusterfile, to_clusterfile
from sealer.cluster.deploy import AFTER_SWARM_DELIVERY, delivery_of
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


def test_delivery_counts_the_files_rsync_sent_and_the_hosts_that_fell_back(tmp_path: Path) -> None:
    result = PlaybookResult("successful", 0, tmp_path, hosts={"a": HostSummary(), "b": HostSummary()})
    result.role_spans["sealer_rootfs"] = [10.0, 19.5]
    result.task_spans.update({
        "sealer_rootfs: Download this host's payload": [10.0, 13.0],
        "sealer_rootfs: Send this host the rootfs": [13.5, 14.5],
        **{task: [14.5, 19.5] for task in AFTER_SWARM_DELIVERY},  # after the delivery: not counted
    })  # fmt: skip
    said = ["<<SWARM-DONE>> 3 s", "<<SWARM-UNPACKED>>", "<<SWARM-COMPLETE>>", "<<INITIALISED>> 937ffd"]
    result.marks["a"] = [("sealer_rootfs", line) for line in said]
    result.marks["b"] = [
        ("sealer_rootfs", "<<SWARM-FAILED>> aria2c ended before the download was complete"),
        ("sealer_rootfs", "<<CHANGED>>cd+++++++++ bin/"),
        ("sealer_rootfs", "<<CHANGED>><f+++++++++ bin/helm"),
        ("sealer_rootfs", "<<CHANGED>><f+++++++++ bin/registry"),
        ("sealer_registry", "<<CHANGED>><f+++++++++ docker/registry/v2/blobs/x"),
    ]
    delivery = delivery_of(result, True, 2.0)
    assert delivery.to_json() == {"method": "swarm", "seconds": 6.5, "fallback": ["b"], "filesSent": {"a": 0, "b": 2},
                                  "wholeBySwarm": ["a"]}  # fmt: skip
    assert delivery.fallback["b"] == "aria2c ended before the download was complete"


def test_the_delivery_ends_before_the_swarm_runs_init_scripts_and_stops_aria2c() -> None:
    tasks = [t["name"] for t in yaml.safe_load((ROOT / "roles" / "sealer_rootfs" / "tasks" / "swarm.yml").read_text())]
    after = [tasks.index(name.removeprefix("sealer_rootfs: ")) for name in AFTER_SWARM_DELIVERY]
    # they are the swarm's last tasks: everything before them is the delivery
    assert sorted(after) == list(range(len(tasks) - len(after), len(tasks)))


def test_hosts_behind_a_bastion_stay_on_rsync() -> None:
    # they cannot reach the tracker and seeder on the controller's network: a swarm would only
    # stall until its timeout before the rsync through the bastion
    groups = {AMD: ["10.0.0.1", "10.0.0.2"], ARM: ["10.0.0.3"]}
    assert plan("swarm", groups, set(), behind_bastion={"10.0.0.2", "10.0.0.3"}) == {AMD: ["10.0.0.1"]}
    assert plan("auto", {AMD: MANY}, set(), behind_bastion={MANY[0]}) == {}
