"""sealer upgrade on the sandbox, mixed architectures: a cluster of the example app on the base at
v1.19.8 (2 masters amd64 and arm64, 2 nodes arm64 and amd64) moved to an app on the base at
v1.20.15, through a failing PreUpgrade plugin, a failure injected on the second master and the
re-run that resumes; and what is refused before any host is reached. The cluster's Clusterfile
has a PreUpgrade SHELL plugin, the new app image a PostUpgrade one: both write a line into the
stand-ins' call log on every host, whose order says when they ran."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Sandbox, SandboxHost, cluster_dir, skopeo_raw, standin_log
from tests.helpers import EXAMPLES, Sealer, copy_tree

CLUSTER = "upg"
OLD, NEW = "kubernetes-multi-arch:v1.19.8", "upgrade-app:v1.20.15"
SKIP = "upgrade-app:v1.22.3"
DASHBOARD = "kubernetesui/dashboard:v2.5.1"  # in the old app's images only
FAIL = "/etc/kubernetes/standin-fail-upgrade"
CERTS = "/etc/containerd/certs.d"
PRE_FAIL = "/etc/kubernetes/standin-fail-preupgrade"
PRE, POST = "plugin pre-upgrade", "plugin post-upgrade"
# the image's own plugin (plugins/upgrade.yaml of the new app): runs in the rootfs directory
POST_UPGRADE = """apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: post-upgrade
spec:
  type: SHELL
  action: PostUpgrade
  data: |
    echo "$(date +%s) plugin post-upgrade $HostIP $(cat etc/kube-version)" >> ../standin-calls.log
"""


def clusterfile(masters: list[SandboxHost], workers: list[SandboxHost]) -> str:
    """The cluster, with a PreUpgrade plugin that fails on a host holding PRE_FAIL."""
    return f"""apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: {CLUSTER}
spec:
  image: {OLD}
  ssh:
    pk: {masters[0].key}
  hosts:
    - ips: [{", ".join(h.address for h in masters)}]
      roles: [master]
    - ips: [{", ".join(h.address for h in workers)}]
      roles: [node]
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: pre-upgrade
spec:
  type: SHELL
  action: PreUpgrade
  data: |
    if [ -e {PRE_FAIL} ]; then echo "not ready for an upgrade" >&2; exit 3; fi
    echo "$(date +%s) plugin pre-upgrade $HostIP $(cat etc/kube-version)" >> ../standin-calls.log
"""


def app(tmp: Path, base: str, dashboard: bool, plugin: str = "") -> Path:
    """The example app on another base; without the dashboard, whose image the new app lacks;
    with ``plugin`` as its own plugins/upgrade.yaml."""
    context = tmp / f"app-{base.replace(':', '-')}"
    copy_tree(EXAMPLES / "multi-arch", context)
    lines = (context / "Kubefile").read_text().splitlines()
    lines = [f"FROM {base}" if line.startswith("FROM ") else line for line in lines]
    if not dashboard:
        lines = [line for line in lines if "dashborad" not in line]
    if plugin:
        (context / "upgrade.yaml").write_text(plugin)
        lines.append("COPY upgrade.yaml plugins")
    (context / "Kubefile").write_text("\n".join(lines) + "\n")
    return context


@pytest.fixture(scope="module")
def upgrade_store(tmp_path_factory: pytest.TempPathFactory, prepared_examples: Path) -> Sealer:
    """The example app at v1.19.8, an app without the dashboard at v1.20.15 and one at v1.22.3."""
    tmp = tmp_path_factory.mktemp("upgrade")
    store = Sealer(tmp / "store")
    platforms = "linux/amd64,linux/arm64"
    started = time.monotonic()
    base = str(prepared_examples / "kubernetes-base")
    for version in ("v1.19.8", "v1.20.15", "v1.22.3"):
        store.run("build", "--platform", platforms, "--build-arg", f"KUBE_VERSION={version}",
                  "-t", f"kubernetes:{version}", base)  # fmt: skip
    store.run("build", "--platform", platforms, "-t", OLD, str(prepared_examples / "multi-arch"))
    new_app = app(tmp, "kubernetes:v1.20.15", dashboard=False, plugin=POST_UPGRADE)
    store.run("build", "--platform", platforms, "-t", NEW, str(new_app))
    store.run("build", "--platform", platforms, "-t", SKIP, str(app(tmp, "kubernetes:v1.22.3", dashboard=False)))
    print(f"building 3 bases and 3 apps: {time.monotonic() - started:.0f} s")
    return store


def nodes(host: SandboxHost) -> dict[str, dict[str, Any]]:
    doc = json.loads(host.ssh("kubectl --kubeconfig /etc/kubernetes/kubelet.conf get nodes -o json").stdout)
    return {n["metadata"]["name"]: n for n in doc["items"]}


def versions(host: SandboxHost) -> dict[str, str]:
    return {name: n["status"]["nodeInfo"]["kubeletVersion"] for name, n in nodes(host).items()}


def runs(store: Sealer) -> list[str]:
    return sorted(p.name for p in (cluster_dir(store, CLUSTER) / "runs").iterdir())


def kube_calls(host: SandboxHost, pattern: str) -> list[tuple[int, str]]:
    return [(t, c) for t, c in standin_log(host, CLUSTER) if re.search(pattern, c)]


def pull(host: SandboxHost, ref: str) -> subprocess.CompletedProcess[str]:
    return host.ssh(f"ctr -n k8s.io images pull --hosts-dir {CERTS} {shlex.quote(ref)} >/dev/null", check=False)


def marks(host: SandboxHost, what: str) -> list[int]:
    """Where in the host's call log ``what`` (a plugin's line, a call's pattern) appears."""
    return [i for i, (_t, c) in enumerate(standin_log(host, CLUSTER)) if re.search(what, c)]


def test_upgrade_rolls_masters_then_nodes_stops_at_a_failure_and_resumes(
    upgrade_store: Sealer, sandbox: Sandbox, tmp_path: Path
) -> None:
    store = upgrade_store
    h = sandbox.hosts
    masters, workers = [h[0], h[1]], [h[3], h[2]]  # amd64, arm64; arm64, amd64
    everyone = masters + workers
    (tmp_path / "Clusterfile").write_text(clusterfile(masters, workers))
    store.run("run", "-f", str(tmp_path / "Clusterfile"), "--output", "json")
    try:
        _upgrade(store, masters, workers, everyone)
    finally:
        for host in everyone:
            host.ssh(f"rm -f {FAIL} {PRE_FAIL}")
        store.run("delete", "--all", "--cluster", CLUSTER, check=False)


def _upgrade(
    store: Sealer, masters: list[SandboxHost], workers: list[SandboxHost], everyone: list[SandboxHost]
) -> None:
    master0 = masters[0]
    logs = {host.address: standin_log(host, CLUSTER) for host in everyone}
    before_runs = runs(store)

    # refused before any host is reached: a skipped minor version names the one to go through
    started = time.monotonic()
    skip = store.run("upgrade", SKIP, "--cluster", CLUSTER, "--yes", check=False)
    assert skip.returncode != 0 and "v1.20" in skip.stderr and "skew" in skip.stderr, skip.stderr
    assert "Traceback" not in skip.stderr
    # no terminal to ask on: --yes is required
    asked = store.run("upgrade", NEW, "--cluster", CLUSTER, check=False)
    assert asked.returncode != 0 and "--yes" in asked.stderr, asked.stderr

    # --check: the plan, per host in order, and nothing changes
    plan = json.loads(store.run("upgrade", NEW, "--cluster", CLUSTER, "--check", "--output", "json").stdout)
    print(f"two refusals and a check: {time.monotonic() - started:.1f} s")
    assert [(x["address"], x["role"]) for x in plan["hosts"]] == [
        (masters[0].address, "master0"), (masters[1].address, "master"),
        (workers[0].address, "node"), (workers[1].address, "node"),
    ]  # fmt: skip
    assert plan["from"]["kubernetes"] == "v1.19.8" and plan["to"]["kubernetes"] == "v1.20.15" and plan["kubeadm"]
    assert "kubeadm upgrade apply v1.20.15 -y" in plan["hosts"][0]["steps"]
    assert "kubeadm upgrade node" in plan["hosts"][1]["steps"]
    assert any("--delete-local-data" in s for s in plan["hosts"][2]["steps"])
    assert [x["batch"] for x in plan["hosts"]] == [0, 1, 2, 3]
    # the plugins of each phase: the saved Clusterfile's, and the new image's own
    everyone_at = [x.address for x in everyone]
    assert [(p["name"], p["type"], p["hosts"]) for p in plan["plugins"]["PreUpgrade"]] == [
        ("pre-upgrade", "SHELL", everyone_at)
    ]
    assert [(p["name"], p["where"]) for p in plan["plugins"]["PostUpgrade"]] == [
        ("post-upgrade", "plugins/upgrade.yaml:1")
    ]
    assert "data" not in plan["plugins"]["PreUpgrade"][0]
    text = store.run("upgrade", NEW, "--cluster", CLUSTER, "--check").stdout
    assert "plugin pre-upgrade (SHELL, " in text and "runs in PreUpgrade on " + ", ".join(everyone_at) in text, text
    assert text.index("runs in PreUpgrade") < text.index("1. ") < text.index("runs in PostUpgrade"), text
    assert runs(store) == before_runs
    assert {host.address: standin_log(host, CLUSTER) for host in everyone} == logs

    # a failing PreUpgrade plugin stops the upgrade before any host is drained or upgraded
    masters[1].ssh(f"touch {PRE_FAIL}")
    refused = store.run("upgrade", NEW, "--cluster", CLUSTER, "--yes", check=False)
    masters[1].ssh(f"rm -f {PRE_FAIL}")
    assert refused.returncode != 0
    assert "plugin pre-upgrade" in refused.stderr and masters[1].address in refused.stderr, refused.stderr
    assert "PreUpgrade" in refused.stderr and "not ready for an upgrade" in refused.stderr, refused.stderr
    assert set(versions(master0).values()) == {"v1.19.8"}
    for host in everyone:
        assert not marks(host, r"^kubeadm\S* upgrade|^kubectl\S* drain "), host.address
    assert store.json("ps", "--cluster", CLUSTER, "--output", "json")[0]["image"] == OLD

    # a failure injected on the second master: master0 upgraded, the roll stops there
    masters[1].ssh(f"touch {FAIL}")
    started = time.monotonic()
    failed = store.run("upgrade", NEW, "--cluster", CLUSTER, "--yes", check=False)
    print(f"upgrade stopped at the second master: {time.monotonic() - started:.0f} s")
    assert failed.returncode != 0
    assert masters[1].address in failed.stderr and FAIL in failed.stderr, failed.stderr
    assert all(w.address in failed.stderr for w in workers), failed.stderr  # named as not reached
    seen = versions(workers[0])
    assert seen[master0.name] == "v1.20.15"
    assert seen[masters[1].name] == seen[workers[0].name] == seen[workers[1].name] == "v1.19.8", seen
    for worker in workers:
        assert not kube_calls(worker, r"^kubeadm\S* upgrade"), worker.address
    # PreUpgrade ran on every host before master0 drained anyone, in the old rootfs; no PostUpgrade
    first_drain = marks(master0, r"^kubectl\S* drain ")[0]
    assert [i for i in marks(master0, PRE) if i < first_drain], standin_log(master0, CLUSTER)
    for host in everyone:
        assert any(c.endswith(f"{PRE} {host.address} v1.19.8") for _t, c in standin_log(host, CLUSTER)), host.address
        assert not marks(host, POST), host.address
    assert not [c for _t, c in standin_log(master0, CLUSTER) if " drain " in c and any(w.name in c for w in workers)]
    ps = store.json("ps", "--cluster", CLUSTER, "--output", "json")[0]
    assert ps["image"] == OLD  # the saved cluster keeps the old image
    by_host = {x["address"]: x for x in ps["hosts"]}
    assert by_host[master0.address]["image"] == NEW and by_host[masters[1].address]["image"] == OLD
    assert by_host[masters[1].address]["upgradeStep"] and by_host[workers[0].address]["upgradeStep"] == "staged"
    # mid-roll the registry serves the old app's images too: a restarted pod finds its image
    assert pull(workers[1], f"docker.io/{DASHBOARD}").returncode == 0

    # the same command again resumes: master0 is not drained again, the failed master retried
    masters[1].ssh(f"rm -f {FAIL}")
    started = time.monotonic()
    store.run("upgrade", NEW, "--cluster", CLUSTER, "--yes")
    print(f"upgrade resumed and finished: {time.monotonic() - started:.0f} s")

    # every host at v1.20.15, each on its own architecture, Ready and schedulable
    listed = nodes(workers[1])
    for host in everyone:
        node = listed[host.name]
        assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.20.15", host.address
        assert node["status"]["nodeInfo"]["architecture"] == host.arch
        assert not node["spec"].get("unschedulable"), host.address
    # the order, from master0's log (it drains and uncordons every host) and each host's kubeadm
    drains = [(t, c) for t, c in standin_log(master0, CLUSTER) if re.match(r"kubectl\S* (drain|uncordon) ", c)]
    sequence = [(c.split()[1], c.split()[2]) for _t, c in drains]
    m0, m1, n0, n1 = (x.name for x in (*masters, *workers))
    assert sequence == [
        ("drain", m0), ("uncordon", m0), ("drain", m1),  # the failed run: master1 stays cordoned
        ("drain", m1), ("uncordon", m1), ("drain", n0), ("uncordon", n0), ("drain", n1), ("uncordon", n1),
    ], sequence  # fmt: skip
    assert all("--ignore-daemonsets --delete-local-data" in c for _t, c in drains if " drain " in c)
    assert not any("--delete-emptydir-data" in c for _t, c in drains)
    applied = kube_calls(master0, r"^kubeadm\S* upgrade apply v1\.20\.15 -y")
    assert len(applied) == 1
    node_upgrades = {x.address: kube_calls(x, r"^kubeadm\S* upgrade node") for x in (masters[1], *workers)}
    assert len(node_upgrades[masters[1].address]) == 2  # failed once, then done
    assert all(len(node_upgrades[w.address]) == 1 for w in workers)
    assert applied[0][0] <= min(t for calls in node_upgrades.values() for t, _c in calls)
    assert node_upgrades[masters[1].address][-1][0] <= min(node_upgrades[w.address][0][0] for w in workers)
    # PreUpgrade before each host's kubeadm upgrade, the new image's PostUpgrade once after the last
    # host is Ready (master0 waited for it last) and in the new rootfs
    for host in everyone:
        upgraded = marks(host, r"^kubeadm\S* upgrade (apply|node)")
        assert marks(host, PRE)[0] < upgraded[0], host.address
        post = marks(host, POST)
        assert len(post) == 1 and post[0] > upgraded[-1], (host.address, standin_log(host, CLUSTER))
        assert standin_log(host, CLUSTER)[post[0]][1] == f"{POST} {host.address} v1.20.15"
    assert marks(master0, POST)[0] > marks(master0, rf"^kubectl\S* uncordon {re.escape(n1)}")[-1]

    # the saved cluster records the new image; the old rootfs and the old app's images are gone
    ps = store.json("ps", "--cluster", CLUSTER, "--output", "json")[0]
    assert ps["image"] == NEW and {x["image"] for x in ps["hosts"]} == {NEW}
    assert not (cluster_dir(store, CLUSTER) / "upgrade.json").exists()
    for host in everyone:
        data = f"/var/lib/sealer/data/{CLUSTER}"
        assert host.ssh(f"test -d {data}/rootfs && ! test -e {data}/rootfs.old && ! test -e {data}/rootfs.new",
                        check=False).returncode == 0, host.address  # fmt: skip
        assert host.ssh(f"cat /var/lib/sealer/data/{CLUSTER}/rootfs/etc/kube-version").stdout.strip() == "v1.20.15"
    with pytest.raises(subprocess.CalledProcessError):
        skopeo_raw(master0.address, DASHBOARD)
    assert "manifests" in skopeo_raw(master0.address, "bitnami/mysql:8.0.28-debian-10-r23")

    # an older Kubernetes is refused, before any host is reached
    before_runs = runs(store)
    older = store.run("upgrade", OLD, "--cluster", CLUSTER, "--yes", check=False)
    assert older.returncode != 0 and "older" in older.stderr and "skew" in older.stderr, older.stderr
    assert runs(store) == before_runs
