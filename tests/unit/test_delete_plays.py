"""sealer delete's plays with the collection's own playbook: `sealer delete --force` runs nothing,
not even a PreClean or PostClean plugin, on a host it removes because it cannot be reached."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
import yaml

from tests.unit.test_role_specs import playbook, sealer_inventory

REACHED, GONE = "10.0.0.1", "10.0.0.2"


@pytest.mark.parametrize("phase", ["PreClean", "PostClean"])
def test_delete_force_runs_no_plugin_on_a_host_it_cannot_reach(tmp_path: Path, phase: str) -> None:
    path = sealer_inventory(tmp_path)
    inventory = yaml.safe_load(path.read_text())
    hosts = inventory["all"]["hosts"]
    hosts[REACHED].update(ansible_connection="local", ansible_become=False, ansible_user=getpass.getuser())
    # nothing answers there: the host is unreachable (its plugins select it by this address)
    hosts[GONE].update(ansible_host="127.0.0.1", ansible_port=9, ansible_become=False)
    marker = tmp_path / "plugin.out"
    shell = {"name": "wipe", "type": "SHELL", "where": "Clusterfile:9", "hosts": [REACHED, "127.0.0.1"],
             "data": f"echo $HostIP >> {marker}"}  # fmt: skip
    inventory["all"]["vars"].update(
        sealer_plugins_plan={phase: [shell]},
        sealer_kubernetes_unreachable=[GONE],
    )
    path.write_text(yaml.safe_dump(inventory))
    proc = playbook(tmp_path, path, "- ansible.builtin.import_playbook: sealer.cluster.delete\n",
                    "--tags", phase.lower(), "-e", json.dumps({"sealer_rootfs_dir": str(tmp_path)}))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert marker.read_text() == f"{REACHED}\n"
    stats = json.loads(proc.stdout)["stats"]
    assert stats[GONE]["unreachable"] == 0 and stats[GONE]["failures"] == 0
