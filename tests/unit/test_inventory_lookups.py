"""Inventory values from lookups and ``!unsafe`` (Ansible's unsafe text) become plain values
sealer can write into its own inventory and state, meaning there what they meant to Ansible."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sealer.cluster.clusterfile import SSHConfig
from sealer.cluster.inventory import dump_inventory
from sealer.cluster.inventory_file import read_inventory

DEFAULTS = SSHConfig(user="root", port=22, pk="/default/key")


def test_lookups_and_unsafe_values_are_taken_as_ansible_resolves_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALER_TEST_USER", "opsuser")
    (tmp_path / "motd").write_text("from a file\n")
    (tmp_path / "template").write_text("{{ x }}\n")
    (tmp_path / "hosts.yaml").write_text(
        "all:\n  vars:\n    literal: !unsafe '{{ not templated }}'\n  children:\n    master:\n      hosts:\n"
        "        10.0.0.5:\n"
        "          ansible_user: \"{{ lookup('env', 'SEALER_TEST_USER') }}\"\n"
        f"          motd: \"{{{{ lookup('file', '{tmp_path / 'motd'}') }}}}\"\n"
        "          piped: \"{{ lookup('pipe', 'echo piped') }}\"\n"
        f"          braces: \"{{{{ lookup('file', '{tmp_path / 'template'}') }}}}\"\n"
    )
    (host,) = read_inventory(tmp_path / "hosts.yaml", DEFAULTS)
    assert type(host.ssh.user) is str and host.ssh.user == "opsuser"
    assert host.vars["motd"] == "from a file" and host.vars["piped"] == "piped"
    written = dump_inventory({"all": {"hosts": {"10.0.0.5": {"ansible_user": host.ssh.user, **host.vars}}}})
    assert yaml.safe_load(written)["all"]["hosts"]["10.0.0.5"]["ansible_user"] == "opsuser"
    # what must not be templated stays literal when the playbooks template sealer's inventory
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    templar = Templar(loader=DataLoader(), variables={})
    assert templar.template(host.vars["literal"]) == "{{ not templated }}"
    assert templar.template(host.vars["braces"]) == "{{ x }}"
