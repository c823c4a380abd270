"""Issue 29 wired into runs: the trees of the cluster's own files (Configs, rendered templates,
env) made on the controller and sent first in the rootfs's rsync, the plugins planned per phase
and host, the check report's Configs, and the plugin action's helpers."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from sealer.cluster.check_report import Topology, host_check
from sealer.cluster.clusterfile import Cluster, parse_clusterfile
from sealer.cluster.customize import ENV_FILE, customize
from sealer.cluster.plugin_plan import operation_of, plugin_plan
from sealer.cluster.results import HostReport, Reports
from sealer.oci.platform import Platform
from tests.unit.test_collection_plugins import SYNC, plugin

PLUGIN = plugin("plugin")
AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")
MASTER, NODE, NODE2 = "10.0.0.1", "10.0.0.5", "10.0.0.6"


def clusterfile(tmp_path: Path, size: str = "20Gi", extra: str = "") -> Cluster:
    path = tmp_path / "Clusterfile"
    path.write_text(f"""apiVersion: sealer.cloud/v2
kind: Cluster
metadata: {{name: c}}
spec:
  image: app:v1
  env: [Site=north, Secret=it's "quoted"]
  hosts:
    - {{ips: [{MASTER}], roles: [master]}}
    - {{ips: [{NODE}, {NODE2}], roles: [node], env: [Site=south]}}
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Config
metadata: {{name: values}}
spec:
  path: charts/db/values.yaml
  strategy: merge
  data: |
    size: {size}
    region: "{{{{ .Site }}}}"
{extra}""")
    return parse_clusterfile(path)


def rootfs(base: Path) -> Path:
    (base / "charts" / "db").mkdir(parents=True)
    (base / "charts" / "db" / "values.yaml").write_text("image: mysql\nsize: 8Gi\n")
    (base / "manifests").mkdir()
    (base / "manifests" / "site.yaml.tmpl").write_text("site: {{ .Site }}\n")
    (base / "bin").mkdir()
    (base / "bin" / "tool").write_text("#!/bin/sh\n")
    return base


@pytest.fixture
def image(tmp_path: Path) -> dict[Platform, Path]:
    return {AMD64: rootfs(tmp_path / "amd64"), ARM64: rootfs(tmp_path / "arm64")}


PLATFORMS = {MASTER: AMD64, NODE: ARM64, NODE2: AMD64}


def mtimes(tree: Path) -> dict[str, int]:
    return {str(p.relative_to(tree)): p.stat().st_mtime_ns for p in sorted(tree.rglob("*"))}


def test_each_platform_and_env_group_gets_its_tree(tmp_path: Path, image: dict[Platform, Path]) -> None:
    cluster = clusterfile(tmp_path)
    made = customize(cluster, PLATFORMS, image, tmp_path / "work")
    # the master (north, amd64), the nodes (south) of two platforms: three trees
    assert len({made.trees[MASTER], made.trees[NODE], made.trees[NODE2]}) == 3
    master, node = made.trees[MASTER], made.trees[NODE]
    assert (master / "manifests" / "site.yaml").read_text() == "site: north\n"
    assert (node / "manifests" / "site.yaml").read_text() == "site: south\n"
    assert (node / "charts" / "db" / "values.yaml").read_text() == "image: mysql\nsize: 20Gi\nregion: north\n"
    env = master / ENV_FILE
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and stat.S_IMODE(env.parent.stat().st_mode) == 0o700
    assert env.read_text() == "export Secret='it'\"'\"'s \"quoted\"'\nexport Site=north\n"
    assert made.paths[NODE] == frozenset({"charts/db/values.yaml", "manifests/site.yaml"})
    assert not (image[AMD64] / "manifests" / "site.yaml").exists()  # the image's tree is only read


def test_the_same_configs_leave_the_trees_untouched_and_a_gone_config_leaves_them(
    tmp_path: Path, image: dict[Platform, Path]
) -> None:
    work = tmp_path / "work"
    tree = customize(clusterfile(tmp_path), PLATFORMS, image, work).trees[MASTER]
    before = mtimes(tree)
    assert customize(clusterfile(tmp_path), PLATFORMS, image, work).trees[MASTER] == tree
    assert mtimes(tree) == before
    customize(clusterfile(tmp_path, "30Gi"), PLATFORMS, image, work)
    changed = {k for k, v in mtimes(tree).items() if before.get(k) != v}
    assert "charts/db/values.yaml" in changed and "manifests/site.yaml" not in changed
    cluster = clusterfile(tmp_path)
    cluster.configs, cluster.env = [], {}
    cluster.hosts = [h.__class__(h.address, h.role, h.ssh) for h in cluster.hosts]
    for tree_root in image.values():  # a template without keys: rendered with no env
        (tree_root / "manifests" / "site.yaml.tmpl").write_text("site: any\n")
    again = customize(cluster, PLATFORMS, image, work)
    assert not (again.trees[MASTER] / "charts" / "db").exists() and not (again.trees[MASTER] / ".sealer").exists()
    assert sorted(p.name for p in (work / "custom").iterdir()) == sorted({again.trees[a].name for a in PLATFORMS})


def rsync(tree: Path, source: Path, dest: Path) -> dict[str, object]:
    """The rootfs role's rsync, to a local directory: the tree first, then the rootfs."""
    command = SYNC.rsync_command({"src": [f"{tree}/", f"{source}/"], "dest": "x", "target": "x", "rsh": "ssh"}, False)
    command = [*[c for c in command if not c.startswith("--rsh=")][:-1], f"{dest}/"]
    report: dict[str, object] = SYNC.parse(
        subprocess.run(command, capture_output=True, text=True, check=True).stdout, ""
    )
    return report


def test_the_rsync_sends_the_tree_over_the_rootfs_and_then_only_what_changes(
    tmp_path: Path, image: dict[Platform, Path]
) -> None:
    work, dest = tmp_path / "work", tmp_path / "host"
    tree = customize(clusterfile(tmp_path), PLATFORMS, image, work).trees[MASTER]
    first = rsync(tree, image[AMD64], dest)
    assert first["files"] == 5  # values.yaml, site.yaml, the env file, the tool, the template
    assert "size: 20Gi" in (dest / "charts" / "db" / "values.yaml").read_text()
    assert stat.S_IMODE((dest / "charts").stat().st_mode) == stat.S_IMODE((image[AMD64] / "charts").stat().st_mode)
    again = rsync(tree, image[AMD64], dest)
    assert (again["files"], again["deleted"]) == (0, 0)  # --delete keeps the tree's files
    customize(clusterfile(tmp_path, "30Gi"), PLATFORMS, image, work)
    changed = rsync(tree, image[AMD64], dest)
    assert (changed["files"], changed["paths"]) == (1, ["charts/db/values.yaml"])


PLUGINS = f"""---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {{name: names}}
spec:
  type: HOSTNAME
  action: PreInit|PreJoin
  data: |
    {MASTER} m0
    {NODE2} n2
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {{name: ssd}}
spec:
  type: SHELL
  action: PostInstall|PreClean
  on: disk=ssd|master0
  data: echo hi
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {{name: taint}}
spec:
  type: TAINT
  action: PreGuest
  data: {NODE} a=b:NoSchedule
"""


def test_a_create_plans_its_phases_and_a_delete_s(tmp_path: Path) -> None:
    plan = plugin_plan(clusterfile(tmp_path, extra=PLUGINS), [], "create")
    assert list(plan) == ["PreInit", "PreGuest", "PostInstall", "PreClean"]
    names = plan["PreInit"][0]
    assert names["hosts"] == [MASTER, NODE2] and names["names"] == {MASTER: "m0", NODE2: "n2"}
    ssd = plan["PostInstall"][0]
    assert ssd["hosts"] == [MASTER] and ssd["labels"] == ["disk=ssd"] and ssd["data"] == "echo hi"
    assert plan["PreGuest"][0]["hosts"] == [MASTER, NODE, NODE2]  # kubectl on master0 picks the data's lines


def test_a_join_plans_its_phases_on_the_joined_hosts_only(tmp_path: Path) -> None:
    cluster = clusterfile(tmp_path, extra=PLUGINS)
    assert operation_of(True, [MASTER, NODE], [MASTER, NODE, NODE2]) == ("join", [NODE2])
    assert operation_of(False, [MASTER, NODE, NODE2], [MASTER, NODE, NODE2]) == ("create", [])
    assert operation_of(True, [], [MASTER]) == ("create", [])
    plan = plugin_plan(cluster, [], "join", [NODE2])
    assert list(plan) == ["PreJoin", "PreClean"]
    assert plan["PreJoin"][0]["hosts"] == [NODE2]


def test_the_check_report_names_the_files_the_configs_make() -> None:
    reports = Reports()
    paths = ["bin/tool", "charts/db/values.yaml"]
    reports.add(HostReport(MASTER, "rootfs", {"v": 1, "files": 2, "paths": paths}))
    topology = Topology(MASTER, MASTER, frozenset({MASTER}), {MASTER: frozenset({"charts/db/values.yaml", "x"})})
    row = host_check(MASTER, "linux/amd64", reports, topology, set())
    assert row.configs == ["charts/db/values.yaml"] and row.to_json()["configs"] == row.configs
    assert row.to_json()["rootfs"]["pathsTruncated"] is False
    # a transfer of more files than the sync plugin names says so, and the paths stay as named
    reports.add(HostReport(NODE, "rootfs", {"v": 1, "files": 500, "paths": paths, "paths_truncated": True}))
    row = host_check(NODE, "linux/amd64", reports, topology, set())
    assert row.rootfs_paths == paths and row.to_json()["rootfs"]["pathsTruncated"] is True


def test_a_scripts_env_is_quoted_for_the_shell_and_read_back_whole(tmp_path: Path) -> None:
    env = {"Secret": 'it\'s $(rm -rf /) "x"\nline2', "HostIP": "10.0.0.1"}
    script = PLUGIN.exports(env) + 'printf "%s|%s" "$Secret" "$HostIP"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out == f"{env['Secret']}|10.0.0.1"
    assert os.listdir(tmp_path) == []


def test_the_plugin_actions_helpers() -> None:
    assert PLUGIN.labels_match(["disk=ssd,zone=a"], {"disk": "ssd", "zone": "a", "x": "y"})
    assert not PLUGIN.labels_match(["disk=ssd,zone=a"], {"disk": "ssd"})
    assert PLUGIN.labels_match(["a=b", "disk=ssd"], {"disk": "ssd"})
    assert PLUGIN.tail("1\n2\n3\n", "4\n5\n6\nConnection to 10.0.0.1 closed.\n") == "2\n3\n4\n5\n6"
    assert PLUGIN.last_json('noise\n{"changed": true}\n') == {"changed": True}
    assert PLUGIN.last_json("not json") == {}


def test_clusterfile_text_with_jinja_reaches_ansible_untemplated() -> None:
    from sealer.cluster.inventory import Unsafe, dump_inventory, load_inventory, unsafe

    value = {"sealer_env": unsafe({"A": "{{ lookup('pipe', 'id') }}", "B": "plain"}), "other": "{{ x }}"}
    text = dump_inventory(value)
    assert "A: !unsafe" in text and "B: plain" in text and "other: '{{ x }}'" in text
    back = load_inventory(text)
    assert isinstance(back["sealer_env"]["A"], Unsafe) and dump_inventory(back) == text


def test_kubectls_json_is_read_past_what_sudo_said_before_it() -> None:
    out = 'sudo: unable to resolve host m0: Name or service not known\r\n{\n  "items": [\n    {"a": 1}\n  ]\n}\n'
    assert PLUGIN.json_document(out) == {"items": [{"a": 1}]}
    assert PLUGIN.json_document("no json here\n") is None
