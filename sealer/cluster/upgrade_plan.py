"""What ``sealer upgrade`` would do, worked out before any host is reached: the new image checked
against the cluster's (the same kind of image, every host's platform, the Kubernetes versions by
kubeadm's rules), and the order of the roll, per host.

An image says its Kubernetes version in its ``etc/kubeadm.yml`` (``ClusterConfiguration``'s
``kubernetesVersion``): that file is what ``kubeadm init`` initialised the cluster with and what a
base built with another ``KUBE_VERSION`` changes, so it is the version the image brings; labels
are optional and an image's tag is a name anyone may give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from sealer.cluster.clusterfile import Cluster
from sealer.cluster.prepare import read_from_layers
from sealer.errors import SealerError
from sealer.oci.platform import Platform
from sealer.store.image import Image
from sealer.store.layout import Store

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")
# kubectl named the flag for emptyDir data --delete-local-data before v1.20
EMPTYDIR_FLAG_SINCE = (1, 20)


def kube_version(store: Store, image: Image, platform: Platform) -> str:
    """The Kubernetes version ``image`` brings: its etc/kubeadm.yml's ``kubernetesVersion``."""
    raw = read_from_layers(store, image.for_platform(platform), "etc/kubeadm.yml")
    where = f"image {image.name} ({platform}): etc/kubeadm.yml"
    if raw is None:
        raise SealerError(f"image {image.name} ({platform}) has no etc/kubeadm.yml: its Kubernetes version is unknown")
    try:
        docs = [d for d in yaml.safe_load_all(raw) if isinstance(d, dict)]
    except yaml.YAMLError as err:
        raise SealerError(f"{where} is not valid YAML: {err}") from err
    found = [str(d.get("kubernetesVersion") or "") for d in docs if d.get("kind") == "ClusterConfiguration"]
    if not found or not _VERSION.match(found[0]):
        raise SealerError(f"{where} has no ClusterConfiguration kubernetesVersion like v1.20.15")
    return found[0]


def version_tuple(text: str) -> tuple[int, int, int]:
    match = _VERSION.match(text)
    if match is None:
        raise SealerError(f"{text!r} is not a Kubernetes version like v1.20.15")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))


def kubeadm_runs(old: str, new: str, new_image: str) -> bool:
    """Whether the upgrade calls kubeadm (the versions differ); refused by kubeadm's version skew
    policy: no downgrade, and one minor version at a time."""
    o, n = version_tuple(old), version_tuple(new)
    if n == o:
        return False
    skew = "kubeadm's version skew policy"
    if n < o:
        raise SealerError(
            f"{new_image} brings Kubernetes {new}, older than the cluster's {old}: refused, {skew} allows no downgrade"
        )
    if n[0] != o[0] or n[1] > o[1] + 1:
        step = f"v{o[0]}.{o[1] + 1}"
        raise SealerError(
            f"{new_image} brings Kubernetes {new}, more than one minor version past the cluster's {old}: refused, "
            f"{skew} upgrades one minor version at a time; upgrade to an image of {step} first"
        )
    return True


def image_kind(image: Image) -> str:
    """``base`` (built FROM scratch) or ``app`` (on a base)."""
    return "app" if any(p.config.base_layers for p in image.platforms) else "base"


def check_platforms(image: Image, platforms: dict[str, Platform]) -> None:
    """Every host's platform is one of the image's; the first host of each missing one is named."""
    have = {p.platform for p in image.platforms}
    missing: dict[Platform, str] = {}
    for address, platform in platforms.items():
        if platform not in have:
            missing.setdefault(platform, address)
    if missing:
        named = ", ".join(f"{p} (host {a})" for p, a in sorted(missing.items()))
        raise SealerError(f"image {image.name} has no {named}: every host's platform must be in it")


def parse_max_unavailable(text: str, nodes: int) -> int:
    """``--max-unavailable``: a number of nodes, or a percentage of them (rounded down, at least 1)."""
    value = text.strip()
    percent = value.endswith("%")
    digits = value[:-1] if percent else value
    if not digits.isdigit() or int(digits) < 1 or (percent and int(digits) > 100):
        raise SealerError(f"--max-unavailable {text!r}: a number of nodes (1 or more) or a percentage (1% to 100%)")
    if percent:
        return max(1, nodes * int(digits) // 100)
    return int(digits)


@dataclass
class HostPlan:
    """One host's part in the roll, in order."""

    address: str
    role: str  # master0, master or node
    platform: str
    batch: int  # hosts of one batch go together (masters alone, nodes by --max-unavailable)
    steps: list[str]
    done: bool = False  # already at the new version (a resumed upgrade): skipped

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "role": self.role, "platform": self.platform, "batch": self.batch,
                "skip": self.done, "steps": self.steps}  # fmt: skip


@dataclass
class Plan:
    """The whole upgrade: from which image and version to which, and each host's steps."""

    cluster: str
    old_image: str
    new_image: str
    old_version: str
    new_version: str
    kubeadm: bool
    drain: bool
    registry_host: str
    hosts: list[HostPlan] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    # each upgrade phase's plugins (upgrade_hooks.py): name, type, where, hosts, labels
    plugins: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def drain_flags(self) -> list[str]:
        emptydir = "--delete-emptydir-data" if version_tuple(self.old_version)[:2] >= EMPTYDIR_FLAG_SINCE else (
            "--delete-local-data"
        )  # fmt: skip
        return ["--ignore-daemonsets", emptydir]

    def batches(self) -> list[list[HostPlan]]:
        out: dict[int, list[HostPlan]] = {}
        for host in self.hosts:
            out.setdefault(host.batch, []).append(host)
        return [out[k] for k in sorted(out)]

    def to_json(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "from": {"image": self.old_image, "kubernetes": self.old_version},
                "to": {"image": self.new_image, "kubernetes": self.new_version}, "kubeadm": self.kubeadm,
                "drain": self.drain, "before": self.before, "hosts": [h.to_json() for h in self.hosts],
                "after": self.after, "plugins": self.plugins}  # fmt: skip


@dataclass(frozen=True)
class PlanInput:
    """What the plan is made of, read without reaching any host."""

    cluster: Cluster
    old: Image
    new: Image
    platforms: dict[str, Platform]  # each host's, as the cluster's inventory recorded it
    done: frozenset[str] = frozenset()  # hosts a resumed upgrade already brought to the new image
    max_unavailable: str = "1"
    drain: bool = True


def make_plan(store: Store, given: PlanInput) -> Plan:
    """Every check of the upgrade that needs no host, then the plan; raises on the first refusal."""
    cluster, old, new = given.cluster, given.old, given.new
    if image_kind(new) != image_kind(old):
        raise SealerError(
            f"{new.name} is an image of kind {image_kind(new)}, the cluster runs {old.name} of kind {image_kind(old)}: "
            "an upgrade brings the same kind of image (a base, or an app on a base)"
        )
    check_platforms(new, given.platforms)
    master0 = cluster.masters[0].address
    old_version = kube_version(store, old, given.platforms[master0])
    new_version = kube_version(store, new, given.platforms[master0])
    kubeadm = kubeadm_runs(old_version, new_version, str(new.name))
    drain = given.drain and kubeadm
    plan = Plan(cluster.name, str(cluster.image), str(new.name), old_version, new_version, kubeadm, drain,
                cluster.registry_host)  # fmt: skip
    plan.before = [f"registry on {cluster.registry_host}: serves the images of {old.name} and {new.name} together"]
    nodes = [h for h in cluster.hosts if h.role == "node"]
    size = parse_max_unavailable(given.max_unavailable, len(nodes)) if nodes else 1
    batch = 0
    for i, host in enumerate(cluster.masters):
        plan.hosts.append(_host_plan(plan, host.address, "master0" if i == 0 else "master", given, batch))
        batch += 1
    for i, host in enumerate(nodes):
        plan.hosts.append(_host_plan(plan, host.address, "node", given, batch + i // size))
    plan.after = [
        f"master0 {master0}: the commands of {new.name} run",
        "every host: the old rootfs removed",
        f"registry on {cluster.registry_host}: serves {new.name}'s images alone",
        f"cluster {cluster.name}: records {new.name}",
    ]
    return plan


def _host_plan(plan: Plan, address: str, role: str, given: PlanInput, batch: int) -> HostPlan:
    platform = given.platforms[address]
    steps = [f"receive the {platform} rootfs of {plan.new_image} beside the old one"]
    if plan.drain:
        steps.append(f"drain: kubectl drain NODE {' '.join(plan.drain_flags)}")
    steps.append("switch to the new rootfs (the old one kept until the end)")
    if plan.kubeadm:
        steps.append(f"kubeadm upgrade apply {plan.new_version} -y" if role == "master0" else "kubeadm upgrade node")
        steps.append("restart the kubelet")
    if plan.drain:
        steps.append("uncordon")
    if plan.kubeadm:
        steps.append(f"wait until the API reports the node Ready at {plan.new_version}")
    return HostPlan(address, role, str(platform), batch, steps, address in given.done)
