"""The Clusterfile's Config, Plugin and Application documents, hosts' env, rendering with the env."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import yaml

from sealer.cluster.clusterfile import parse_clusterfile, to_clusterfile
from sealer.cluster.config_docs import apply_configs
from sealer.errors import ClusterfileError

CLUSTERFILE = """\
apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: prod
spec:
  image: kubernetes-multi-arch:v1.19.8
  ssh:
    pk: /keys/id_ed25519
  env:
    - Region=north
    - Password=s3cret
  hosts:
    - ips: [10.0.0.1]
      roles: [master]
    - ips: [10.0.0.5, 10.0.0.6]
      roles: [node]
      env:
        - Region=south
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Config
metadata:
  name: app-values
spec:
  path: charts/app/values.yaml
  strategy: merge
  data: |
    region: {{ .Region }}
    password: {{ .Password | b64enc }}
---
apiVersion: sealer.cloud/v2
kind: Plugin
metadata:
  name: label-nodes
spec:
  type: LABEL
  action: PostInstall
  on: node
  data: |
    10.0.0.5 zone={{ .Region }}
---
apiVersion: sealer.io/v2
kind: Application
metadata:
  name: apps
spec:
  cmds:
    - kubectl apply -f manifests/app.yaml
---
apiVersion: kubeadm.k8s.io/v1beta2
kind: ClusterConfiguration
networking:
  podSubnet: 100.64.0.0/10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Clusterfile"
    path.write_text(text)
    return path


def test_every_kind_is_read_and_the_others_are_rendered_with_the_clusters_env(tmp_path: Path) -> None:
    cluster = parse_clusterfile(write(tmp_path, CLUSTERFILE))
    assert cluster.env == {"Region": "north", "Password": "s3cret"}
    assert [(h.address, h.env) for h in cluster.hosts] == [
        ("10.0.0.1", {}),
        ("10.0.0.5", {"Region": "south"}),
        ("10.0.0.6", {"Region": "south"}),
    ]
    assert cluster.env_of(cluster.hosts[1]) == {"Region": "south", "Password": "s3cret"}
    assert cluster.env_of(cluster.hosts[0]) == {"Region": "north", "Password": "s3cret"}
    assert [(env["Region"], [h.address for h in hosts]) for env, hosts in cluster.env_groups()] == [
        ("north", ["10.0.0.1"]),
        ("south", ["10.0.0.5", "10.0.0.6"]),
    ]
    (config,) = cluster.configs
    assert (config.name, config.path, config.strategy) == ("app-values", "charts/app/values.yaml", "merge")
    assert config.data == "region: north\npassword: czNjcmV0\n"
    (plugin,) = cluster.plugins
    assert (plugin.name, plugin.type, plugin.actions, plugin.on_text) == (
        "label-nodes",
        "LABEL",
        ("PostInstall",),
        "node",
    )
    assert plugin.data == "10.0.0.5 zone=north\n"
    assert cluster.app_cmds == ["kubectl apply -f manifests/app.yaml"]
    assert cluster.kubeadm_docs == [
        {
            "apiVersion": "kubeadm.k8s.io/v1beta2",
            "kind": "ClusterConfiguration",
            "networking": {"podSubnet": "100.64.0.0/10"},
        }
    ]


def test_the_saved_clusterfile_reads_back_the_same(tmp_path: Path) -> None:
    cluster = parse_clusterfile(
        write(tmp_path, CLUSTERFILE.replace("zone={{ .Region }}", 'zone={{ .Region }}\n    # {{ "{{" }}'))
    )
    assert cluster.plugins[0].data.endswith("# {{\n")
    saved = to_clusterfile(cluster)
    again = parse_clusterfile(write(tmp_path, saved))
    assert [(c.name, c.path, c.data, c.strategy) for c in again.configs] == [
        (c.name, c.path, c.data, c.strategy) for c in cluster.configs
    ]
    assert [(p.name, p.type, p.actions, p.on_text, p.data) for p in again.plugins] == [
        (p.name, p.type, p.actions, p.on_text, p.data) for p in cluster.plugins
    ]
    assert again.app_cmds == cluster.app_cmds
    assert [(h.address, h.role, h.env) for h in again.hosts] == [(h.address, h.role, h.env) for h in cluster.hosts]
    assert again.env == cluster.env


def test_without_the_new_kinds_nothing_changes(tmp_path: Path) -> None:
    cluster = parse_clusterfile(write(tmp_path, CLUSTERFILE.split("---\n", maxsplit=1)[0]))
    assert (cluster.configs, cluster.plugins, cluster.app_cmds) == ([], [], None)
    assert len(cluster.env_groups()) == 2
    assert "kind: Plugin" not in to_clusterfile(cluster)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  strategy: merge\n", "  strategy: merge\n  owner: me\n"), "Clusterfile:27: unknown field 'spec.owner'"),
        (("  on: node\n", "  on: node\n  scope: master\n"), "Clusterfile:39: unknown field 'spec.scope'"),
        (("  cmds:\n", "  launchApps: [a]\n  cmds:\n"), "Clusterfile:47: unknown field 'spec.launchApps'"),
        (("    region: {{ .Region }}", "    region: {{ .Zone }}"), "Clusterfile:28: Zone is not in the cluster's env"),
        (
            ("  path: charts/app/values.yaml", "  path: ../../etc/passwd"),
            "Clusterfile:25: spec.path '../../etc/passwd' must be relative",
        ),
        (
            ("  path: charts/app/values.yaml", "  path: /etc/passwd"),
            "Clusterfile:25: spec.path '/etc/passwd' must be relative",
        ),
        (("  strategy: merge", "  strategy: patch"), "Clusterfile:20: Config app-values: spec.strategy is one of"),
        (("  type: LABEL", "  type: ANSIBLE"), "Clusterfile:31: plugin label-nodes: spec.type is one of"),
        (("  on: node", "  on: 10.0.0.9"), "Clusterfile:31: plugin label-nodes: 10.0.0.9 is not a host of the cluster"),
        (
            ("    10.0.0.5 zone", "    10.0.0.5 zone:x\n    10.0.0.6 zone"),
            "Clusterfile:40: plugin label-nodes: 'zone:x' is not a node label",
        ),
        (
            ("  action: PostInstall", "  action: PreInit"),
            "Clusterfile:31: plugin label-nodes: a LABEL plugin runs in PostJoin",
        ),
        (
            ("apiVersion: sealer.io/v2\nkind: Application", "apiVersion: v1\nkind: Application"),
            "Clusterfile:42: Application apiVersion is one of",
        ),
        (
            ("apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration", "apiVersion: apps/v1\nkind: Deployment"),
            "Clusterfile:50: a document of kind Deployment",
        ),
        (
            ("        - Region=south", "        - Region south"),
            "Clusterfile:18: spec.hosts[].env entry 'Region south' is not key=value",
        ),
        (
            ("    - Password=s3cret", "    - Password=s3cret\n    - Region=again"),
            "Clusterfile:12: spec.env entry 'Region=again': Region is given twice",
        ),
        (
            ("    - kubectl apply", "    - [kubectl]\n    - kubectl apply"),
            "Clusterfile:48: spec.cmds must be a single value",
        ),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    assert change[0] in CLUSTERFILE
    with pytest.raises(ClusterfileError) as err:
        parse_clusterfile(write(tmp_path, CLUSTERFILE.replace(*change, 1)))
    assert str(err.value).startswith(f"{tmp_path}/{message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_a_second_plugin_of_the_same_name_and_a_second_application_are_refused(tmp_path: Path) -> None:
    plugin = CLUSTERFILE.split("---\n")[2]
    with pytest.raises(ClusterfileError, match=r"/Clusterfile:\d+: a second plugin named label-nodes$"):
        parse_clusterfile(write(tmp_path, CLUSTERFILE + "---\n" + plugin))
    application = CLUSTERFILE.split("---\n")[3]
    with pytest.raises(ClusterfileError, match=r"/Clusterfile:\d+: a second document of kind Application$"):
        parse_clusterfile(write(tmp_path, CLUSTERFILE + "---\n" + application))


def test_a_label_selector_before_the_nodes_exist_is_refused_when_read(tmp_path: Path) -> None:
    text = CLUSTERFILE.replace(
        "  type: LABEL\n  action: PostInstall\n  on: node", "  type: SHELL\n  action: PreInit\n  on: tier=db"
    )
    with pytest.raises(
        ClusterfileError, match=r"Clusterfile:31: plugin label-nodes: on 'tier=db' selects nodes by label"
    ):
        parse_clusterfile(write(tmp_path, text))


def test_config_data_written_as_yaml_and_sealers_taint_spelling(tmp_path: Path) -> None:
    text = (
        CLUSTERFILE.replace(
            "  data: |\n    region: {{ .Region }}\n    password: {{ .Password | b64enc }}\n",
            "  data:\n    region: '{{ .Region }}'\n",
        )
        .replace("  type: LABEL", "  type: Taint")
        .replace("zone={{ .Region }}", "zone={{ .Region }}:NoSchedule")
    )
    cluster = parse_clusterfile(write(tmp_path, text))
    assert yaml.safe_load(cluster.configs[0].data) == {"region": "north"}
    assert cluster.plugins[0].type == "TAINT"


def test_the_clusterfile_in_the_docs_reads_and_applies_as_it_says(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs/customize.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", docs, re.S)
    assert block is not None
    cluster = parse_clusterfile(write(tmp_path, block.group(1)))
    assert [p.type for p in cluster.plugins] == ["HOSTNAME", "SHELL", "LABEL", "TAINT", "SHELL"]
    assert cluster.app_cmds is not None and len(cluster.app_cmds) == 2
    assert apply_configs(cluster.configs, tmp_path / "rootfs") == [
        "charts/shop/values.yaml",
        "manifests/db-secret.yaml",
    ]
    secret = yaml.safe_load((tmp_path / "rootfs/manifests/db-secret.yaml").read_text())
    shown = re.search(r"`data\.config: (\S+)`", docs)
    assert shown is not None and secret["data"]["config"] == shown.group(1)
    assert base64.b64decode(shown.group(1)) == b'{"passwd":"s3cret","username":"root"}'
