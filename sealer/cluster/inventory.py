"""The Ansible inventory of a cluster: groups by role and by platform, never a secret in it.

A user can run sealer's playbooks, or their own, against it with plain ansible-playbook.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from sealer.cluster.bastion import proxy_command, take_proxy_jump
from sealer.cluster.clusterfile import Cluster
from sealer.cluster.hosts import HostFacts
from sealer.oci.platform import Platform


def platform_groups(facts: dict[str, HostFacts]) -> dict[Platform, list[str]]:
    groups: dict[Platform, list[str]] = {}
    for address, fact in facts.items():
        groups.setdefault(fact.platform, []).append(address)
    return groups


def build_inventory(
    cluster: Cluster,
    facts: dict[str, HostFacts],
    cluster_dir: Path,
    image_ids: dict[Platform, str],
) -> dict[str, Any]:
    """The inventory as a dict (written as YAML). ``image_ids``: each platform's image id."""
    all_vars: dict[str, Any] = {
        "sealer_cluster_name": cluster.name,
        "sealer_image": str(cluster.image),
        "sealer_registry_host": cluster.registry_host,
        # a host that stops answering (link cut, host down) fails its task in ~30 s instead of hanging
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={cluster_dir / 'known_hosts'} -o StrictHostKeyChecking=yes"
            " -o ConnectTimeout=15 -o ServerAliveInterval=5 -o ServerAliveCountMax=6"
        ),
        "ansible_python_interpreter": "auto_silent",
    }
    cluster_key = cluster_dir / "ssh" / "id_ed25519.pub"
    if any(h.ssh.pk == str(cluster_key.with_suffix("")) for h in cluster.hosts):
        all_vars["sealer_cluster_public_key"] = cluster_key.read_text().strip()
    hosts: dict[str, Any] = {}
    for host in cluster.hosts:
        fact = facts[host.address]
        own = dict(host.vars)
        if host.ssh.bastion is not None:
            # Ansible and the roles' rsync (which uses these arguments) go through the bastion;
            # an operator's ProxyJump gives way to it (ssh would take only one of them)
            _, theirs = take_proxy_jump(str(own.get("ansible_ssh_common_args") or ""), host.address)
            jump = proxy_command(host.ssh.bastion, cluster_dir / "known_hosts")
            own["ansible_ssh_common_args"] = shlex.join(jump + theirs)
        if "ansible_ssh_common_args" in own:  # the operator's after sealer's own
            own["ansible_ssh_common_args"] = f"{all_vars['ansible_ssh_common_args']} {own['ansible_ssh_common_args']}"
        hosts[host.address] = {
            **own,
            "ansible_user": host.ssh.user,
            "ansible_port": host.ssh.port,
            "sealer_role": host.role,
            "sealer_platform": str(fact.platform),
            "sealer_arch": fact.platform.architecture,
            "sealer_hostname": fact.hostname,
        }
        if host.env:  # the cluster's env with the host's own values (the cluster's is in all's vars)
            hosts[host.address]["sealer_env"] = unsafe(cluster.env_of(host))
        if host.ssh.pk:
            hosts[host.address]["ansible_ssh_private_key_file"] = host.ssh.pk
        if fact.sudo:  # every change through sudo; the password, when one is needed, is never here
            hosts[host.address]["ansible_become"] = True
            hosts[host.address]["sealer_become_password"] = fact.sudo == "password"
            # Ansible's scratch space of the user's own: root's (from a root run) is closed to it
            hosts[host.address]["ansible_remote_tmp"] = f"/tmp/.sealer-ansible-{host.ssh.user}"
    children: dict[str, Any] = {}
    for role in ("master", "node"):
        members = [h.address for h in cluster.hosts if h.role == role]
        children[role] = {"hosts": dict.fromkeys(members, None)} if members else {"hosts": {}}
    children["registry"] = {"hosts": dict.fromkeys(cluster.registry_hosts)}
    for platform, members in sorted(platform_groups(facts).items()):
        ordered = [h.address for h in cluster.hosts if h.address in members]
        children[platform.group_name] = {
            "hosts": dict.fromkeys(ordered, None),
            "vars": {
                "sealer_rootfs_source": str(cluster_dir / "mounts" / platform.group_name),
                "sealer_image_id": image_ids[platform],
            },
        }
    return {"all": {"vars": all_vars, "hosts": hosts, "children": children}}


# Jinja's markers: text from the Clusterfile holding one (a plugin's script, a value of the env,
# a CMD) is written `!unsafe`, so that Ansible passes it on as it is instead of templating it
_JINJA = ("{{", "{%", "{#")


class Unsafe(str):
    """Text Ansible must not template (written with the tag ``!unsafe``)."""


def unsafe(value: Any) -> Any:
    """``value`` with every text in it that holds a Jinja marker made :class:`Unsafe`."""
    if isinstance(value, str):
        return Unsafe(value) if any(m in value for m in _JINJA) else value
    if isinstance(value, list):
        return [unsafe(v) for v in value]
    if isinstance(value, dict):
        return {k: unsafe(v) for k, v in value.items()}
    return value


class _Dumper(yaml.SafeDumper):
    pass


class _Loader(yaml.SafeLoader):
    pass


_Dumper.add_representer(Unsafe, lambda dumper, text: dumper.represent_scalar("!unsafe", str(text)))
_Loader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))  # type: ignore[arg-type]


def dump_inventory(inventory: dict[str, Any]) -> str:
    return yaml.dump(inventory, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def load_inventory(text: str) -> Any:
    """An inventory sealer wrote (its ``!unsafe`` texts read back as :class:`Unsafe`)."""
    return yaml.load(text, Loader=_Loader)
