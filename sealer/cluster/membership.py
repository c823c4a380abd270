"""Membership: hosts joined to a cluster after its first run, and hosts reset and forgotten."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt

from sealer.cluster.become import password_socket
from sealer.cluster.clusterfile import Cluster, Host, check_hosts, parse_bastion
from sealer.cluster.deploy import RunResult, run_cluster
from sealer.cluster.inventory import load_inventory
from sealer.cluster.options import DeleteRequest, JoinRequest
from sealer.cluster.runner import PlaybookOptions, run_playbook
from sealer.cluster.state import cluster_lock, clusters_dir, forget_hosts, load_state, resolve_name
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
    """Reset the given hosts (all with None) and forget them; returns the addresses reset."""
    cluster_name = resolve_name(store, request.cluster)
    cluster = load_state(store, cluster_name)
    cdir = clusters_dir(store) / cluster_name
    addresses = None if request.addresses is None else list(request.addresses)
    targets = delete_targets(cluster, addresses)
    with cluster_lock(cdir):
        hostvars = load_inventory((cdir / "inventory.yaml").read_text())["all"]["hosts"]
        password = None
        if any((hostvars.get(a) or {}).get("sealer_become_password") for a in targets):
            password = request.become_password()
            if password is None:
                raise SealerError("sudo on these hosts asks for a password: set SEALER_BECOME_PASSWORD")
        run_dir = cdir / "runs" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        with contextlib.ExitStack() as stack, reporter.task(f"resetting {len(targets)} hosts"):
            extravars: dict[str, str] = {}
            if password is not None:
                extravars = stack.enter_context(password_socket(password))
            options = PlaybookOptions(extravars=extravars, limit=",".join(targets))
            result = run_playbook("delete", cdir / "inventory.yaml", run_dir, reporter, options)
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
