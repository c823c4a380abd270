"""Membership: hosts joined to a cluster after its first run, and hosts drained, reset, removed
from the API and etcd, and forgotten."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from sealer._fs import atomic_write
from sealer.cluster.become import password_socket
from sealer.cluster.clusterfile import Cluster, Host, check_hosts, parse_bastion
from sealer.cluster.deploy import RunResult, run_cluster
from sealer.cluster.inventory import dump_inventory, load_inventory
from sealer.cluster.options import DeleteRequest, JoinRequest
from sealer.cluster.registry_tls import ensure_registry_tls
from sealer.cluster.removal import plan_removal, removal_problems
from sealer.cluster.results import Reports
from sealer.cluster.runner import PlaybookOptions, run_playbook
from sealer.cluster.state import cluster_lock, clusters_dir, forget_hosts, load_state, resolve_name
from sealer.cluster.survey import run_stamp, survey, view_of
from sealer.errors import DeployError, SealerError
from sealer.oci.reference import Reference
from sealer.progress import Reporter
from sealer.store.image import get_image
from sealer.store.layout import Store


def join_hosts(store: Store, request: JoinRequest, reporter: Reporter) -> RunResult:
    """Add hosts to a cluster; a host of a new platform gets its rootfs and the registry serves it.
    The new hosts log in as the first host does (behind its bastion too), or behind its bastion."""
    cluster = load_state(store, resolve_name(store, request.cluster))
    template = cluster.hosts[0].ssh
    if request.bastion is not None:
        template = dataclasses.replace(template, bastion=parse_bastion(request.bastion, "--bastion", template))
    new = [Host(a, "master", template) for a in request.masters] + [Host(a, "node", template) for a in request.nodes]
    if not new:
        raise SealerError("join needs hosts: -m or -n")
    cluster.hosts = [*cluster.hosts, *new]
    check_hosts(cluster.hosts)
    return run_cluster(store, cluster, reporter, dataclasses.replace(request.options, hosts_may_change=True))


def delete_hosts(store: Store, request: DeleteRequest, reporter: Reporter) -> list[str]:
    """Remove the given hosts from the cluster (all with None) and forget them; returns their
    addresses. The whole cluster is reset at once; otherwise the cluster is read first and the
    hosts leave as removal.py plans it, each step checked against the API and etcd after it, and
    a master0 that leaves hands its duties to the first master that stays."""
    cluster_name = resolve_name(store, request.cluster)
    cluster = load_state(store, cluster_name)
    cdir = clusters_dir(store) / cluster_name
    addresses = None if request.addresses is None else list(request.addresses)
    targets = delete_targets(cluster, addresses, handover=True)
    with cluster_lock(cdir), contextlib.ExitStack() as stack:
        hostvars = load_inventory((cdir / "inventory.yaml").read_text())["all"]["hosts"]
        extravars: dict[str, Any] = {}
        if any((hostvars.get(a) or {}).get("sealer_become_password") for a in hostvars):
            password = request.become_password()
            if password is None:
                raise SealerError("sudo on these hosts asks for a password: set SEALER_BECOME_PASSWORD")
            extravars = stack.enter_context(password_socket(password))
        if len(targets) == len(cluster.hosts):
            play_delete(cdir, targets, reporter, extravars)
            forget_hosts(cdir, cluster, targets)
            return targets
        hostnames = {a: str((v or {}).get("sealer_hostname") or "") for a, v in hostvars.items()}
        staying = [h.address for h in cluster.masters if h.address not in targets]
        everyone = list(dict.fromkeys([*(h.address for h in cluster.masters), *targets]))
        view = survey(cdir, cluster, everyone, reporter, extravars, prefer=staying)
        removal = plan_removal(cluster, targets, view, hostnames, request.force)
        master0 = cluster.masters[0].address
        masters = [h.address for h in cluster.masters]
        for step in removal.steps:
            step_vars = {**extravars, **removal.extravars(step, request.drain)}
            reports = play_delete(cdir, list(step.hosts), reporter, step_vars)
            problems = removal_problems(step, view_of(reports, [removal.via]), hostnames)
            if problems:
                raise DeployError("; ".join(problems))
            if master0 in step.hosts and cluster.registry in targets:
                cluster.registry = None  # the registry follows master0's duties
            forget_hosts(cdir, cluster, list(step.hosts))
        if any(a in targets for a in masters):  # the nodes' load balancers, hosts.toml and registry follow
            hand_over(cdir, cluster, reporter, extravars)
    return targets


def play_delete(cdir: Path, hosts: list[str], reporter: Reporter, extravars: dict[str, Any]) -> Reports:
    """The delete playbook on ``hosts``; what the hosts reported, or a DeployError."""
    run_dir = cdir / "runs" / run_stamp("")
    with reporter.task(f"removing {len(hosts)} hosts"):
        options = PlaybookOptions(extravars=extravars, limit=",".join(hosts))
        result = run_playbook("delete", cdir / "inventory.yaml", run_dir, reporter, options)
    if result.failures:
        raise DeployError("\n".join(str(f) for f in result.failures) + f"\n(ansible-runner output in {run_dir})")
    return result.reports


def hand_over(cdir: Path, cluster: Cluster, reporter: Reporter, extravars: dict[str, Any]) -> None:
    """A master left: when it was master0, the first master that stays is master0 now (the saved
    Clusterfile lists it first) and the registry host unless the Clusterfile names another host
    for it. The inventory says which masters serve the registry, the registry's certificate names
    their addresses, and the handover playbook serves it there, points every host's hosts.toml at
    them and every node's load balancer at the masters that stay."""
    inventory = load_inventory((cdir / "inventory.yaml").read_text())
    shared = inventory["all"]["vars"]
    shared["sealer_registry_host"] = cluster.registry_host
    inventory["all"]["children"]["registry"] = {"hosts": dict.fromkeys(cluster.registry_hosts)}
    if shared.get("sealer_registry_tls_cert"):
        ensure_registry_tls(cdir / "tls", cluster.name, str(shared["sealer_registry_domain"]), cluster.registry_hosts)
    atomic_write(cdir / "inventory.yaml", dump_inventory(inventory).encode(), mode=0o600)
    run_dir = cdir / "runs" / run_stamp("-handover")
    with reporter.task(f"pointing the hosts at the masters that stay ({cluster.masters[0].address} is master0)"):
        options = PlaybookOptions(extravars=extravars)
        result = run_playbook("handover", cdir / "inventory.yaml", run_dir, reporter, options)
    if result.failures:
        raise DeployError("\n".join(str(f) for f in result.failures) + f"\n(ansible-runner output in {run_dir})")


def delete_targets(cluster: Cluster, addresses: list[str] | None, handover: bool = False) -> list[str]:
    """The hosts a delete resets (all with None): each one of the cluster; never every master
    while nodes stay; master0 only with all, unless the caller ``handover``s its duties."""
    known = {h.address for h in cluster.hosts}
    targets = sorted(known) if addresses is None else addresses
    unknown = [a for a in targets if a not in known]
    if unknown:
        raise SealerError(f"{', '.join(unknown)}: not in cluster {cluster.name}")
    remaining = [h for h in cluster.hosts if h.address not in targets]
    if remaining and all(h.address in targets for h in cluster.masters):
        staying = ", ".join(h.address for h in remaining)
        raise SealerError(f"deleting every master of cluster {cluster.name} while nodes {staying} stay: "
                          "delete --all removes the whole cluster")  # fmt: skip
    if remaining and not handover and cluster.masters[0].address in targets:
        raise SealerError(f"{cluster.masters[0].address} is master0: delete --all to remove the whole cluster")
    return targets


def app_on_cluster(store: Store, name: str, app_image: Reference) -> Cluster:
    """The cluster ``name`` as its next run of ``app_image`` sees it: an app image built FROM the
    cluster's image (its first layers are that image's, platform by platform). Its rootfs and
    registry go to the hosts by the usual delta transfers, so only what the app adds is sent, and
    its own CMDs (``cmd.current``, not its base's, which ran) run on master0. An app built on
    another base (another Kubernetes version included) is refused naming both images."""
    cluster = load_state(store, resolve_name(store, name))
    base, app = get_image(store, cluster.image), get_image(store, app_image)
    common = [p.platform for p in app.platforms if p.platform in {b.platform for b in base.platforms}]
    for platform in common:
        on, under = app.for_platform(platform).config, base.for_platform(platform).config
        if [layer.digest for layer in on.layers[: on.base_layers]] != [layer.digest for layer in under.layers]:
            raise SealerError(
                f"image {app.name} ({platform}) is not built on {base.name}, cluster {cluster.name}'s image: "
                f"an app image runs on a cluster of its own base (FROM {base.name})"
            )
    if not common:
        raise SealerError(f"image {app.name} has no platform of cluster {cluster.name}'s image {base.name}")
    cluster.image = app_image
    cluster.app_cmds = list(app.for_platform(common[0]).config.cmd_current)
    return cluster
