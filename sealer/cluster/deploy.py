"""The run itself (``sealer run``, and ``join`` after it): detect every host's platform, write
the inventory, mount each platform's rootfs and run the playbooks, so that each host receives
the bits of its own architecture. The cluster's saved state is state.py's; join and delete are
membership.py's."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealer._fs import atomic_write
from sealer.cluster.become import password_socket
from sealer.cluster.clusterfile import Cluster, Host
from sealer.cluster.customize import Customized, customize
from sealer.cluster.health import joined_problems
from sealer.cluster.hosts import HostFacts, KnownHosts, authorize_key, check_owners, check_reach, detect, on_every_host
from sealer.cluster.inventory import build_inventory, dump_inventory, platform_groups, unsafe
from sealer.cluster.new_state import DiscardedOnEarlyFailure
from sealer.cluster.options import DEFAULT_RUN, BecomePassword, RunOptions
from sealer.cluster.plugin_plan import operation_of, plugin_plan
from sealer.cluster.plugins import check_addresses, load_image_plugins
from sealer.cluster.prepare import check_kubeadm_config, prepare
from sealer.cluster.runner import PlaybookOptions, PlaybookResult, end_playbooks, run_playbook
from sealer.cluster.state import cluster_lock, clusters_dir, host_list_changes, load_state, save_state
from sealer.cluster.swarm import Delivery, discard_swarm, missing_tool, running_swarm
from sealer.cluster.swarm import plan as swarm_plan
from sealer.errors import DeployError, HostError, HostsError, Interrupted, SealerError, SudoPasswordNeeded, SwarmError
from sealer.names import check_name
from sealer.oci.platform import Platform
from sealer.progress import Reporter, SilentReporter
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
    customized: dict[str, frozenset[str]] = field(default_factory=dict)  # per host: the Configs' and env's files


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
        for name in ("tls", "custom"):  # the Configs' files keep their times: unchanged, they are not sent
            if (cdir / name).is_dir():
                shutil.copytree(cdir / name, work / name, symlinks=True)
        yield work
    finally:
        unmount_all(work)
        shutil.rmtree(work, ignore_errors=True)


def reach_plan(cluster: Cluster) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """The addresses sealer writes for each host, which it must reach: the registry host's (every
    host resolves the registry's name to it) and master0's (the API endpoint of every host but
    the masters, which resolve it to themselves); and what each address is for."""
    registry, master0 = cluster.registry_host, cluster.masters[0].address
    uses = {registry: "the registry host", master0: "the API endpoint"}
    if registry == master0:
        uses = {registry: "the registry host and the API endpoint"}
    plan = {}
    for host in cluster.hosts:
        wanted = [registry] + ([master0] if host.role != "master" else [])
        plan[host.address] = tuple(dict.fromkeys(a for a in wanted if a != host.address))
    return plan, uses


def detect_with_sudo(
    hosts: list[Host], known: KnownHosts, become_password: BecomePassword, given: str | None = None,
    reach: dict[str, tuple[str, ...]] | None = None,
) -> tuple[dict[str, HostFacts], str | None]:  # fmt: skip
    """Every host's facts, and sudo's password when a host's sudo asks for one (else None);
    ``given``: the password an inventory gave (ansible_become_password), tried first; ``reach``:
    as detect() takes it."""
    try:
        return detect(hosts, known, given, reach), given
    except HostsError as err:
        if given is not None or not err.errors or not all(isinstance(e, SudoPasswordNeeded) for e in err.errors):
            raise
        password = become_password()
        if password is None:
            raise
        return detect(hosts, known, password, reach), password


def run_cluster(store: Store, cluster: Cluster, reporter: Reporter, options: RunOptions = DEFAULT_RUN) -> RunResult:
    """Run the cluster's image on its hosts. An existing cluster keeps its host list unless
    ``options.hosts_may_change`` (join): a run naming other hosts is refused, saying which command
    does it. The distribution (rsync, swarm, auto; default the Clusterfile's) says how first
    deliveries of the rootfs go out (swarm.py). sudo's password, when a host needs one, reaches
    Ansible and the roles' rsync from a socket of this process (become.py), never written anywhere.
    A check (Ansible's check mode) changes nothing on any host nor in the cluster's directory,
    where only its log (runs/<time>-check) is written; the result then holds what each host
    reported, from which check_report.py says what a run would change."""
    cdir = clusters_dir(store) / check_name(cluster.name, "cluster")
    image = get_image(store, cluster.image)
    discard = DiscardedOnEarlyFailure(cdir)  # before the lock makes the directory; used inside it
    # a check of a cluster that does not exist yet makes no cluster directory (its log aside)
    lock = cluster_lock(cdir) if not options.check or cdir.is_dir() else contextlib.nullcontext()
    with lock, discard, check_workdir(store, cdir) if options.check else contextlib.nullcontext(cdir) as work:
        ready = prepare_cluster(store, cluster, image, reporter, options, work)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ" + ("-check" if options.check else ""))
        run_dir = cdir / "runs" / stamp
        if options.check:  # the check's log, kept private as a run's is
            cdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        result, delivery = play_run(store, cluster, image, ready, work, run_dir, reporter, options)
        hostnames = {h.address: ready.facts[h.address].hostname for h in cluster.hosts}
        problems = joined_problems(result.reports, hostnames, [h.address for h in cluster.masters])
        if problems and not options.check:
            raise DeployError("; ".join(problems))
        return RunResult(cluster, cdir, ready.facts, result, ready.image_ids, delivery, ready.customized.paths)


def play_run(
    store: Store, cluster: Cluster, image: Image, ready: Prepared, work: Path, run_dir: Path, reporter: Reporter,
    options: RunOptions,
) -> tuple[PlaybookResult, Delivery]:  # fmt: skip
    """The run playbook, with each platform's rootfs mounted, sudo's password served and the
    swarm seeding (where one goes) for as long as it runs."""
    with contextlib.ExitStack() as stack:
        for platform, target in platform_mounts(work, ready.facts).items():
            with reporter.task(f"mounting the {platform} rootfs"):
                stack.enter_context(mounted_rootfs(store, image.for_platform(platform), target))
        with reporter.task("applying the Configs and env to the rootfs, and planning the plugins"):
            operation, joined = operation_of(
                options.hosts_may_change, ready.previous, [h.address for h in cluster.hosts]
            )
            ready.customized = customize_run(cluster, ready, work, operation, joined)
        extravars: dict[str, object] = {}
        if ready.become_password is not None:
            extravars.update(stack.enter_context(password_socket(ready.become_password)))
        started = time.monotonic()
        swarm = {} if options.check else start_swarm(
            stack, SwarmPlan(options.distribution or cluster.distribution, ready.facts, ready.previous,
                             {h.address for h in cluster.hosts if h.ssh.bastion is not None}),
            work / "mounts", image, reporter,
        )  # fmt: skip
        if swarm:
            extravars["sealer_rootfs_swarm"] = swarm
        if options.ready_timeout is not None:
            extravars["sealer_kubernetes_ready_timeout"] = options.ready_timeout
        if options.verify:
            extravars["sealer_rootfs_checksum"] = True
        prepared = time.monotonic() - started
        verb = "checking" if options.check else "running"
        with reporter.task(f"{verb} playbooks/run.yml on {len(cluster.hosts)} hosts"):
            try:
                result = run_playbook(
                    "run", work / "inventory.yaml", run_dir, reporter,
                    PlaybookOptions(extravars=extravars, check=options.check, diff=options.diff),
                )  # fmt: skip
            except Interrupted:
                if swarm:
                    stop_swarm_on_hosts(work / "inventory.yaml", run_dir, sorted(swarm), extravars)
                raise
    if result.failures:
        raise DeployError("\n".join(str(f) for f in result.failures) + f"\n(ansible-runner output in {run_dir})")
    return result, delivery_of(result, bool(swarm), prepared)


# The rootfs role's last swarm task on its own: each host's aria2c stopped, the swarm's directory removed
SWARM_STOP_PLAY = {
    "name": "Stop the swarm of an interrupted run on its hosts",
    "hosts": "all",
    "gather_facts": False,
    "tasks": [{
        "name": "Stop aria2c and remove the swarm's files",
        "ansible.builtin.include_role": {"name": "sealer.cluster.sealer_rootfs", "tasks_from": "swarm-stop"},
    }],
}  # fmt: skip


def stop_swarm_on_hosts(inventory: Path, run_dir: Path, hosts: list[str], extravars: dict[str, object]) -> None:
    """After an interrupt while the swarm ran (SIGINT, SIGTERM): the run's playbook ended, then
    every swarm host's aria2c stopped and the swarm's directory removed, as the run would have
    at its end (its log in ``run_dir``-swarm-stop). Best effort: a host that cannot be reached
    keeps them until the next run's rootfs delivery removes them."""
    end_playbooks()
    with contextlib.suppress(SealerError, OSError):
        run_playbook(
            [SWARM_STOP_PLAY], inventory, run_dir.with_name(run_dir.name + "-swarm-stop"), SilentReporter(),
            PlaybookOptions(extravars=extravars, limit=",".join(hosts)),
        )  # fmt: skip


@dataclass
class Prepared:
    """A cluster's controller side ready for the run playbook: its state and inventory written."""

    facts: dict[str, HostFacts]
    image_ids: dict[Platform, str]
    inventory: dict[str, Any]
    become_password: str | None = field(default=None, repr=False)
    previous: set[str] = field(default_factory=set)  # the hosts that had the rootfs delivered already
    customized: Customized = field(default_factory=Customized)  # the Configs' and env's files per host


def customize_run(cluster: Cluster, ready: Prepared, work: Path, operation: str, joined: list[str]) -> Customized:
    """With each platform's rootfs mounted: the Configs and env applied to it (customize.py),
    the image's plugins read, the operation's plugins planned (plugin_plan.py), and the
    inventory completed with both (each host's tree, ``sealer_plugins_plan``)."""
    mounts = platform_mounts(work, ready.facts)
    platforms = {address: fact.platform for address, fact in ready.facts.items()}
    custom = customize(cluster, platforms, mounts, work)
    image_plugins = load_image_plugins(mounts[platforms[cluster.masters[0].address]], cluster.env)
    for plugin in image_plugins:
        check_addresses(plugin, [h.address for h in cluster.hosts])
    hosts = ready.inventory["all"]["hosts"]
    for address in hosts:
        hosts[address].pop("sealer_rootfs_custom", None)
    for address, tree in custom.trees.items():
        hosts[address]["sealer_rootfs_custom"] = str(tree)
    ready.inventory["all"]["vars"]["sealer_plugins_plan"] = unsafe(
        plugin_plan(cluster, image_plugins, operation, joined)
    )
    atomic_write(work / "inventory.yaml", dump_inventory(ready.inventory).encode(), mode=0o600)
    return custom


def prepare_cluster(
    store: Store, cluster: Cluster, image: Image, reporter: Reporter, options: RunOptions = DEFAULT_RUN,
    work: Path | None = None,
) -> Prepared:  # fmt: skip
    """What sealer run does before Ansible (the caller holds the cluster's lock): every host's
    platform detected and checked against the image, the cluster's key installed where a password
    logs in, the registries merged, the cluster's state and inventory written. The collection's
    playbooks run without the sealer command call this too (sealer/cluster/front_door.py).
    ``work``: where the run's files go (the cluster's directory, or a check's scratch copy); in a
    check nothing is saved in the cluster's state."""
    check = options.check
    cdir = clusters_dir(store) / cluster.name
    work = work or cdir
    previous: set[str] = set()
    if (cdir / "Clusterfile").exists():
        before = load_state(store, cluster.name)
        previous = {h.address for h in before.hosts}
        changes = host_list_changes(before, cluster)
        if changes and not options.hosts_may_change:
            raise SealerError(f"cluster {cluster.name} exists with other hosts: {changes}")
    known = KnownHosts(work / "known_hosts", strict=options.strict_host_keys)
    with reporter.task(f"detecting the platform of {len(cluster.hosts)} hosts"):
        reach, uses = reach_plan(cluster)
        facts, password = detect_with_sudo(
            cluster.hosts, known, options.become_password, cluster.become_password, reach
        )  # fmt: skip
    for address, fact in facts.items():
        reporter.note(f"{address}: {fact.platform} ({fact.hostname})")
    check_owners(cluster.name, facts)
    check_reach(facts, uses)
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


@dataclass(frozen=True)
class SwarmPlan:
    """What decides which platforms' first deliveries go by swarm: the distribution asked for,
    every host's platform, the hosts that had a delivery before, and those behind a bastion."""

    distribution: str
    facts: dict[str, HostFacts]
    previous: set[str]
    behind_bastion: set[str]


def start_swarm(
    stack: contextlib.ExitStack, wanted: SwarmPlan, mounts: Path, image: Image, reporter: Reporter
) -> dict[str, str]:
    """Seed the payloads of the platforms whose first delivery goes by swarm (until ``stack``
    closes); the hosts that receive through it, each with its platform's torrent."""
    distribution, behind_bastion = wanted.distribution, wanted.behind_bastion
    chosen = swarm_plan(distribution, platform_groups(wanted.facts), wanted.previous, behind_bastion)
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


# what the rootfs role's delivery reports: rsync's transfer, the swarm's tools and download; the
# init script of hosts the swarm delivered whole, and stopping aria2c, come after the delivery
DELIVERY_KINDS = ("rootfs", "swarm-tool", "swarm")


def delivery_of(result: PlaybookResult, swarm: bool, prepared: float) -> Delivery:
    """What the hosts reported of the rootfs's delivery: the swarm's failures, the files rsync
    sent, the hosts the swarm delivered whole; and how long the delivery took (from the rootfs
    role's first event to the last delivery report)."""
    first = result.role_starts.get("sealer_rootfs", 0.0)
    ends = [r.at for r in result.reports.of_kind(*DELIVERY_KINDS)]
    delivery = Delivery("swarm" if swarm else "rsync", prepared + max(max(ends, default=first) - first, 0.0))
    for host in result.hosts:
        sync = result.reports.get(host, "rootfs")
        delivery.files_sent[host] = sync.number("files") if sync is not None and not sync.flag("dry_run") else 0
        tool, download = result.reports.get(host, "swarm-tool"), result.reports.get(host, "swarm")
        if tool is not None and tool.number("rc") != 0:
            delivery.fallback[host] = "aria2c could not be sent: " + tool.text("error")
        elif download is not None and download.text("failed"):
            delivery.fallback[host] = download.text("failed")
        elif download is not None and download.flag("complete"):
            delivery.whole.append(host)
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
