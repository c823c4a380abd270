"""The collection's playbooks, and the messages they show, speak of the playbooks' variable
(-e sealer_cluster=NAME), not of the sealer command's --cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealer.cluster.front_door import cluster_argument, step

ROOT = Path(__file__).resolve().parents[2]


def test_the_playbooks_name_the_variable_not_the_flag() -> None:
    front_doors = 0
    for playbook in sorted((ROOT / "playbooks").glob("*.yml")):
        text = playbook.read_text()
        assert "--cluster" not in text, playbook
        if "sealer.cluster.prepare" in text:  # run by hand on an operator's inventory, not by sealer alone
            front_doors += 1
            assert "-e sealer_cluster=NAME" in text, playbook
    assert front_doors >= 2


def test_a_delete_playbook_with_several_clusters_asks_for_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALER_ROOT", str(tmp_path / "store"))
    for name in ("a", "b"):
        cdir = tmp_path / "store" / "clusters" / name
        cdir.mkdir(parents=True)
        (cdir / "Clusterfile").write_text("")
    result = step("prepare_delete", None, [str(tmp_path / "hosts.yaml")], [])
    assert result["failed"] and result["msg"] == (
        "sealer.cluster.delete needs the cluster's name: -e sealer_cluster=NAME (no default) (clusters: a, b)"
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        # absent: no default (it used to become my-cluster, a second cluster on the same hosts)
        (("prepare_run", "kubernetes:v1", None, []), "sealer.cluster.run needs the cluster's name: -e sealer_cluster="),
        # -e sealer_cluster= (empty)
        (("prepare_run", "kubernetes:v1", "", []), "sealer_cluster: invalid cluster name ''"),
        (("prepare_delete", "", [], []), "sealer_cluster: invalid cluster name ''"),
        # -e "sealer_cluster=a b": Ansible gives a, and drops b
        (
            ("prepare_run", "kubernetes:v1", "a", [], ["sealer_cluster=a b"]),
            "-e 'sealer_cluster=a b': Ansible reads it as sealer_cluster=a and drops 'b'",
        ),
        (("prepare_delete", "a", [], [], ["sealer_image=x sealer_cluster=a b"]), "drops 'b'"),
    ],
)
def test_the_playbooks_require_the_cluster_name_whole(
    args: tuple[object, ...], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALER_ROOT", str(tmp_path / "store"))
    result = step(*args)
    assert result["failed"] is True
    assert said in result["msg"] and "\n" not in result["msg"], result["msg"]


def test_a_whole_name_and_other_extra_vars_pass() -> None:
    typed = ["sealer_cluster=a", "@vars.yml", '{"sealer_cluster": "a b"}', "sealer_image='x y'"]
    assert cluster_argument("run", "a", typed) == "a"
