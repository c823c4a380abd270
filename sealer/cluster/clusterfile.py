"""The cluster a user asks for: from ``-m/-n`` flags or a Clusterfile (``sealer.cloud/v2``).

Everything here is checked before any host is contacted: addresses, duplicates, a host in
two roles, unknown fields (named with their file and line).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from sealer.cluster.config_docs import ConfigDoc, parse_config
from sealer.cluster.documents import (
    METADATA,
    Document,
    TextOrMapping,
    check_api_version,
    check_node,
    kind_of,
    line_of,
    node_at,
    split_documents,
    value_of,
)
from sealer.cluster.env import escape_template, host_env, parse_env
from sealer.cluster.kubeadm_schema import KINDS
from sealer.cluster.plugins import Plugin, check_addresses, parse_plugin
from sealer.errors import ClusterfileError
from sealer.input_limits import read_limited
from sealer.names import check_name
from sealer.oci.reference import Reference

API_VERSION = "sealer.cloud/v2"
# how first deliveries of the rootfs go out (sealer/cluster/swarm.py says what each means)
DISTRIBUTIONS = ("rsync", "swarm", "auto")
KUBEADM_GROUPS = ("kubeadm.k8s.io", "kubelet.config.k8s.io", "kubeproxy.config.k8s.io")
ROLES = ("master", "node")


@dataclass(frozen=True)
class Bastion:
    """A jump host: every connection to the hosts behind it (sealer's own, Ansible's, rsync's)
    is carried by its sshd. It logs in with a key only: ssh's ProxyCommand, which Ansible and
    rsync run, has no way to be given a password that does not show in a process listing."""

    address: str
    user: str = "root"
    port: int = 22
    pk: str | None = None

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.user}@{host}:{self.port}"


@dataclass(frozen=True)
class SSHConfig:
    user: str = "root"
    port: int = 22
    password: str | None = field(default=None, repr=False)
    pk: str | None = None
    pk_password: str | None = field(default=None, repr=False)
    bastion: Bastion | None = None

    def merged(self, other: dict[str, Any]) -> SSHConfig:
        return replace(self, **{k: v for k, v in other.items() if v is not None})


@dataclass(frozen=True)
class Host:
    address: str
    role: str
    ssh: SSHConfig
    # an operator's own Ansible variables for the host (from an inventory file, -i)
    vars: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # the host's own env (hosts[].env): in place of the cluster's values for this host
    env: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Cluster:
    name: str
    image: Reference
    ssh: SSHConfig
    hosts: list[Host]
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    registry: str | None = None
    registry_username: str | None = None
    registry_password: str | None = field(default=None, repr=False)
    registry_tls: bool = False  # serve the registry over TLS with a certificate of the cluster's own CA
    kubeadm_docs: list[dict[str, Any]] = field(default_factory=list)
    distribution: str = "auto"  # how first deliveries of the rootfs go out: rsync, swarm or auto
    # sudo's password an inventory gives (ansible_become_password): in memory only, never saved
    become_password: str | None = field(default=None, repr=False, compare=False)
    configs: list[ConfigDoc] = field(default_factory=list)  # kind: Config, in document order
    plugins: list[Plugin] = field(default_factory=list)  # kind: Plugin, in document order
    app_cmds: list[str] | None = None  # kind: Application's spec.cmds, in place of the image's CMDs

    def env_of(self, host: Host) -> dict[str, str]:
        """The env a host's templates and scripts see: the cluster's, with the host's own values."""
        return host_env(self.env, host.env)

    def env_groups(self) -> list[tuple[dict[str, str], list[Host]]]:
        """The hosts grouped by the env they see, in host order: one rendering of the rootfs's
        templates per group (a single group when no host has env of its own)."""
        groups: list[tuple[dict[str, str], list[Host]]] = []
        for host in self.hosts:
            env = self.env_of(host)
            group = next((g for g in groups if g[0] == env), None)
            if group is None:
                groups.append((env, [host]))
            else:
                group[1].append(host)
        return groups

    @property
    def masters(self) -> list[Host]:
        return [h for h in self.hosts if h.role == "master"]

    @property
    def registry_host(self) -> str:
        return self.registry or self.masters[0].address

    @property
    def registry_hosts(self) -> list[str]:
        """The hosts that serve the registry, the registry host first: the one the Clusterfile
        names, else every master (each a replica of the same tree; docs/ha.md)."""
        return [self.registry] if self.registry else [h.address for h in self.masters]


def parse_address(text: str, where: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError as err:
        raise ClusterfileError(f"{where}: {text!r} is not an IP address") from err


def parse_bastion(text: str, where: str, ssh: SSHConfig) -> Bastion:
    """``[user@]address[:port]`` (an IPv6 address with a port in brackets); the user and key
    default to the hosts' own (``ssh``)."""
    text = text.strip()
    if "," in text:
        raise ClusterfileError(f"{where} {text!r}: one bastion only (a chain of jump hosts is not supported)")
    user, at, rest = text.partition("@")
    if not at:
        user, rest = ssh.user, text
    if not user:
        raise ClusterfileError(f"{where} {text!r} has an empty user")
    port: int | str = 22
    if rest.startswith("["):
        address, _, after = rest[1:].partition("]")
        if after:
            port = after[1:] if after.startswith(":") else "?"
    elif rest.count(":") == 1:
        address, _, port = rest.partition(":")
    else:
        address = rest
    try:
        address = parse_address(address, where)
    except ClusterfileError as err:
        raise ClusterfileError(f"{where} {text!r} is not an IP address ([user@]address[:port])") from err
    return Bastion(address, user, parse_port(port, f"{where} port"), ssh.pk)


def parse_address_list(text: str, where: str) -> list[str]:
    """``-m 10.0.0.1,10.0.0.2`` (ranges like ``10.0.0.1-10.0.0.3`` too)."""
    out: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ClusterfileError(f"{where}: empty address in {text!r}")
        if "-" in item:
            first_text, last_text = item.split("-", 1)
            first = ipaddress.ip_address(parse_address(first_text, where))
            last = ipaddress.ip_address(parse_address(last_text, where))
            if first.version != last.version or not 0 <= int(last) - int(first) <= 1024:
                raise ClusterfileError(f"{where}: bad address range {item!r}")
            out.extend(str(ipaddress.ip_address(i)) for i in range(int(first), int(last) + 1))
        else:
            out.append(parse_address(item, where))
    return out


def check_hosts(hosts: list[Host]) -> None:
    seen: dict[str, str] = {}
    problems = []
    for host in hosts:
        if host.address in seen:
            if seen[host.address] != host.role:
                problems.append(f"{host.address} is both {seen[host.address]} and {host.role}")
            else:
                problems.append(f"{host.address} is listed twice as {host.role}")
        seen[host.address] = host.role
    if not any(h.role == "master" for h in hosts):
        problems.append("a cluster needs at least one master")
    if problems:
        raise ClusterfileError("; ".join(problems))


def from_flags(
    image: str, masters: str, nodes: str | None, ssh: SSHConfig, name: str, registry: str | None = None
) -> Cluster:
    hosts = [Host(a, "master", ssh) for a in parse_address_list(masters, "-m")]
    if nodes:
        hosts += [Host(a, "node", ssh) for a in parse_address_list(nodes, "-n")]
    check_hosts(hosts)
    return Cluster(check_name(name, "cluster"), Reference.parse(image), ssh, hosts, registry=registry)


# ---- the Clusterfile ---------------------------------------------------------------------

_SSH_KEYS = {"user": "user", "passwd": "password", "pk": "pk", "pkPasswd": "pk_password", "port": "port"}


_BASTION = TextOrMapping({"host": object, "user": object, "port": object, "pk": object})
_SSH_SCHEMA: dict[str, Any] = {**{k: object for k in _SSH_KEYS}, "bastion": _BASTION}
_SCHEMA: dict[str, Any] = {
    "apiVersion": str,
    "kind": str,
    "metadata": METADATA,
    "spec": {
        "image": str,
        "ssh": _SSH_SCHEMA,
        "hosts": [{"ips": [str], "roles": [str], "ssh": _SSH_SCHEMA, "env": [str]}],
        "env": [str],
        "cmd": [str],
        "registry": object,  # a host address, or {host, username, password}
        "distribution": str,  # rsync, swarm or auto
    },
    "status": object,
}
_CONFIG_SCHEMA: dict[str, Any] = {
    "apiVersion": str,
    "kind": str,
    "metadata": METADATA,
    "spec": {"path": str, "data": object, "strategy": str, "process": str},
}
_APPLICATION_SCHEMA: dict[str, Any] = {"apiVersion": str, "kind": str, "metadata": METADATA, "spec": {"cmds": [str]}}


def _ssh_from(data: Any, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, attr in _SSH_KEYS.items():
        if data and data.get(key) is not None:
            value = data[key]
            if attr != "port":
                out[attr] = str(value)
                continue
            out[attr] = parse_port(value, f"{where}: ssh.port")
    return out


def _with_bastion(ssh: SSHConfig, data: Any, where: str) -> SSHConfig:
    """``ssh`` with the bastion ``data`` names (``ssh.bastion``: text or a mapping), if any."""
    value = data.get("bastion") if data else None
    if value is None:
        return ssh
    if not isinstance(value, dict):
        return replace(ssh, bastion=parse_bastion(str(value), where, ssh))
    if not value.get("host"):
        raise ClusterfileError(f"{where}.host is required")
    defaults = replace(ssh, pk=str(value["pk"]) if value.get("pk") else ssh.pk)
    bastion = parse_bastion(str(value["host"]), f"{where}.host", defaults)
    user = str(value["user"]) if value.get("user") else bastion.user
    port = parse_port(value["port"], f"{where}.port") if value.get("port") is not None else bastion.port
    return replace(ssh, bastion=replace(bastion, user=user, port=port))


def parse_port(value: Any, what: str) -> int:
    """An SSH port as a user wrote it (``what`` names where), checked."""
    try:
        port = int(value)
    except (TypeError, ValueError) as err:
        raise ClusterfileError(f"{what} {value!r} is not a number") from err
    if not 0 < port < 65536:
        raise ClusterfileError(f"{what} {port} is out of range")
    return port


def parse_clusterfile(path: Path, defaults: Cluster | None = None) -> Cluster:
    """Parse a Clusterfile; ``defaults`` (the image's ClusterFile annotation) fills what it omits.

    The Cluster document is read first; the others (Config, Plugin, Application, kubeadm's)
    are rendered with the cluster's env (``{{ .KEY }}``) before they are read."""
    display = str(path)
    cluster_doc, others = _documents(path, display)
    node = cluster_doc.compose(display)
    assert node is not None  # split_documents keeps documents with content only
    check_node(node, _SCHEMA, "", display)
    data = value_of(node)
    line = node.start_mark.line + 1
    if data.get("apiVersion") != API_VERSION:
        raise ClusterfileError(f"{display}:{line}: apiVersion must be {API_VERSION}, not {data.get('apiVersion')!r}")
    spec = data.get("spec") or {}
    name = (data.get("metadata") or {}).get("name") or (defaults.name if defaults else "my-cluster")
    check_name(str(name), "cluster", f"{display}:{line_of(node, 'metadata', 'name') or line}")
    image_text = spec.get("image") or (str(defaults.image) if defaults else None)
    if not image_text:
        raise ClusterfileError(f"{display}:{line}: spec.image is required")
    ssh = (defaults.ssh if defaults else SSHConfig()).merged(_ssh_from(spec.get("ssh"), f"{display}:{line}"))
    bastion_line = line_of(node, "spec", "ssh", "bastion") or line
    ssh = _with_bastion(ssh, spec.get("ssh"), f"{display}:{bastion_line}: spec.ssh.bastion")
    hosts = _hosts(spec, node, ssh, display)
    if not hosts:
        raise ClusterfileError(f"{display}:{line}: spec.hosts lists no host")
    registry, reg_user, reg_password, reg_tls = _registry_spec(spec.get("registry"), display)
    if registry is not None and registry not in {h.address for h in hosts}:
        raise ClusterfileError(f"{display}: spec.registry {registry} is not one of the cluster's hosts")
    distribution = str(spec.get("distribution") or "auto")
    if distribution not in DISTRIBUTIONS:
        where = f"{display}:{line_of(node, 'spec', 'distribution') or line}"
        raise ClusterfileError(f"{where}: spec.distribution is one of {', '.join(DISTRIBUTIONS)}, not {distribution!r}")
    cluster = Cluster(
        name=str(name),
        image=Reference.parse(str(image_text)),
        ssh=ssh,
        hosts=hosts,
        env=parse_env(_env_entries(node, ("spec", "env"), display, "spec.env")),
        cmd=[str(c) for c in spec.get("cmd") or []],
        registry=registry,
        registry_username=reg_user,
        registry_password=reg_password,
        registry_tls=reg_tls,
        distribution=distribution,
    )
    for doc in others:
        _read_document(cluster, doc.rendered(cluster.env, display), display)
    return cluster


def _documents(path: Path, display: str) -> tuple[Document, list[Document]]:
    """The file's one Cluster document and its others, in file order."""
    try:
        text = read_limited(path, display).decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ClusterfileError(f"{display}: cannot read: {err}") from err
    docs = split_documents(text)
    cluster_docs = [d for d in docs if d.kind == "Cluster"]
    if len(cluster_docs) != 1:
        raise ClusterfileError(f"{display}: expected exactly one document of kind Cluster, found {len(cluster_docs)}")
    return cluster_docs[0], [d for d in docs if d is not cluster_docs[0]]


def _read_document(cluster: Cluster, doc: Document, display: str) -> None:
    """One document beside the Cluster (rendered): a Config, Plugin, Application or kubeadm's."""
    node = doc.compose(display)
    if node is None:
        return
    kind = kind_of(node)
    where = f"{display}:{node.start_mark.line + 1}"
    if kind == "Config":
        check_node(node, _CONFIG_SCHEMA, "", display)
        check_api_version(node, display, kind)
        path_where = f"{display}:{line_of(node, 'spec', 'path') or node.start_mark.line + 1}"
        cluster.configs.append(parse_config(value_of(node), where, path_where))
    elif kind == "Plugin":
        plugin = parse_plugin(node, display)
        if any(p.name == plugin.name for p in cluster.plugins):
            raise ClusterfileError(f"{where}: a second plugin named {plugin.name}")
        check_addresses(plugin, [h.address for h in cluster.hosts])
        cluster.plugins.append(plugin)
    elif kind == "Application":
        check_node(node, _APPLICATION_SCHEMA, "", display)
        check_api_version(node, display, kind)
        if cluster.app_cmds is not None:
            raise ClusterfileError(f"{where}: a second document of kind Application")
        cluster.app_cmds = [str(c) for c in (value_of(node).get("spec") or {}).get("cmds") or []]
    else:
        value = value_of(node)
        api = str(value.get("apiVersion", "")) if isinstance(value, dict) else ""
        if api.split("/")[0] not in KUBEADM_GROUPS:
            raise ClusterfileError(
                f"{where}: a document of kind {kind} ({api or 'no apiVersion'}) is none of Cluster, Config, "
                "Plugin, Application or a kubeadm configuration"
            )
        kinds = KINDS[api.split("/")[0]]
        if (kind or "") not in kinds:
            raise ClusterfileError(f"{where}: {api} has no kind {kind!r} (kinds: {', '.join(kinds)})")
        schema = kinds[kind or ""]
        if schema is not None:
            check_node(node, schema, "", display)
        cluster.kubeadm_docs.append(value)


def _env_entries(node: yaml.Node | None, keys: tuple[str, ...], display: str, what: str) -> list[tuple[str, str]]:
    """The ``KEY=value`` entries of the list at ``keys``, each with its file:line."""
    found = node_at(node, *keys) if node is not None else None
    if not isinstance(found, yaml.SequenceNode):
        return []
    return [(str(value_of(item)), f"{display}:{item.start_mark.line + 1}: {what}") for item in found.value]


def _hosts(spec: dict[str, Any], node: yaml.Node, ssh: SSHConfig, display: str) -> list[Host]:
    hosts: list[Host] = []
    group_nodes = node_at(node, "spec", "hosts")
    for index, group in enumerate(spec.get("hosts") or []):
        roles = group.get("roles") or []
        if len(roles) != 1 or roles[0] not in ROLES:
            raise ClusterfileError(f"{display}: host group {group.get('ips')} needs one role: master or node")
        group_ssh = ssh.merged(_ssh_from(group.get("ssh"), display))
        group_ssh = _with_bastion(group_ssh, group.get("ssh"), f"{display}: spec.hosts ssh.bastion")
        group_node = group_nodes.value[index] if isinstance(group_nodes, yaml.SequenceNode) else None
        env = parse_env(_env_entries(group_node, ("env",), display, "spec.hosts[].env"))
        for ip in group.get("ips") or []:
            hosts.append(Host(parse_address(str(ip), display), roles[0], group_ssh, env=dict(env)))
    check_hosts(hosts)
    return hosts


# the cluster's own registry user, which containerd on every host pulls with (htpasswd on)
REGISTRY_PULL_USER = "sealer-pull"


def _registry_spec(value: Any, display: str) -> tuple[str | None, str | None, str | None, bool]:
    """``spec.registry``: a host address, or ``{host, username, password, tls}``: htpasswd
    authentication, and TLS with a certificate from the cluster's own CA."""
    if value is None:
        return None, None, None, False
    if not isinstance(value, dict):
        return parse_address(str(value), display), None, None, False
    unknown = set(value) - {"host", "username", "password", "tls"}
    if unknown:
        raise ClusterfileError(f"{display}: unknown field 'spec.registry.{sorted(unknown)[0]}'")
    host = parse_address(str(value["host"]), display) if value.get("host") else None
    user = str(value["username"]) if value.get("username") else None
    password = str(value["password"]) if value.get("password") is not None else None
    if password is not None and not user:
        raise ClusterfileError(f"{display}: spec.registry.password needs spec.registry.username")
    if user == REGISTRY_PULL_USER:
        raise ClusterfileError(f"{display}: spec.registry.username {user} is sealer's own pull user")
    tls = value.get("tls", False)
    if not isinstance(tls, bool):
        raise ClusterfileError(f"{display}: spec.registry.tls is true or false, not {tls!r}")
    return host, user, password, tls


def to_clusterfile(cluster: Cluster) -> str:
    """The Clusterfile a run used, saved with the cluster's state (never with a password)."""
    spec: dict[str, Any] = {
        "image": str(cluster.image),
        "ssh": {"user": cluster.ssh.user, "port": str(cluster.ssh.port)},
        "hosts": _host_groups(cluster),
    }
    if cluster.ssh.pk:
        spec["ssh"]["pk"] = cluster.ssh.pk
    if cluster.ssh.bastion:
        spec["ssh"]["bastion"] = _bastion_spec(cluster.ssh.bastion)
    if cluster.env:
        spec["env"] = [f"{k}={v}" for k, v in cluster.env.items()]
    if cluster.cmd:
        spec["cmd"] = list(cluster.cmd)
    if cluster.registry or cluster.registry_username or cluster.registry_tls:
        spec["registry"] = _saved_registry(cluster)
    if cluster.distribution != "auto":
        spec["distribution"] = cluster.distribution
    doc = {"apiVersion": API_VERSION, "kind": "Cluster", "metadata": {"name": cluster.name}, "spec": spec}
    others: list[Any] = [c.to_document() for c in cluster.configs] + [p.to_document() for p in cluster.plugins]
    if cluster.app_cmds is not None:
        others.append(
            {
                "apiVersion": "sealer.io/v2",
                "kind": "Application",
                "metadata": {"name": cluster.name},
                "spec": {"cmds": cluster.app_cmds},
            }
        )
    # the other documents are rendered again when the file is read: braces they hold stay braces
    return yaml.safe_dump_all([doc, *escape_template(others), *escape_template(cluster.kubeadm_docs)], sort_keys=False)


def _host_groups(cluster: Cluster) -> list[dict[str, Any]]:
    # hosts behind a bastion other than the cluster's (an inventory's, per host) keep theirs
    # and hosts with env of their own keep it
    by_role: dict[tuple[str, Bastion | None, tuple[tuple[str, str], ...]], list[str]] = {}
    for host in cluster.hosts:
        by_role.setdefault((host.role, host.ssh.bastion, tuple(host.env.items())), []).append(host.address)
    groups: list[dict[str, Any]] = []
    for (role, bastion, env), ips in by_role.items():
        groups.append({"ips": ips, "roles": [role]})
        if bastion != cluster.ssh.bastion and bastion is not None:
            groups[-1]["ssh"] = {"bastion": _bastion_spec(bastion)}
        if env:
            groups[-1]["env"] = [f"{k}={v}" for k, v in env]
    return groups


def _saved_registry(cluster: Cluster) -> dict[str, str | bool]:
    # the password is never written back: its bcrypt hash stays in the cluster's htpasswd
    registry: dict[str, str | bool] = {}
    if cluster.registry:
        registry["host"] = cluster.registry
    if cluster.registry_username:
        registry["username"] = cluster.registry_username
    if cluster.registry_tls:
        registry["tls"] = True
    return registry


def _bastion_spec(bastion: Bastion) -> str | dict[str, str]:
    """A bastion as the Clusterfile writes it: ``user@address:port``, with its key if it has one."""
    if bastion.pk is None:
        return str(bastion)
    return {"host": str(bastion), "pk": bastion.pk}
