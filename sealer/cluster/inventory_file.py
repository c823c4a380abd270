"""An operator's Ansible inventory as a cluster: read with Ansible's own parser (YAML or INI,
with the group_vars/ and host_vars/ beside it), so it means to sealer what it means to Ansible.

Masters come from the group ``master`` (kubespray's ``kube_control_plane`` too), nodes from
``node`` (``kube_node``); a host in both is a master. Each host's connection variables become
its SSH settings; secrets among them stay in memory (a password login installs the cluster's
own key, as with ``-p``), never in sealer's files. The operator's other variables reach the
roles through sealer's inventory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealer.cluster.bastion import take_proxy_jump
from sealer.cluster.clusterfile import Host, SSHConfig, check_hosts, parse_address, parse_bastion, parse_port
from sealer.errors import ClusterfileError
from sealer.input_limits import compose_all, read_limited

MASTER_GROUPS = ("master", "kube_control_plane")
NODE_GROUPS = ("node", "kube_node")
# what Ansible itself puts in every host's variables
_ANSIBLE_OWN = {"inventory_hostname", "inventory_hostname_short", "group_names", "groups", "omit", "playbook_dir",
                "inventory_dir", "inventory_file"}  # fmt: skip
# connection variables that become SSH settings, or that sealer's inventory sets itself
_CONNECTION = {"ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file", "ansible_password",
               "ansible_ssh_pass", "ansible_ssh_port", "ansible_ssh_user", "ansible_ssh_host"}  # fmt: skip
_SECRET = ("ansible_password", "ansible_ssh_pass", "ansible_become_password", "ansible_become_pass")
# variables sealer's inventory owns: an operator's value would not match what sealer detected
SEALER_OWNED = {"sealer_cluster_name", "sealer_image", "sealer_registry_host", "sealer_role", "sealer_platform",
                "sealer_arch", "sealer_hostname", "sealer_rootfs_source", "sealer_image_id",
                "sealer_become_password"}  # fmt: skip


@dataclass
class InventoryFile:
    """An inventory's hosts, their names in it (by address), and the sudo password it gives."""

    hosts: list[Host]
    names: dict[str, str]
    become_password: str | None = field(default=None, repr=False)


def read_inventory(path: Path, defaults: SSHConfig) -> list[Host]:
    """The cluster's hosts from an inventory; each Host carries the operator's own variables."""
    return read_inventory_file(path, defaults).hosts


def read_inventory_file(path: Path, defaults: SSHConfig) -> InventoryFile:
    """The cluster's hosts from an inventory, with the operator's ansible_become_password (Ansible
    uses it for sudo; so does sealer, once per run, kept in memory: every host's must be the same)."""
    display = str(path)
    if not path.exists():
        raise ClusterfileError(f"{display}: no such inventory")
    _check_limits(path)
    inventory, variables = _load(path)
    masters = _members(inventory, MASTER_GROUPS)
    nodes = [h for h in _members(inventory, NODE_GROUPS) if h not in masters]
    if not masters:
        groups = " or ".join(MASTER_GROUPS)
        raise ClusterfileError(f"{display}: no host in the group {groups}: sealer needs at least one master")
    roles = [(name, "master") for name in masters] + [(name, "node") for name in nodes]
    hosts, names, passwords = [], {}, set()
    for name, role in roles:
        hv = variables(name)
        host = _host(name, role, hv, defaults, display)
        hosts.append(host)
        names[host.address] = name
        given = hv.get("ansible_become_password") or hv.get("ansible_become_pass")
        if given:
            passwords.add(str(given))
    check_hosts(hosts)
    if len(passwords) > 1:
        raise ClusterfileError(f"{display}: the hosts give different ansible_become_password values: sealer uses one")
    return InventoryFile(hosts, names, passwords.pop() if passwords else None)


def _check_limits(path: Path) -> None:
    """The inventory, and the group_vars/ and host_vars/ files Ansible reads beside it, within
    sealer's input limits, before Ansible reads (and templates) any of it."""
    import yaml

    base = path if path.is_dir() else path.parent
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    variables = []
    for sub in (base / "group_vars", base / "host_vars"):
        if sub.is_dir():
            variables += sorted(p for p in sub.rglob("*") if p.is_file())
    for file in [*files, *variables]:
        try:
            text = read_limited(file).decode(errors="replace")
        except OSError as err:
            raise ClusterfileError(f"{file}: cannot read: {err.strerror}") from err
        try:
            compose_all(text, str(file))
        except yaml.YAMLError as err:
            if file in variables or file.suffix in (".yml", ".yaml", ".json"):  # else INI, which Ansible reads
                mark = getattr(err, "problem_mark", None)
                at = f":{mark.line + 1}" if mark else ""
                raise ClusterfileError(f"{file}{at}: not valid YAML: {getattr(err, 'problem', None) or err}") from err


def _load(path: Path) -> tuple[Any, Any]:
    # parse failures are errors, said once by sealer, not warnings Ansible prints and goes on;
    # Ansible reads its settings when first imported, so they are set for the import alone
    settings = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False"}
    before = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.template import Templar
        from ansible.vars.manager import VariableManager
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    loader = DataLoader()
    warnings: list[str] = []
    try:
        with _warnings_kept(warnings):
            inventory = InventoryManager(loader=loader, sources=[str(path)])
    except AnsibleError as err:
        raise ClusterfileError(f"{path}: not an Ansible inventory: {_why(path, warnings, err)}") from err
    manager = VariableManager(loader=loader, inventory=inventory)

    def variables(name: str) -> dict[str, Any]:
        raw = manager.get_vars(host=inventory.get_host(name), include_hostvars=False)
        # inside ansible-playbook (sealer.cluster.prepare), its -e values are in every host's: not the host's own
        raw = {k: v for k, v in raw.items() if k not in manager.extra_vars}
        try:
            templated = Templar(loader=loader, variables=raw).template(
                {k: v for k, v in raw.items() if k not in _ANSIBLE_OWN}
            )
        except AnsibleError as err:
            raise ClusterfileError(f"{path}: host {name}: {str(err).splitlines()[0]}") from err
        return {str(k): _plain(v) for k, v in templated.items()}

    return inventory, variables


_JINJA = ("{{", "{%", "{#")


@contextlib.contextmanager
def _warnings_kept(into: list[str]) -> Iterator[None]:
    """Ansible's warnings (one per inventory plugin that failed, each several lines) kept in
    ``into`` instead of printed: sealer says in one line what the one that matters said."""
    from ansible.utils.display import Display

    display = Display()  # one instance per process: Ansible's modules print through it
    display.warning = lambda msg, *args, **kwargs: into.append(str(msg))
    try:
        yield
    finally:
        del display.warning  # the class's method again


_PLUGIN_FAILED = re.compile(r"Failed to parse .*? with (\w+) plugin: (.*)", re.DOTALL)
_ANSIBLE_TYPE = re.compile(r"\"?<class '[\w.]*\.Ansible(Sequence|Mapping|Unicode)'>\"?")


def _why(path: Path, warnings: list[str], err: Exception) -> str:
    """What the plugin for the file's kind (yaml for .yml/.yaml/.json, else ini) said, in one line."""
    said = {m.group(1): m.group(2) for w in warnings if (m := _PLUGIN_FAILED.search(w))}
    plugin = "yaml" if path.suffix in (".yml", ".yaml", ".json") else "ini"
    text = said.get(plugin) or next(iter(said.values()), "") or str(err)
    text = _ANSIBLE_TYPE.sub(lambda m: {"Sequence": "a list", "Mapping": "a mapping"}.get(m.group(1), "a string"), text)
    return " ".join(text.split())[:300] or "cannot be parsed"


def _plain(value: Any) -> Any:
    """Ansible's values (AnsibleUnicode, AnsibleUnsafeText from lookups and ``!unsafe``, and its
    other str, dict and list types) as plain ones, which sealer's own files can hold. An unsafe
    string is one Ansible must not template: where it holds Jinja it is wrapped in a raw block,
    so that the playbooks, which template sealer's inventory, read it as the operator's did."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, dict):
        return {_plain_str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    text = _plain_str(value)
    if getattr(value, "__UNSAFE__", False) and any(mark in text for mark in _JINJA):
        return "{% raw %}" + text.replace("{% endraw %}", "{% endraw %}{{ '{% endraw %}' }}{% raw %}") + "{% endraw %}"
    return text


def _plain_str(value: Any) -> str:
    """A str itself (AnsibleUnsafeText's str() is itself, which YAML's safe dumper refuses)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str.__str__(value) if isinstance(value, str) else str.__str__(str(value))


def _members(inventory: Any, groups: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for group in groups:
        if group in inventory.groups:
            names += [h.name for h in inventory.groups[group].get_hosts() if h.name not in names]
    return names


def _host(name: str, role: str, hv: dict[str, Any], defaults: SSHConfig, display: str) -> Host:
    where = f"{display}: host {name}"
    address = parse_address(str(hv.get("ansible_host") or hv.get("ansible_ssh_host") or name), where)
    port = parse_port(hv.get("ansible_port") or hv.get("ansible_ssh_port") or defaults.port, f"{where}: ansible_port")
    key = hv.get("ansible_ssh_private_key_file")
    password = next((str(hv[k]) for k in ("ansible_password", "ansible_ssh_pass") if hv.get(k)), None)
    ssh = SSHConfig(
        user=str(hv.get("ansible_user") or hv.get("ansible_ssh_user") or defaults.user),
        port=port,
        password=password if password is not None else defaults.password,
        pk=os.path.abspath(os.path.expanduser(str(key))) if key else defaults.pk,
    )
    # a ProxyJump in the host's ssh arguments is its bastion: sealer's own connections take it too
    jump, _ = take_proxy_jump(str(hv.get("ansible_ssh_common_args") or ""), f"{where}: ansible_ssh_common_args")
    if jump is not None:
        ssh = dataclasses.replace(ssh, bastion=parse_bastion(jump, f"{where}: ansible_ssh_common_args", ssh))
    own = {
        k: v
        for k, v in hv.items()
        if k not in _CONNECTION and k not in SEALER_OWNED and k not in _SECRET
        and not (k.startswith("ansible_") and k not in _PASSED_THROUGH)
    }  # fmt: skip
    return Host(address, role, ssh, own)


# Ansible's variables an operator sets that sealer's inventory passes on as they are
_PASSED_THROUGH = {"ansible_become", "ansible_become_user", "ansible_become_method", "ansible_become_flags",
                   "ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_python_interpreter"}  # fmt: skip
