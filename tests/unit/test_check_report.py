"""The sealer_check role reads the roles' dry-run results as real Ansible hands them over: rsync's
--stats and itemized lines, the registry's state, the init and join markers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from sealer.cluster.collection import collections_path

INVENTORY = {
    "all": {
        "hosts": {
            "m0": {"ansible_connection": "local", "sealer_platform": "linux/amd64"},
            "n1": {"ansible_connection": "local", "sealer_platform": "linux/arm64/v8"},
        },
        "children": {
            "master": {"hosts": {"m0": None}},
            "node": {"hosts": {"n1": None}},
            "registry": {"hosts": {"m0": None}},
        },
    }
}
ROOTFS_OUT = [
    "<<WOULD-INITIALISE>> sha256:abc",
    "<<CHANGED>>.d..t...... manifests/",
    "<<CHANGED>><f.st...... manifests/dashborad.yaml",
    "<<CHANGED>>*deleting   etc/old.conf",
    "Number of files: 1,310 (reg: 1,201, dir: 109)",
    "Number of deleted files: 1 (reg: 1)",
    "Number of regular files transferred: 1",
    "Total transferred file size: 12,345 bytes",
]


def report(tmp_path: Path, facts: dict[str, Any], check: bool = True) -> dict[str, dict[str, Any]]:
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (tmp_path / "facts.json").write_text(json.dumps(facts))
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        '    - ansible.builtin.set_fact: {"{{ item.key }}": "{{ item.value }}"}\n'
        "      loop: \"{{ (lookup('file', 'facts.json') | from_json)[inventory_hostname] | dict2items }}\"\n"
        "- hosts: all\n  gather_facts: false\n  roles: [sealer.cluster.sealer_check]\n"
    )
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path)), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json"}  # fmt: skip
    args = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventory.yaml", "play.yml"]
    proc = subprocess.run([*args, *(["--check"] if check else [])], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tasks = json.loads(proc.stdout)["plays"][1]["tasks"]
    results = tasks[-1]["hosts"]
    return {host: res.get("sealer_check_report", {}) for host, res in results.items()}


def test_the_report_counts_what_rsync_would_send_and_what_is_pending(tmp_path: Path) -> None:
    got = report(tmp_path, {
        "m0": {"sealer_rootfs_sync": {"stdout_lines": ROOTFS_OUT},
               "sealer_registry_sync": {"changed": True, "stdout_lines": ["Number of regular files transferred: 2",
                                                                           "Total transferred file size: 2,048 bytes"]},
               "sealer_registry_host_state": {"stdout_lines": ["systemd", "running", "enabled"]},
               "sealer_kubernetes_state": {"stdout": "joined\r\n"}, "sealer_app_state": {"stdout": ""}},
        "n1": {"sealer_rootfs_sync": {"stdout_lines": []}, "sealer_kubernetes_state": {"stdout": ""}},
    })  # fmt: skip
    m0, n1 = got["m0"], got["n1"]
    assert m0["platform"] == "linux/amd64"
    assert (int(m0["rootfs"]["files"]), int(m0["rootfs"]["bytes"]), int(m0["rootfs"]["deleted"])) == (1, 12345, 1)
    assert m0["rootfs"]["paths"] == ["manifests/dashborad.yaml"]
    assert m0["rootfs"]["script"] == "pending"
    assert (int(m0["registry"]["files"]), int(m0["registry"]["bytes"])) == (2, 2048)
    assert m0["registry"]["action"] == "restart"
    assert (m0["init"], m0["join"], m0["cmds"]) == ("done", "none", "pending")
    assert int(n1["rootfs"]["files"]) == 0 and n1["rootfs"]["script"] == "done"
    assert n1["registry"]["action"] == "none"
    assert (n1["init"], n1["join"], n1["cmds"]) == ("none", "pending", "none")


def test_a_registry_that_is_not_running_would_start(tmp_path: Path) -> None:
    got = report(tmp_path, {"m0": {"sealer_registry_host_state": {"stdout_lines": ["systemd"]}}, "n1": {}})
    assert got["m0"]["registry"]["action"] == "start"


def test_the_report_is_made_in_check_mode_only(tmp_path: Path) -> None:
    assert report(tmp_path, {"m0": {}, "n1": {}}, check=False) == {"m0": {}, "n1": {}}
