"""``kind: Plugin``: a step of the operator's (or the image's) at a phase of a cluster operation.

``spec.type`` is what it does (``SHELL``, ``HOSTNAME``, ``LABEL``, ``TAINT``, ``CLUSTERCHECK``),
``spec.action`` the phases it runs in (sealer's names, joined with ``|``), ``spec.on`` the hosts
(empty: every host; ``master``, ``node``, ``master0``, addresses, ranges ``A-B``, or a node label
``k=v`` once the nodes exist; several joined with ``|``), ``spec.data`` its script or lines.
Everything here is checked while the Clusterfile is read, before any host is touched.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sealer.cluster.documents import (
    METADATA,
    check_api_version,
    check_node,
    kind_of,
    node_at,
    split_documents,
    text_line,
)
from sealer.errors import ClusterfileError

TYPES = ("SHELL", "HOSTNAME", "LABEL", "TAINT", "CLUSTERCHECK")
_TYPE_SPELLINGS = {"Taint": "TAINT"}  # sealer 0.8.6 registered its taint plugin as "Taint"
PHASES = (
    "Originally",
    "PreInit",
    "PostInit",
    "PreJoin",
    "PostJoin",
    "PreGuest",
    "PostInstall",
    "PreClean",
    "PostClean",
    "PreUpgrade",
    "PostUpgrade",
)
# the phases in which every node of the cluster exists (a label selector, LABEL, TAINT)
NODES_EXIST = ("PostJoin", "PreGuest", "PostInstall", "PreClean", "PreUpgrade", "PostUpgrade")
PHASES_OF_TYPE: dict[str, tuple[str, ...]] = {
    "SHELL": PHASES,
    "HOSTNAME": ("Originally", "PreInit", "PreJoin"),  # before kubeadm names the node
    "LABEL": NODES_EXIST,
    "TAINT": NODES_EXIST,
    "CLUSTERCHECK": ("PostInit", *NODES_EXIST),
}

# Each operation's steps in order: a phase (plugins run) or one of sealer's own steps (``@``).
OPERATIONS: dict[str, tuple[str, ...]] = {
    "create": (
        "Originally",
        "@deliver",
        "PreInit",
        "@init",
        "PostInit",
        "@join",
        "PreGuest",
        "@cmds",
        "PostInstall",
    ),
    "join": ("PreJoin", "@join", "PostJoin"),
    "delete": ("PreClean", "@reset", "PostClean"),
    "upgrade": ("PreUpgrade", "@upgrade", "PostUpgrade"),
}
# a join's and a delete's phases act on the hosts joined or deleted, not on the whole cluster
SCOPED_PHASES = ("PreJoin", "PostJoin", "PreClean", "PostClean")

SPEC_SCHEMA: dict[str, Any] = {"type": str, "action": str, "on": str, "data": str}
SCHEMA: dict[str, Any] = {"apiVersion": str, "kind": str, "metadata": METADATA, "spec": SPEC_SCHEMA}
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


@dataclass(frozen=True)
class Selector:
    kind: str  # all, master, node, master0, addresses, label
    addresses: tuple[str, ...] = ()
    label: str = ""  # k=v[,k2=v2]


@dataclass(frozen=True)
class Plugin:
    name: str
    type: str
    actions: tuple[str, ...]
    on: tuple[Selector, ...]
    data: str = field(repr=False)  # a script with the env rendered in: never in a log line
    on_text: str = ""
    where: str = ""  # file:line of the document
    data_line: int = 0  # the file's line of the data's first line
    display: str = ""  # the file, for a data line's errors

    def line(self, index: int) -> str:
        """``file:line`` of the data's ``index``-th line (0-based)."""
        return f"{self.display}:{self.data_line + index}" if self.data_line else self.where

    def to_document(self) -> dict[str, Any]:
        spec = {"type": self.type, "action": "|".join(self.actions), "on": self.on_text, "data": self.data}
        if not self.on_text:
            del spec["on"]
        return {"apiVersion": "sealer.cloud/v2", "kind": "Plugin", "metadata": {"name": self.name}, "spec": spec}


@dataclass(frozen=True)
class HostLike:
    """What selection needs of a host (a Clusterfile ``Host`` fits)."""

    address: str
    role: str
    labels: Mapping[str, str] = field(default_factory=dict)


# ---- parsing -----------------------------------------------------------------------------


def parse_plugin(node: yaml.Node, display: str) -> Plugin:
    """A ``kind: Plugin`` document (a composed node, for its lines) into a Plugin."""
    check_node(node, SCHEMA, "", display)
    check_api_version(node, display, "Plugin")
    value = yaml.safe_load(yaml.serialize(node))
    spec = value.get("spec") or {}
    where = f"{display}:{node.start_mark.line + 1}"
    name = str((value.get("metadata") or {}).get("name") or "")
    if not name:
        raise ClusterfileError(f"{where}: a Plugin needs metadata.name")
    kind = str(spec.get("type") or "")
    kind = _TYPE_SPELLINGS.get(kind, kind)
    if kind not in TYPES:
        raise ClusterfileError(f"{where}: plugin {name}: spec.type is one of {', '.join(TYPES)}, not {kind!r}")
    actions = tuple(a.strip() for a in str(spec.get("action") or "").split("|") if a.strip())
    if not actions:
        raise ClusterfileError(f"{where}: plugin {name}: spec.action names no phase ({', '.join(PHASES)})")
    for action in actions:
        if action not in PHASES:
            raise ClusterfileError(f"{where}: plugin {name}: spec.action {action!r} is not one of {', '.join(PHASES)}")
        if action not in PHASES_OF_TYPE[kind]:
            raise ClusterfileError(
                f"{where}: plugin {name}: a {kind} plugin runs in {', '.join(PHASES_OF_TYPE[kind])}, not {action}"
            )
    # YAML 1.1 reads the key "on" as true: the field is taken from the node, as written
    on_node = node_at(node, "spec", "on")
    on_text = ""
    if isinstance(on_node, yaml.ScalarNode) and not on_node.tag.endswith(":null"):
        on_text = str(on_node.value).strip()
    selectors = parse_on(on_text, f"{where}: plugin {name}: spec.on")
    for action in actions:
        check_selectors(selectors, action, f"{where}: plugin {name}")
    data_node = node_at(node, "spec", "data")
    plugin = Plugin(
        name,
        kind,
        actions,
        selectors,
        str(spec.get("data") or ""),
        on_text,
        where,
        text_line(data_node) if data_node is not None else 0,
        display,
    )
    _check_data(plugin)
    return plugin


def _check_data(plugin: Plugin) -> None:
    if plugin.type == "HOSTNAME":
        hostnames(plugin)
    elif plugin.type == "LABEL":
        labels(plugin)
    elif plugin.type == "TAINT":
        taints(plugin)
    elif plugin.type == "SHELL" and not plugin.data.strip():
        raise ClusterfileError(f"{plugin.where}: plugin {plugin.name}: a SHELL plugin's spec.data is its script")


def parse_addresses(text: str, where: str) -> tuple[str, ...]:
    """A comma list of IP addresses and IPv4 ranges ``A-B``."""
    out: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        try:
            if "-" in item:
                first_text, last_text = item.split("-", 1)
                first, last = ipaddress.IPv4Address(first_text.strip()), ipaddress.IPv4Address(last_text.strip())
                if not 0 <= int(last) - int(first) <= 1024:
                    raise ClusterfileError(f"{where}: bad address range {item!r}")
                out.extend(str(ipaddress.IPv4Address(i)) for i in range(int(first), int(last) + 1))
            else:
                out.append(str(ipaddress.ip_address(item)))
        except ValueError as err:
            raise ClusterfileError(f"{where}: {item!r} is not an IP address or an IPv4 range A-B") from err
    return tuple(out)


def parse_on(text: str, where: str) -> tuple[Selector, ...]:
    """``spec.on``: selectors joined with ``|`` (sealer 0.8.6's), each a role, master0, a node
    label (``k=v``, commas between several) or addresses (commas, ranges)."""
    if not text:
        return (Selector("all"),)
    selectors: list[Selector] = []
    for raw in text.split("|"):
        part = raw.strip()
        if part in ("master", "node", "master0"):
            selectors.append(Selector(part))
        elif "=" in part:
            for pair in part.split(","):
                _label_pair(pair.strip(), where)
            selectors.append(Selector("label", label=part))
        elif part:
            selectors.append(Selector("addresses", parse_addresses(part, where)))
        else:
            raise ClusterfileError(f"{where} {text!r} has an empty selector")
    return tuple(selectors)


def check_selectors(selectors: Iterable[Selector], phase: str, where: str) -> None:
    """Refuse a node label selector in a phase before the nodes exist."""
    for selector in selectors:
        if selector.kind == "label" and phase not in NODES_EXIST:
            raise ClusterfileError(
                f"{where}: on {selector.label!r} selects nodes by label, which exist only in "
                f"{', '.join(NODES_EXIST)}, not in {phase}"
            )


def check_addresses(plugin: Plugin, addresses: Iterable[str]) -> None:
    """Refuse an address in ``spec.on`` or in the data that is not one of the cluster's."""
    known = set(addresses)
    named = [a for s in plugin.on for a in s.addresses]
    if plugin.type == "HOSTNAME":
        named += list(hostnames(plugin))
    elif plugin.type == "LABEL":
        named += [a for a, _ in labels(plugin)]
    elif plugin.type == "TAINT":
        named += [a for t in taints(plugin) for a in t.addresses]
    unknown = [a for a in named if a not in known]
    if unknown:
        raise ClusterfileError(f"{plugin.where}: plugin {plugin.name}: {unknown[0]} is not a host of the cluster")


def load_image_plugins(rootfs: Path, env: Mapping[str, str] | None = None) -> list[Plugin]:
    """The image's own plugins: every document of ``plugins/*.yaml`` (and ``.yml``), files in
    name order, documents in file order; rendered with ``env`` first when it is given."""
    base = rootfs / "plugins"
    if base.is_symlink() or not base.is_dir():
        return []
    found: list[Plugin] = []
    for path in sorted(p for p in base.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
        display = path.relative_to(rootfs).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ClusterfileError(f"{display}: cannot read: {err}") from err
        for doc in split_documents(text):
            node = (doc.rendered(env, display) if env is not None else doc).compose(display)
            if node is None:
                continue
            if kind_of(node) != "Plugin":
                raise ClusterfileError(
                    f"{display}:{doc.first_line}: a document of kind {kind_of(node)} is not a Plugin"
                )
            found.append(parse_plugin(node, display))
    return found


# ---- which plugins, on which hosts -------------------------------------------------------


def plugins_for_phase(phase: str, image: Sequence[Plugin], clusterfile: Sequence[Plugin]) -> list[Plugin]:
    """The plugins to run in ``phase``, in order: the image's first (its files in name order,
    each in document order), then the Clusterfile's in document order. A Clusterfile plugin
    named as one of the image's takes its place: the image's does not run."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase}")
    overridden = {p.name for p in clusterfile}
    ordered = [p for p in image if p.name not in overridden] + list(clusterfile)
    return [p for p in ordered if phase in p.actions]


def operation_steps(
    operation: str, image: Sequence[Plugin], clusterfile: Sequence[Plugin]
) -> list[tuple[str, list[Plugin]]]:
    """An operation's steps in order, each with the plugins it runs: a phase with its plugins
    (``plugins_for_phase``), or one of sealer's own steps (``@init``...) with none."""
    return [
        (step, [] if step.startswith("@") else plugins_for_phase(step, image, clusterfile))
        for step in OPERATIONS[operation]
    ]


def select_hosts(
    plugin: Plugin,
    phase: str,
    hosts: Sequence[HostLike],
    scope: Iterable[str] | None = None,
    node_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """The addresses a plugin runs on in ``phase``, in the cluster's host order.

    ``hosts`` are the cluster's (masters first: the first master is master0), ``scope`` the
    hosts of the operation (a join's joined hosts, a delete's deleted ones), ``node_labels``
    each node's labels by address, read through the API in the phases the nodes exist."""
    check_selectors(plugin.on, phase, f"{plugin.where}: plugin {plugin.name}")
    chosen: set[str] = set()
    masters = [h.address for h in hosts if h.role == "master"]
    for selector in plugin.on:
        if selector.kind == "all":
            chosen.update(h.address for h in hosts)
        elif selector.kind in ("master", "node"):
            chosen.update(h.address for h in hosts if h.role == selector.kind)
        elif selector.kind == "master0":
            chosen.update(masters[:1])
        elif selector.kind == "addresses":
            chosen.update(selector.addresses)
        else:
            wanted = dict(_label_pair(p.strip(), plugin.where) for p in selector.label.split(","))
            labels_now = node_labels or {}
            chosen.update(a for a, have in labels_now.items() if all(have.get(k) == v for k, v in wanted.items()))
    in_scope = None if scope is None or phase not in SCOPED_PHASES else set(scope)
    return [h.address for h in hosts if h.address in chosen and (in_scope is None or h.address in in_scope)]


def shell_workdir(phase: str, rootfs_dir: str) -> str | None:
    """Where a SHELL plugin runs: the cluster's rootfs directory, except in Originally (before
    the rootfs is delivered: the login user's home)."""
    return None if phase == "Originally" else rootfs_dir


# ---- HOSTNAME, LABEL, TAINT data ---------------------------------------------------------


def _data_lines(plugin: Plugin) -> list[tuple[int, str]]:
    return [
        (i, line.strip())
        for i, line in enumerate(plugin.data.splitlines())
        if line.strip() and not line.strip().startswith("#")
    ]


def hostnames(plugin: Plugin) -> dict[str, str]:
    """HOSTNAME's ``IP name`` lines: address to host name."""
    out: dict[str, str] = {}
    for index, line in _data_lines(plugin):
        where = f"{plugin.line(index)}: plugin {plugin.name}"
        parts = line.split()
        if len(parts) != 2:
            raise ClusterfileError(f"{where}: {line!r} is not 'IP name'")
        address = _one_address(parts[0], where)
        if not _HOSTNAME.fullmatch(parts[1]):
            raise ClusterfileError(f"{where}: {parts[1]!r} is not a host name (lower-case letters, digits, - and .)")
        if address in out:
            raise ClusterfileError(f"{where}: {address} is named twice")
        out[address] = parts[1]
    return out


def _one_address(text: str, where: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as err:
        raise ClusterfileError(f"{where}: {text!r} is not an IP address") from err


def _label_pair(text: str, where: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    prefix, slash, name = key.rpartition("/")
    good_prefix = not slash or (0 < len(prefix) <= 253 and _HOSTNAME.fullmatch(prefix) is not None)
    if not eq or not _LABEL_NAME.fullmatch(name) or not good_prefix or not _LABEL_VALUE.fullmatch(value):
        raise ClusterfileError(f"{where}: {text!r} is not a node label key=value")
    return key, value


def labels(plugin: Plugin) -> list[tuple[str, dict[str, str]]]:
    """LABEL's ``IP k=v,k2=v2`` lines: (address, labels), addresses from comma lists and ranges."""
    out: list[tuple[str, dict[str, str]]] = []
    for index, line in _data_lines(plugin):
        where = f"{plugin.line(index)}: plugin {plugin.name}"
        parts = line.split()
        if len(parts) != 2:
            raise ClusterfileError(f"{where}: {line!r} is not 'IP k=v,k2=v2'")
        pairs = dict(_label_pair(p, where) for p in parts[1].split(","))
        out.extend((address, pairs) for address in parse_addresses(parts[0], where))
    return out


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str  # empty in a removal: every taint of the key

    def __str__(self) -> str:
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}" if self.effect else self.key


@dataclass(frozen=True)
class TaintChange:
    addresses: tuple[str, ...]
    taint: Taint
    remove: bool


def _parse_taint(text: str, where: str) -> tuple[Taint, bool]:
    remove = text.endswith("-")
    body = text[:-1] if remove else text
    kv, colon, effect = body.partition(":")
    key, _, value = kv.partition("=")
    if not colon and not remove:
        raise ClusterfileError(f"{where}: {text!r} needs an effect: key=value:Effect ({', '.join(EFFECTS)})")
    if colon and effect not in EFFECTS:
        raise ClusterfileError(f"{where}: taint effect {effect!r} is not one of {', '.join(EFFECTS)}")
    try:
        _label_pair(f"{key}={value}", where)
    except ClusterfileError as err:
        raise ClusterfileError(f"{where}: {text!r} is not a taint key=value:Effect") from err
    return Taint(key, value, effect), remove


def taints(plugin: Plugin) -> list[TaintChange]:
    """TAINT's ``IPs key=value:Effect`` lines (``key=value:Effect-``, ``key:Effect-`` or
    ``key-`` remove)."""
    out: list[TaintChange] = []
    for index, line in _data_lines(plugin):
        where = f"{plugin.line(index)}: plugin {plugin.name}"
        parts = line.split()
        if len(parts) != 2:
            raise ClusterfileError(f"{where}: {line!r} is not 'IPs key=value:Effect'")
        taint, remove = _parse_taint(parts[1], where)
        out.append(TaintChange(parse_addresses(parts[0], where), taint, remove))
    return out


# ---- kubectl -----------------------------------------------------------------------------


def label_commands(plugin: Plugin, node_names: Mapping[str, str], hosts: Iterable[str]) -> list[list[str]]:
    """``kubectl label`` argument lists for a LABEL plugin's lines about ``hosts`` (the addresses
    selected); ``node_names`` maps an address to its node's name."""
    selected = set(hosts)
    commands = []
    for address, pairs in labels(plugin):
        if address in selected:
            name = _node_name(plugin, node_names, address)
            commands.append(["kubectl", "label", "node", name, *(f"{k}={v}" for k, v in pairs.items()), "--overwrite"])
    return commands


def taint_commands(
    plugin: Plugin,
    node_names: Mapping[str, str],
    current: Mapping[str, Sequence[Taint]],
    hosts: Iterable[str],
) -> list[list[str]]:
    """``kubectl taint`` argument lists for a TAINT plugin's lines about ``hosts``, given each
    node's taints now (by address): a taint already there is not added again, one that is not
    there is not removed (kubectl refuses both), a new value for a key and effect overwrites."""
    selected = set(hosts)
    commands = []
    for change in taints(plugin):
        for address in change.addresses:
            if address not in selected:
                continue
            name = _node_name(plugin, node_names, address)
            have = list(current.get(address, ()))
            same_slot = [t for t in have if t.key == change.taint.key and change.taint.effect in ("", t.effect)]
            if change.remove:
                if same_slot:  # kubectl removes by key and effect: key:Effect- or key-
                    effect = f":{change.taint.effect}" if change.taint.effect else ""
                    commands.append(["kubectl", "taint", "node", name, f"{change.taint.key}{effect}-"])
            elif change.taint not in have:
                extra = ["--overwrite"] if same_slot else []
                commands.append(["kubectl", "taint", "node", name, str(change.taint), *extra])
    return commands


def _node_name(plugin: Plugin, node_names: Mapping[str, str], address: str) -> str:
    try:
        return node_names[address]
    except KeyError as err:
        raise ClusterfileError(f"{plugin.where}: plugin {plugin.name}: no node has the address {address}") from err


def nodes_by_address(nodes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``kubectl get nodes -o json`` by InternalIP: each node's name, labels, taints, readiness."""
    out: dict[str, dict[str, Any]] = {}
    for item in nodes.get("items") or []:
        status = item.get("status") or {}
        addresses = [a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"]
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        meta = item.get("metadata") or {}
        found = [
            Taint(str(t.get("key", "")), str(t.get("value", "") or ""), str(t.get("effect", "")))
            for t in (item.get("spec") or {}).get("taints") or []
        ]
        for address in addresses:
            out[str(address)] = {
                "name": meta.get("name", ""),
                "labels": dict(meta.get("labels") or {}),
                "taints": found,
                "ready": ready,
            }
    return out


def not_ready(nodes: Mapping[str, Any], addresses: Iterable[str]) -> list[str]:
    """CLUSTERCHECK: the addresses among ``addresses`` whose node is missing or not Ready."""
    known = nodes_by_address(nodes)
    return [a for a in addresses if not known.get(a, {}).get("ready")]
