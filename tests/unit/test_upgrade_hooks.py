"""sealer upgrade's plugins: which run in PreUpgrade and PostUpgrade (the saved Clusterfile's and
the new image's, read from its layers), on which hosts, what --check shows of them, and where
the roll runs them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sealer.cluster import upgrade
from sealer.cluster.clusterfile import Cluster, parse_clusterfile
from sealer.cluster.plugins import load_image_plugins
from sealer.cluster.runner import PlaybookResult
from sealer.cluster.upgrade_hooks import add_to_plan, hook_plan, stacked_plugin_files
from sealer.cluster.upgrade_plan import Plan
from sealer.errors import ClusterfileError

MASTER, MASTER2, NODE = "10.0.0.1", "10.0.0.2", "10.0.0.5"


def clusterfile(tmp_path: Path, extra: str = "") -> Cluster:
    path = tmp_path / "Clusterfile"
    path.write_text(f"""apiVersion: sealer.cloud/v2
kind: Cluster
metadata: {{name: c}}
spec:
  image: app:v1
  env: [Token=s3cret]
  hosts:
    - {{ips: [{MASTER}, {MASTER2}], roles: [master]}}
    - {{ips: [{NODE}], roles: [node]}}
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {{name: backup}}
spec:
  type: SHELL
  action: PreUpgrade
  on: master0
  data: echo "$Token" > backup
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {{name: smoke}}
spec:
  type: SHELL
  action: PostUpgrade|PostInstall
  on: node|role=edge
  data: echo smoke
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {{name: relabel}}
spec:
  type: LABEL
  action: PostUpgrade
  data: {NODE} upgraded=yes
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {{name: wipe}}
spec:
  type: SHELL
  action: PreClean
  data: echo wipe
{extra}""")
    return parse_clusterfile(path)


IMAGE_PLUGINS = """apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {name: drain-check}
spec:
  type: SHELL
  action: PreUpgrade
  data: echo image
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: {name: smoke}
spec:
  type: SHELL
  action: PostUpgrade
  data: echo replaced by the Clusterfile's
"""


def image_plugins(tmp_path: Path, text: str = IMAGE_PLUGINS) -> Any:
    (tmp_path / "rootfs" / "plugins").mkdir(parents=True)
    (tmp_path / "rootfs" / "plugins" / "upgrade.yaml").write_text(text)
    return load_image_plugins(tmp_path / "rootfs", {})


def test_the_upgrade_phases_run_the_images_plugins_then_the_clusterfiles_on_their_hosts(tmp_path: Path) -> None:
    planned = hook_plan(clusterfile(tmp_path), image_plugins(tmp_path))
    assert list(planned) == ["PreUpgrade", "PostUpgrade"]  # no other phase, a delete's neither
    assert [(e["name"], e["hosts"]) for e in planned["PreUpgrade"]] == [
        ("drain-check", [MASTER, MASTER2, NODE]), ("backup", [MASTER]),
    ]  # fmt: skip
    # the Clusterfile's smoke replaces the image's; its label selector is resolved when the phase runs
    smoke, relabel = planned["PostUpgrade"]
    assert smoke["name"] == "smoke" and smoke["data"] == "echo smoke"
    assert smoke["hosts"] == [NODE] and smoke["labels"] == ["role=edge"]
    assert relabel["type"] == "LABEL" and relabel["hosts"] == [MASTER, MASTER2, NODE]


def test_an_image_plugin_naming_a_host_of_no_cluster_is_refused_before_any_host(tmp_path: Path) -> None:
    text = IMAGE_PLUGINS.replace("  data: echo image", "  on: 10.9.9.9\n  data: echo image")
    with pytest.raises(ClusterfileError, match=r"plugins/upgrade.yaml:\d+: plugin drain-check: 10.9.9.9 is not a host"):
        hook_plan(clusterfile(tmp_path), image_plugins(tmp_path, text))


def test_no_plugin_of_the_upgrade_phases_plans_nothing(tmp_path: Path) -> None:
    path = tmp_path / "Clusterfile"
    path.write_text(f"apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata: {{name: c}}\n"
                    f"spec:\n  image: app:v1\n  hosts:\n    - {{ips: [{MASTER}], roles: [master]}}\n")  # fmt: skip
    assert hook_plan(parse_clusterfile(path), []) == {}


def plan() -> Plan:
    made = Plan("c", "app:old", "app:new", "v1.19.8", "v1.20.15", True, True, MASTER)
    made.before = ["registry on 10.0.0.1: serves the images of app:old and app:new together"]
    made.after = ["master0 10.0.0.1: the commands of app:new run", "cluster c: records app:new"]
    return made


def test_the_check_shows_each_phases_plugins_in_the_order_of_the_roll_without_their_data(tmp_path: Path) -> None:
    made = plan()
    add_to_plan(made, hook_plan(clusterfile(tmp_path), image_plugins(tmp_path)))
    assert made.before[1:] == [
        f"plugin drain-check (SHELL, plugins/upgrade.yaml:1) runs in PreUpgrade on {MASTER}, {MASTER2}, {NODE}",
        f"plugin backup (SHELL, {tmp_path / 'Clusterfile'}:11) runs in PreUpgrade on {MASTER}",
    ]
    assert made.after[1].startswith("plugin smoke (SHELL, ")
    assert made.after[1].endswith(f"runs in PostUpgrade on {NODE}, the nodes labelled role=edge")
    assert made.after[-1] == "cluster c: records app:new"  # the cluster records the new image after them
    shown = made.to_json()["plugins"]
    assert [e["name"] for e in shown["PostUpgrade"]] == ["smoke", "relabel"]
    assert "s3cret" not in repr(made.to_json()) and all("data" not in e for e in shown["PreUpgrade"])


def test_the_layers_give_the_topmost_plugin_file_of_each_name_and_whiteouts_hide(tmp_path: Path) -> None:
    def layer(name: str, files: dict[str, str]) -> Path:
        base = tmp_path / name / "plugins"
        base.mkdir(parents=True)
        for rel, text in files.items():
            (base / rel).write_text(text)
        return base.parent

    bottom = layer("bottom", {"a.yaml": "bottom a", "b.yaml": "bottom b", "c.yml": "bottom c", "notes.txt": "x"})
    middle = layer("middle", {"a.yaml": "middle a", ".wh.b.yaml": ""})
    top = layer("top", {"d.yaml": "top d"})
    assert stacked_plugin_files([bottom, middle, top]) == {
        "a.yaml": b"middle a", "c.yml": b"bottom c", "d.yaml": b"top d",
    }  # fmt: skip
    opaque = layer("opaque", {".wh..wh..opq": "", "e.yaml": "e"})
    assert stacked_plugin_files([bottom, opaque]) == {"e.yaml": b"e"}
    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / ".wh.plugins").touch()
    assert stacked_plugin_files([bottom, gone]) == {}


def roll(tmp_path: Path, hooks: frozenset[str], failures: list[str]) -> tuple[Any, list[str]]:
    played: list[str] = []

    def play(tags: str, limit: str | None = None, **extra: Any) -> PlaybookResult:
        played.append(tags)
        return SimpleNamespace(failures=failures, run_dir=tmp_path / "runs" / tags)  # type: ignore[return-value]

    reporter = SimpleNamespace(task=lambda text: __import__("contextlib").nullcontext())
    made = upgrade._Roll(tmp_path, plan(), {}, {}, {}, reporter, None, hooks)  # type: ignore[arg-type]
    made.play = play  # type: ignore[method-assign]
    return made, played


def test_a_phase_runs_its_play_only_when_it_has_plugins_and_a_failure_stops_the_roll(tmp_path: Path) -> None:
    quiet, played = roll(tmp_path, frozenset({"PostUpgrade"}), [])
    upgrade._plugins(quiet, "PreUpgrade", [MASTER])
    upgrade._plugins(quiet, "PostUpgrade", [])
    assert played == ["postupgrade"]
    failing, played = roll(tmp_path, frozenset({"PreUpgrade"}), ["10.0.0.1: plugin backup failed in PreUpgrade"])
    with pytest.raises(upgrade.UpgradeFailed) as err:
        upgrade._plugins(failing, "PreUpgrade", [MASTER, NODE])
    said = str(err.value)
    assert "plugin backup failed in PreUpgrade" in said
    assert f"not reached, still at app:old: {MASTER}, {NODE}" in said and "run the same sealer upgrade" in said
    with pytest.raises(ValueError, match="not a phase of the upgrade"):
        upgrade._plugins(failing, "PostInstall", [])
