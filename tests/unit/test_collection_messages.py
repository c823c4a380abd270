"""The collection's playbooks, and the messages they show, speak of the playbooks' variable
(-e sealer_cluster=NAME), not of the sealer command's --cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealer.cluster.front_door import step

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
    result = step("prepare_delete", "", [str(tmp_path / "hosts.yaml")], [])
    assert result["failed"] and result["msg"] == "say which cluster with -e sealer_cluster=NAME (clusters: a, b)"
