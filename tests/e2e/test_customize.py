"""A Clusterfile's Config, env, Plugin and Application documents in a run on the sandbox (an
amd64 master, an arm64 node, the sudo user): a merge Config into a chart's values.yaml, a
``.tmpl`` manifest with a host's own value, HOSTNAME, LABEL and TAINT plugins, a PreInit SHELL
plugin that runs before kubeadm init, the Application's cmds in place of the image's, a re-run
that sends nothing, a changed Config that sends that file alone, and a failing PostInstall
plugin that stops the run naming itself. One cluster for the whole file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SUDO_USER, Sandbox, SandboxHost, cluster_dir, standin_log
from tests.helpers import Sealer

CLUSTER = "custom"
APP_IMAGE = "custom-app:v1"
EXTRA_IMAGE = "custom-extra:v1"
SECRET = "s3cr3t-Value-29"
DATA = f"/var/lib/sealer/data/{CLUSTER}"


def clusterfile(hosts: list[SandboxHost], size: str, failing: bool = False) -> str:
    master, node = hosts
    docs = f"""apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: {CLUSTER}
spec:
  image: {APP_IMAGE}
  ssh:
    user: {SUDO_USER}
    pk: {master.key}
  env:
    - Site=north
    - Secret={SECRET}
  hosts:
    - ips: [{master.address}]
      roles: [master]
    - ips: [{node.address}]
      roles: [node]
      env:
        - Site=south
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Config
metadata:
  name: mysql-values
spec:
  path: charts/my-mysql/values.yaml
  strategy: merge
  data: |
    primary:
      persistence:
        size: {size}
    region: "{{{{ .Site }}}}"
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: names
spec:
  type: HOSTNAME
  action: PreInit
  data: |
    {master.address} custom-master
    {node.address} custom-node
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: before-init
spec:
  type: SHELL
  action: PreInit
  data: |
    echo "$Site $HostIP ${{#Secret}}" > ../preinit.out
    echo "$(date +%s) plugin before-init $HostIP" >> ../standin-calls.log
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: labels
spec:
  type: LABEL
  action: PreGuest
  data: |
    {node.address} disk=ssd,zone=south
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: taints
spec:
  type: TAINT
  action: PreGuest
  data: |
    {node.address} dedicated=db:NoSchedule
---
apiVersion: sealer.io/v2
kind: Application
metadata:
  name: app
spec:
  cmds:
    - echo "$(date +%s) cmd $Site $HostIP" >> ../standin-calls.log
    - kubectl apply -f manifests/site.yaml
"""
    if failing:
        docs += """---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: smoke-test
spec:
  type: SHELL
  action: PostInstall
  on: master0
  data: |
    echo "checking the site"
    echo "the site does not answer" >&2
    exit 3
"""
    return docs


@pytest.fixture(scope="module")
def hosts(run_store: Sealer, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SandboxHost]]:
    """An amd64 master and an arm64 node, and the app image built FROM the example; the cluster
    and the image go at the end."""
    chosen = [sandbox.hosts[0], sandbox.hosts[1]]
    context = tmp_path_factory.mktemp("custom-app")
    (context / "site.yaml.tmpl").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site\ndata:\n  site: {{ .Site }}\n"
    )
    kubefile = ["FROM kubernetes-multi-arch:v1.19.8", "COPY site.yaml.tmpl manifests"]
    (context / "Kubefile").write_text("\n".join(kubefile) + "\n")
    run_store.run("build", "--platform", "linux/amd64,linux/arm64", "-t", APP_IMAGE, str(context))
    names = {h.address: h.ssh("hostname").stdout.strip() for h in chosen}
    yield chosen
    run_store.run("delete", "--all", "--cluster", CLUSTER, check=False)
    run_store.run("rmi", EXTRA_IMAGE, APP_IMAGE, check=False)
    for host in chosen:  # the sandbox's names back, for the tests after this file
        host.ssh(f"hostname {names[host.address]} && echo {names[host.address]} > /etc/hostname", check=False)


def run(store: Sealer, path: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return store.run("run", "-f", str(path), "--output", "json", *extra, check=check)


@pytest.fixture(scope="module")
def first_run(run_store: Sealer, hosts: list[SandboxHost], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("clusterfile") / "Clusterfile"
    path.write_text(clusterfile(hosts, "20Gi"))
    out: dict[str, Any] = json.loads(run(run_store, path).stdout)
    out["clusterfile"] = path
    return out


def test_configs_and_templates_reach_each_host(first_run: dict[str, Any], hosts: list[SandboxHost]) -> None:
    master, node = hosts
    for host, site in ((master, "north"), (node, "south")):
        values = host.ssh(f"cat {DATA}/rootfs/charts/my-mysql/values.yaml").stdout
        assert "size: 20Gi" in values and "repository: bitnami/mysql" in values, values
        assert "region: north" in values, values  # Configs are rendered with the cluster's env
        site_file = host.ssh(f"cat {DATA}/rootfs/manifests/site.yaml").stdout
        assert f"site: {site}" in site_file, site_file
        # the env reached the PreInit plugin exported, HostIP its own address, the secret whole
        assert host.ssh(f"cat {DATA}/preinit.out").stdout.split() == [site, host.address, str(len(SECRET))]
        env_file = host.ssh(f"stat -c %a {DATA}/rootfs/.sealer/env").stdout.strip()
        assert env_file == "600"


def test_plugins_run_in_their_phases(first_run: dict[str, Any], hosts: list[SandboxHost]) -> None:
    master, node = hosts
    assert master.ssh("hostname").stdout.strip() == "custom-master"
    assert node.ssh("cat /etc/hostname").stdout.strip() == "custom-node"
    assert f"{node.address} custom-node # sealer HOSTNAME" in node.ssh("cat /etc/hosts").stdout
    calls = [call for _, call in standin_log(master, CLUSTER)]
    plugin = calls.index(f"plugin before-init {master.address}")
    init = next(i for i, c in enumerate(calls) if c.startswith("kubeadm[") and " init" in c)
    assert plugin < init, calls
    label = calls.index("kubectl[x86_64] label node custom-node disk=ssd zone=south --overwrite")
    taint = calls.index("kubectl[x86_64] taint node custom-node dedicated=db:NoSchedule")
    cmd = calls.index(f"cmd north {master.address}")  # the Application's cmds, with the env
    assert init < label < taint < cmd, calls
    # as the API has them: the names HOSTNAME set before init, the labels and the taint
    nodes = json.loads(master.ssh(f"cd {DATA}/rootfs && bin/kubectl get nodes -o json").stdout)["items"]
    by_name = {n["metadata"]["name"]: n for n in nodes}
    assert set(by_name) == {"custom-master", "custom-node"}, by_name
    labels = by_name["custom-node"]["metadata"]["labels"]
    assert (labels.get("disk"), labels.get("zone")) == ("ssd", "south"), labels
    taints = by_name["custom-node"]["spec"].get("taints") or []
    assert {"key": "dedicated", "value": "db", "effect": "NoSchedule"} in taints, taints
    assert "kubectl[x86_64] apply -f manifests/site.yaml" in calls
    assert not any("helm" in c for c in calls), calls  # the image's CMDs are replaced


def test_secrets_stay_out_of_the_run_logs(first_run: dict[str, Any], run_store: Sealer) -> None:
    runs = cluster_dir(run_store, CLUSTER) / "runs"
    leaked = [p for p in runs.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaked, leaked


def test_rerun_sends_nothing_and_a_changed_config_that_file_alone(
    first_run: dict[str, Any], run_store: Sealer, hosts: list[SandboxHost]
) -> None:
    path: Path = first_run["clusterfile"]
    again = json.loads(run(run_store, path).stdout)
    assert set(again["delivery"]["filesSent"].values()) == {0}, again["delivery"]
    path.write_text(clusterfile(hosts, "30Gi"))
    report = json.loads(run(run_store, path, "--check").stdout)
    for row in report["hosts"]:
        assert row["configs"] == ["charts/my-mysql/values.yaml"], row
        assert row["rootfs"]["files"] == 1, row
    changed = json.loads(run(run_store, path).stdout)
    assert set(changed["delivery"]["filesSent"].values()) == {1}, changed["delivery"]
    assert "size: 30Gi" in hosts[1].ssh(f"cat {DATA}/rootfs/charts/my-mysql/values.yaml").stdout


def test_an_app_image_on_the_cluster_sends_only_the_apps_files(
    first_run: dict[str, Any], run_store: Sealer, hosts: list[SandboxHost], tmp_path: Path
) -> None:
    (tmp_path / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n")
    kubefile = [f"FROM {APP_IMAGE}", "COPY extra.yaml manifests", "CMD kubectl apply -f manifests/extra.yaml"]
    (tmp_path / "Kubefile").write_text("\n".join(kubefile) + "\n")
    run_store.run("build", "--platform", "linux/amd64,linux/arm64", "-t", EXTRA_IMAGE, str(tmp_path))
    refused = run_store.run("run", "kubernetes-multi-arch:v1.19.8", "--cluster", CLUSTER, check=False)
    assert refused.returncode == 1 and APP_IMAGE in refused.stderr and "kubernetes-multi-arch" in refused.stderr
    out = json.loads(run_store.run("run", EXTRA_IMAGE, "--cluster", CLUSTER, "--output", "json").stdout)
    assert set(out["delivery"]["filesSent"].values()) == {1}, out["delivery"]
    calls = [call for _, call in standin_log(hosts[0], CLUSTER)]
    assert calls[-1] == "kubectl[x86_64] apply -f manifests/extra.yaml", calls[-3:]


def test_a_failing_plugin_stops_the_run_naming_itself(
    first_run: dict[str, Any], run_store: Sealer, hosts: list[SandboxHost]
) -> None:
    path: Path = first_run["clusterfile"]
    path.write_text(clusterfile(hosts, "30Gi", failing=True).replace(APP_IMAGE, EXTRA_IMAGE))
    proc = run(run_store, path, check=False)
    assert proc.returncode != 0
    assert "plugin smoke-test" in proc.stderr and hosts[0].address in proc.stderr, proc.stderr
    assert "PostInstall" in proc.stderr and "the site does not answer" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
