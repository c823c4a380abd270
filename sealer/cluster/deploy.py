"""``sealer run``: detect every host's platform, write the inventory, mount each platform's
rootfs and run the playbooks, so that each host receives the bits of its own architecture.

A cluster's state lives in ``$SEALER_ROOT/clusters/<name>/``: the Clusterfile used, the
inventory (0600), the known host keys, and one ansible-runner directory per run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sealer._fs import atomic_write, file_lock
from sealer.cluster.become import password_socket
from sealer.cluster.clusterfile import Cluster, Host, check_hosts, parse_bastion, parse_clusterfile, to_clusterfile
from sealer.cluster.hosts import HostFacts, KnownHosts, authorize_key, detect, on_every_host
from sealer.cluster.inventory import build_inventory, dump_inventory, platform_groups
from sealer.cluster.new_state import DiscardedOnEarlyFailure
from sealer.cluster.prepare import check_kubeadm_config, prepare
from sealer.cluster.runner import PlaybookResult, run_playbook
from sealer.cluster.swarm import Delivery, discard_swarm, missing_tool, running_swarm
from sealer.cluster.swarm import plan as swarm_plan
from sealer.errors import DeployError, HostError, HostsError, SealerError, SudoPasswordNeeded, SwarmError
from sealer.names import check_name
from sealer.oci.platform import Platform
from sealer.progress import Reporter
from sealer.store.image import Image, get_image
from sealer.store.layout import Store
from sealer.store.mount import mounted_rootfs, unmount_all


@dataclass
class RunResult:
    cluster: Cluster
    cluster_dir: Path
    facts: dict[str, HostFacts]
    playbook: PlaybookResult
    platforms: dict[Platform, str] = field(default_factory=dict)
    delivery: Delivery = field(default_factory=lambda: Delivery("rsync", 0.0))


# the operator's own Ansible variables per host, when the cluster came from an inventory file
HOST_VARS = "host-vars.yaml"


def clusters_dir(store: Store) -> Path:
    return store.root / "clusters"


def cluster_lock(cdir: Path) -> contextlib.AbstractContextManager[None]:
    cdir.mkdir(parents=True, exist_ok=True)
    os.chmod(cdir, 0o700)
    busy = f"cluster {cdir.name} is being changed by another sealer command"
    return file_lock(cdir / ".lock", blocking=False, busy=busy)


def check_platforms(image: Image, facts: dict[str, HostFacts]) -> dict[Platform, str]:
    """Each needed platform's image id; every host whose platform the image lacks is an error."""
    have = {p.platform: p.id for p in image.platforms}
    errors = [
        HostError(address, f"is {fact.platform}, and image {image.name} has no manifest for it")
        for address, fact in sorted(facts.items())
        if fact.platform not in have
    ]
    if errors:
        raise HostsError(errors)
    return {fact.platform: have[fact.platform] for fact in facts.values()}


def host_list_changes(before: Cluster, after: Cluster) -> str:
    """What a run would silently redefine, and the command that does it; empty when nothing."""
    old = {h.address: h.role for h in before.hosts}
    new = {h.address: h.role for h in after.hosts}
    where = f" --cluster {after.name}"
    changes = [
        f"{a} is a {old[a]} of it, this run makes it a {new[a]} (sealer delete -{old[a][0]} {a}{where} first)"
        for a in new
        if a in old and old[a] != new[a]
    ]
    for role in ("master", "node"):
        added = [a for a, r in new.items() if r == role and a not in old]
        dropped = [a for a, r in old.items() if r == role and a not in new]
        if added:
            changes.append(f"this run adds {role} {','.join(added)} (sealer join -{role[0]} {','.join(added)}{where})")
        if dropped:
            changes.append(
                f"this run leaves out {role} {','.join(dropped)} (sealer delete -{role[0]} {','.join(dropped)}{where})"
            )
    return "; ".join(changes)


BecomePassword = Callable[[], str | None]


def no_become_password() -> str | None:
    return None


@contextlib.contextmanager
def check_workdir(store: Store, cdir: Path) -> Iterator[Path]:
    """Where a check prepares the cluster's files: the store's tmp/ (work files of running
    commands), never the cluster's directory. It starts from the cluster's known hosts, registry
    credentials and TLS certificates, so that what the check compares is what a run would send;
    the registry trees are merged and the rootfs mounted there, and all of it goes at the end."""
    work = store.tmp_path(f"-check-{cdir.name}")
    work.mkdir(mode=0o700)
    try:
        for name in ("known_hosts", "htpasswd", "registry-http-secret"):
            if (cdir / name).is_file():
                shutil.copy2(cdir / name, work / name)
        if (cdir / "tls").is_dir():
            shutil.copytree(cdir / "tls", work / "tls")
        yield work
    finally:
        unmount_all(work)
        shutil.rmtree(work, ignore_errors=True)


def detect_with_sudo(
    hosts: list[Host], known: KnownHosts, become_password: BecomePassword, given: str | None = None
) -> tuple[dict[str, HostFacts], str | None]:
    """Every host's facts, and sudo's password when a host's sudo asks for one (else None);
    ``given``: the password an inventory gave (ansible_become_password), tried first."""
    try:
        return detect(hosts, known, given), given
    except HostsError as err:
        if given is not None or not err.errors or not all(isinstance(e, SudoPasswordNeeded) for e in err.errors):
            raise
        password = become_password()
        if password is None:
            raise
        return detect(hosts, known, password), password


def run_cluster(
    store: Store, cluster: Cluster, reporter: Reporter, strict_host_keys: bool = False,
    become_password: BecomePassword = no_become_password, hosts_may_change: bool = False,
    check: bool = False, diff: bool = False, distribution: str | None = None,
) -> RunResult:  # fmt: skip
    """Run the cluster's image on its hosts. An existing cluster keeps its host list unless
    ``hosts_may_change`` (join): a run naming other hosts is refused, saying which command does it.
    ``distribution`` (rsync, swarm, auto; default the Clusterfile's): how first deliveries of the
    rootfs go out (swarm.py).
    ``become_password``: sudo's password for hosts whose login user needs one (asked for only
    when one does); Ansible and the roles' rsync fetch it from a socket of this process
    (become.py), so it is never written anywhere.
    ``check``: a dry run (Ansible's check mode) that changes nothing on any host nor in the
    cluster's directory, where only its log (runs/<time>-check) is written; the playbook's
    result then holds, per host, what a run would change. ``diff``: and the changed files' diffs."""
    cdir = clusters_dir(store) / check_name(cluster.name, "cluster")
    image = get_image(store, cluster.image)
    discard = DiscardedOnEarlyFailure(cdir)  # before the lock makes the directory; used inside it
    # a check of a cluster that does not exist yet makes no cluster directory (its log aside)
    lock = cluster_lock(cdir) if not check or cdir.is_dir() else contextlib.nullcontext()
    with lock, discard, check_workdir(store, cdir) if check else contextlib.nullcontext(cdir) as work:
        ready = prepare_cluster(
            store, cluster, image, reporter, strict_host_keys, become_password, hosts_may_change, work, check
        )  # fmt: skip
        run_dir = cdir / "runs" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ" + ("-check" if check else ""))
        with contextlib.ExitStack() as stack:
            for platform, target in platform_mounts(work, ready.facts).items():
                with reporter.task(f"mounting the {platform} rootfs"):
                    stack.enter_context(mounted_rootfs(store, image.for_platform(platform), target))
            extravars: dict[str, object] = {}
            if ready.become_password is not None:
                extravars.update(stack.enter_context(password_socket(ready.become_password)))
            if check:  # the check's log, kept private as a run's is
                cdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            started = time.monotonic()
            swarm = {} if check else start_swarm(
                stack, distribution or cluster.distribution, ready.facts, ready.previous, work / "mounts", image,
                reporter, {h.address for h in cluster.hosts if h.ssh.bastion is not None},
            )  # fmt: skip
            if swarm:
                extravars["sealer_rootfs_swarm"] = swarm
            prepared = time.monotonic() - started
            verb = "checking" if check else "running"
            with reporter.task(f"{verb} playbooks/run.yml on {len(cluster.hosts)} hosts"):
                result = run_playbook(
                    "run", work / "inventory.yaml", run_dir, reporter, extravars=extravars, check=check, diff=diff
                )
        if result.failures:
            raise DeployError("\n".join(str(f) for f in result.failures) + f"\n(ansible-runner output in {run_dir})")
        delivery = delivery_of(result, bool(swarm), prepared)
        return RunResult(cluster, cdir, ready.facts, result, ready.image_ids, delivery)


@dataclass
class Prepared:
    """A cluster's controller side ready for the run playbook: its state and inventory written."""

    facts: dict[str, HostFacts]
    image_ids: dict[Platform, str]
    inventory: dict[str, Any]
    become_password: str | None = field(default=None, repr=False)
    previous: set[str] = field(default_factory=set)  # the hosts that had the rootfs delivered already


def prepare_cluster(
    store: Store, cluster: Cluster, image: Image, reporter: Reporter, strict_host_keys: bool = False,
    become_password: BecomePassword = no_become_password, hosts_may_change: bool = False,
    work: Path | None = None, check: bool = False,
) -> Prepared:  # fmt: skip
    """What sealer run does before Ansible (the caller holds the cluster's lock): every host's
    platform detected and checked against the image, the cluster's key installed where a password
    logs in, the registries merged, the cluster's state and inventory written. The collection's
    playbooks run without the sealer command call this too (sealer/cluster/front_door.py).
    ``work``: where the run's files go (the cluster's directory, or a check's scratch copy);
    ``check``: nothing is saved in the cluster's state."""
    cdir = clusters_dir(store) / cluster.name
    work = work or cdir
    previous: set[str] = set()
    if (cdir / "Clusterfile").exists():
        before = load_state(store, cluster.name)
        previous = {h.address for h in before.hosts}
        changes = host_list_changes(before, cluster)
        if changes and not hosts_may_change:
            raise SealerError(f"cluster {cluster.name} exists with other hosts: {changes}")
    known = KnownHosts(work / "known_hosts", strict=strict_host_keys)
    with reporter.task(f"detecting the platform of {len(cluster.hosts)} hosts"):
        facts, password = detect_with_sudo(cluster.hosts, known, become_password, cluster.become_password)
    for address, fact in facts.items():
        reporter.note(f"{address}: {fact.platform} ({fact.hostname})")
    image_ids = check_platforms(image, facts)
    check_kubeadm_config(store, image, cluster, facts)
    with_password = [h for h in cluster.hosts if h.ssh.pk is None]
    if with_password and check:
        raise SealerError(
            f"{with_password[0].address}: --check logs in with keys only; a run installs the cluster's key first"
        )
    if with_password:
        with reporter.task(f"installing the cluster's SSH key on {len(with_password)} hosts"):
            use_cluster_key(cluster, with_password, known, cdir)
    inventory = build_inventory(cluster, facts, work, image_ids)
    with reporter.task("merging the registries and preparing the cluster's files"):
        inventory["all"]["vars"].update(prepare(store, image, cluster, facts, work))
    if not check:
        save_state(cdir, cluster)
    atomic_write(work / "inventory.yaml", dump_inventory(inventory).encode(), mode=0o600)
    unmount_all(work / "mounts")  # left by a run that was killed
    if not any(f.sudo == "password" for f in facts.values()):
        password = None
    return Prepared(facts, image_ids, inventory, password, previous)


def platform_mounts(cdir: Path, facts: dict[str, HostFacts]) -> dict[Platform, Path]:
    """Where each platform's rootfs is mounted for a run (the inventory's sealer_rootfs_source)."""
    return {platform: cdir / "mounts" / platform.group_name for platform in sorted(platform_groups(facts))}


def start_swarm(
    stack: contextlib.ExitStack, distribution: str, facts: dict[str, HostFacts], previous: set[str],
    mounts: Path, image: Image, reporter: Reporter, behind_bastion: set[str],
) -> dict[str, str]:  # fmt: skip
    """Seed the payloads of the platforms whose first delivery goes by swarm (until ``stack``
    closes); the hosts that receive through it, each with its platform's torrent."""
    chosen = swarm_plan(distribution, platform_groups(facts), previous, behind_bastion)
    if distribution == "swarm" and behind_bastion:
        reporter.note(f"{len(behind_bastion)} hosts behind a bastion go by rsync: the tracker is out of their reach")
    for platform in list(chosen):
        lacking = missing_tool(mounts / platform.group_name)
        if lacking is None:
            continue
        if distribution == "swarm":
            raise SwarmError(
                f"image {image.name} ({platform}) has no {lacking} in its rootfs: the swarm needs aria2c "
                "for each platform (see README, --distribution); use --distribution rsync"
            )
        reporter.note(f"{platform}: by rsync, the image has no {lacking} for a swarm")
        del chosen[platform]
    if not chosen:
        discard_swarm(mounts.parent / "swarm")  # what a killed run left
        return {}
    reach = next(iter(chosen.values()))[0]
    rootfs = {p: mounts / p.group_name for p in chosen}
    hosts = sum(len(a) for a in chosen.values())
    with reporter.task(f"packing {len(chosen)} platforms and seeding them to a swarm of {hosts} hosts"):
        swarm = stack.enter_context(running_swarm(mounts.parent / "swarm", rootfs, reach))
    return {a: str(swarm.torrents[p]) for p, addresses in chosen.items() for a in addresses}


# the rootfs role's tasks after the swarm's delivery (roles/sealer_rootfs/tasks/swarm.yml): the
# init script of the hosts it delivered whole, and stopping aria2c. The delivery's time ends
# before them; an rsync that follows them (a host that fell back) is counted again.
AFTER_SWARM_DELIVERY = frozenset((
    "sealer_rootfs: Run the image's init script once on a host whose whole rootfs came through the swarm",
    "sealer_rootfs: Stop this host's aria2c once every host of the swarm is done, and remove the swarm's files",
))  # fmt: skip


def delivery_of(result: PlaybookResult, swarm: bool, prepared: float) -> Delivery:
    """What the rootfs role said per host: the swarm's failures, the files its rsync sent, the
    hosts it delivered whole; and how long the delivery took."""
    first, _ = result.role_spans.get("sealer_rootfs", [0.0, 0.0])
    ends = [end for task, (_, end) in result.task_spans.items() if task.startswith("sealer_rootfs: ")
            and task not in AFTER_SWARM_DELIVERY]  # fmt: skip
    delivery = Delivery("swarm" if swarm else "rsync", prepared + max(max(ends, default=first) - first, 0.0))
    for host, marks in result.marks.items():
        lines = [line for role, line in marks if role == "sealer_rootfs"]
        # rsync's itemized "<f": a file sent to the host
        delivery.files_sent[host] = sum(1 for line in lines if line.startswith("<<CHANGED>><f"))
        for line in lines:
            if line.startswith("<<SWARM-FAILED>>"):
                delivery.fallback[host] = line.removeprefix("<<SWARM-FAILED>>").strip()
            elif line == "<<SWARM-COMPLETE>>":
                delivery.whole.append(host)
    for host in result.hosts:
        delivery.files_sent.setdefault(host, 0)
    return delivery


def use_cluster_key(cluster: Cluster, hosts: list[Host], known: KnownHosts, cdir: Path) -> None:
    """Hosts reached with a password get the cluster's own key (made once, kept 0600 with the
    cluster's state): Ansible, later runs, join and delete then log in with it, and the
    password is used only here, in this process, never written anywhere."""
    key = cdir / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = key.with_name(f".{key.name}.{os.getpid()}")
        for leftover in (tmp, tmp.with_name(tmp.name + ".pub")):
            leftover.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"sealer-{cluster.name}", "-f", str(tmp)],
                       check=True, capture_output=True)  # fmt: skip
        os.replace(tmp.with_name(tmp.name + ".pub"), key.with_name(key.name + ".pub"))
        os.replace(tmp, key)
    public = key.with_name(key.name + ".pub").read_text()
    on_every_host(hosts, lambda host: authorize_key(host, known, public))
    if cluster.ssh.pk is None:  # what the saved Clusterfile says: later joins and deletes use the key
        cluster.ssh = dataclasses.replace(cluster.ssh, pk=str(key), password=None)
    moved = {h.address for h in hosts}
    cluster.hosts = [
        dataclasses.replace(h, ssh=dataclasses.replace(h.ssh, pk=str(key), password=None)) if h.address in moved else h
        for h in cluster.hosts
    ]


# ---- join, delete, ps ------------------------------------------------------------------


def cluster_names(store: Store) -> list[str]:
    base = clusters_dir(store)
    return sorted(p.name for p in base.iterdir() if (p / "Clusterfile").exists()) if base.is_dir() else []


def resolve_name(store: Store, name: str | None) -> str:
    """The cluster meant: the one named, or the only one there is."""
    names = cluster_names(store)
    if name is not None:
        check_name(name, "cluster", "--cluster")
        if name not in names:
            raise SealerError(f"no cluster named {name} (clusters: {', '.join(names) or 'none'})")
        return name
    if len(names) != 1:
        raise SealerError(f"say which cluster with --cluster (clusters: {', '.join(names) or 'none'})")
    return names[0]


def load_state(store: Store, name: str) -> Cluster:
    """The cluster as the last run left it: its Clusterfile, and its hosts' inventory variables."""
    cdir = clusters_dir(store) / check_name(name, "cluster")
    cluster = parse_clusterfile(cdir / "Clusterfile")
    host_vars = yaml.safe_load((cdir / HOST_VARS).read_text()) if (cdir / HOST_VARS).exists() else None
    if host_vars:
        cluster.hosts = [dataclasses.replace(h, vars=host_vars.get(h.address) or {}) for h in cluster.hosts]
    return cluster


def save_state(cdir: Path, cluster: Cluster) -> None:
    atomic_write(cdir / "Clusterfile", to_clusterfile(cluster).encode(), mode=0o600)
    host_vars = {h.address: h.vars for h in cluster.hosts if h.vars}
    if host_vars or (cdir / HOST_VARS).exists():
        atomic_write(cdir / HOST_VARS, yaml.safe_dump(host_vars, sort_keys=False).encode(), mode=0o600)


def join_hosts(
    store: Store, name: str | None, masters: list[str], nodes: list[str], reporter: Reporter,
    strict_host_keys: bool = False, become_password: BecomePassword = no_become_password,
    check: bool = False, diff: bool = False, bastion: str | None = None,
) -> RunResult:  # fmt: skip
    """Add hosts to a cluster; a host of a new platform gets its rootfs and the registry serves it.
    The new hosts log in as the first host does (behind its bastion too), or behind ``bastion``."""
    cluster = load_state(store, resolve_name(store, name))
    template = cluster.hosts[0].ssh
    if bastion is not None:
        template = dataclasses.replace(template, bastion=parse_bastion(bastion, "--bastion", template))
    new = [Host(a, "master", template) for a in masters] + [Host(a, "node", template) for a in nodes]
    if not new:
        raise SealerError("join needs hosts: -m or -n")
    cluster.hosts = [*cluster.hosts, *new]
    check_hosts(cluster.hosts)
    return run_cluster(
        store, cluster, reporter, strict_host_keys, become_password, hosts_may_change=True, check=check, diff=diff
    )


def delete_hosts(
    store: Store, name: str | None, addresses: list[str] | None, reporter: Reporter,
    become_password: BecomePassword = no_become_password,
) -> list[str]:  # fmt: skip
    """Reset the given hosts (all with None) and forget them; returns the addresses reset."""
    cluster_name = resolve_name(store, name)
    cluster = load_state(store, cluster_name)
    cdir = clusters_dir(store) / cluster_name
    targets = delete_targets(cluster, addresses)
    with cluster_lock(cdir):
        hostvars = yaml.safe_load((cdir / "inventory.yaml").read_text())["all"]["hosts"]
        password = None
        if any((hostvars.get(a) or {}).get("sealer_become_password") for a in targets):
            password = become_password()
            if password is None:
                raise SealerError("sudo on these hosts asks for a password: set SEALER_BECOME_PASSWORD")
        run_dir = cdir / "runs" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        with contextlib.ExitStack() as stack, reporter.task(f"resetting {len(targets)} hosts"):
            extravars: dict[str, str] = {}
            if password is not None:
                extravars = stack.enter_context(password_socket(password))
            result = run_playbook(
                "delete", cdir / "inventory.yaml", run_dir, reporter, extravars=extravars, limit=",".join(targets)
            )
        if result.failures:
            raise DeployError("\n".join(str(f) for f in result.failures) + f"\n(ansible-runner output in {run_dir})")
        forget_hosts(cdir, cluster, targets)
    return targets


def delete_targets(cluster: Cluster, addresses: list[str] | None) -> list[str]:
    """The hosts a delete resets (all with None): each one of the cluster, master0 only with all."""
    known = {h.address for h in cluster.hosts}
    targets = sorted(known) if addresses is None else addresses
    unknown = [a for a in targets if a not in known]
    if unknown:
        raise SealerError(f"{', '.join(unknown)}: not in cluster {cluster.name}")
    remaining = [h for h in cluster.hosts if h.address not in targets]
    if remaining and cluster.masters[0].address in targets:
        raise SealerError(f"{cluster.masters[0].address} is master0: delete --all to remove the whole cluster")
    return targets


def forget_hosts(cdir: Path, cluster: Cluster, targets: list[str]) -> None:
    """The cluster's state without the hosts just reset; the whole state gone with its last host."""
    remaining = [h for h in cluster.hosts if h.address not in targets]
    if not remaining:
        unmount_all(cdir)
        shutil.rmtree(cdir)
        return
    cluster.hosts = remaining
    save_state(cdir, cluster)
    inventory = yaml.safe_load((cdir / "inventory.yaml").read_text())
    for address in targets:
        inventory["all"]["hosts"].pop(address, None)
        for group in inventory["all"]["children"].values():
            (group.get("hosts") or {}).pop(address, None)
    atomic_write(cdir / "inventory.yaml", dump_inventory(inventory).encode(), mode=0o600)


@dataclass
class ClusterSummary:
    name: str
    image: str
    hosts: list[dict[str, str]]


def list_clusters(store: Store, name: str | None = None) -> list[ClusterSummary]:
    if name is not None:
        check_name(name, "cluster", "--cluster")
    out = []
    for cluster_name in cluster_names(store):
        if name and cluster_name != name:
            continue
        cdir = clusters_dir(store) / cluster_name
        cluster = load_state(store, cluster_name)
        try:
            hostvars = yaml.safe_load((cdir / "inventory.yaml").read_text())["all"]["hosts"]
        except (OSError, KeyError, TypeError, yaml.YAMLError):
            hostvars = {}
        hosts = [
            {
                "address": h.address,
                "role": h.role,
                "platform": str((hostvars.get(h.address) or {}).get("sealer_platform", "unknown")),
                "hostname": str((hostvars.get(h.address) or {}).get("sealer_hostname", "")),
            }
            for h in cluster.hosts
        ]
        out.append(ClusterSummary(cluster_name, str(cluster.image), hosts))
    return out
