from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from sealer.cluster.clusterfile import Cluster, SSHConfig, from_flags, parse_bastion, parse_clusterfile
from sealer.cluster.deploy import run_cluster
from sealer.cluster.host_paths import check_host_paths
from sealer.cluster.inventory_file import read_inventory_file
from sealer.cluster.membership import app_on_cluster
from sealer.cluster.options import RunOptions
from sealer.cluster.state import clusters_dir
from sealer.commands._check import print_check
from sealer.commands._options import reporter_for
from sealer.commands._output import become_password_source, info, print_json, table
from sealer.commands.verify import drift_rows, print_paths
from sealer.errors import UsageError
from sealer.names import check_name
from sealer.oci.reference import Reference
from sealer.store.layout import Store


@dataclass(frozen=True)
class RunArgs:
    """``sealer run``'s command line: where the hosts come from, how to log in, what to do."""

    image: str | None = None
    masters: str | None = None
    nodes: str | None = None
    clusterfile: str | None = None
    inventory: str | None = None
    user: str = "root"
    password: str | None = field(default=None, repr=False)
    pk: str | None = None
    port: int = 22
    name: str | None = None
    bastion: str | None = None
    strict_host_keys: bool = False
    check: bool = False
    diff: bool = False
    distribution: str | None = None
    output: str = "text"
    ready_timeout: int | None = None
    verify: bool = False


def load_cluster(args: RunArgs) -> Cluster:
    cluster = _load_cluster(args)
    bastion = args.bastion
    if bastion is not None:  # every host behind it, whatever the Clusterfile or inventory said
        cluster.ssh = with_bastion(cluster.ssh, bastion)
        cluster.hosts = [dataclasses.replace(h, ssh=with_bastion(h.ssh, bastion)) for h in cluster.hosts]
    return cluster


def refuse_ssh_flags(flags: list[str]) -> None:
    """``run -f``: the Clusterfile says how each host is logged in to (and is kept as the
    cluster's state, which join and delete read); SSH flags beside it would be ignored, or would
    make the state differ from the file, so they are refused."""
    if flags:
        raise UsageError(
            f"{', '.join(flags)} with -f: the Clusterfile says how to log in (spec.ssh, or a host group's ssh); "
            "set it there"
        )


def with_bastion(ssh: SSHConfig, bastion: str) -> SSHConfig:
    """``ssh`` through ``--bastion``, which logs in as ``ssh``'s user with its key unless it says a user."""
    return dataclasses.replace(ssh, bastion=parse_bastion(bastion, "--bastion", ssh))


def _load_cluster(args: RunArgs) -> Cluster:
    image, masters, nodes = args.image, args.masters, args.nodes
    clusterfile, inventory = args.clusterfile, args.inventory
    name, pk = args.name, args.pk
    # read once, then gone from the environment: no child (Ansible, ssh, rsync) inherits it and
    # ansible-runner's artifacts, which record the environment, never see it
    os.environ.pop("SEALER_SSH_PASSWORD", None)
    if name is not None:
        check_name(name, "cluster", "--cluster")
    ssh = SSHConfig(user=args.user, port=args.port, password=args.password, pk=os.path.abspath(pk) if pk else None)
    if inventory:
        if masters or nodes or clusterfile:
            raise UsageError("give hosts with -i INVENTORY, with -m/-n or with a Clusterfile: one of them")
        if not image:
            raise UsageError("sealer run -i INVENTORY needs the IMAGE too")
        read = read_inventory_file(Path(inventory), ssh)
        cluster = Cluster(name or "my-cluster", Reference.parse(image), ssh, read.hosts)
        cluster.become_password = read.become_password
        check_host_paths(cluster, inventory)
        return cluster
    if clusterfile:
        if masters or nodes:
            raise UsageError("give hosts with -m/-n or with a Clusterfile, not both")
        cluster = parse_clusterfile(Path(clusterfile))
        if image:
            raise UsageError("give the image as an argument or in the Clusterfile's spec.image, not both")
        if name:
            cluster.name = name
        return cluster
    if image and name and not masters and not nodes:  # an app image onto a running cluster
        store = Store.open()
        if (clusters_dir(store) / name / "Clusterfile").exists():
            return app_on_cluster(store, name, Reference.parse(image))
    if not image or not masters:
        raise UsageError("sealer run needs IMAGE and -m MASTERS (or -i INVENTORY, or -f Clusterfile)")
    return from_flags(image, masters, nodes, ssh, name or "my-cluster")


def run(cluster: Cluster, args: RunArgs) -> None:
    if args.diff and not args.check:
        raise UsageError("--diff goes with --check")
    output = args.output
    options = RunOptions(args.strict_host_keys, become_password_source(), args.check, args.diff, args.distribution,
                         ready_timeout=args.ready_timeout, verify=args.verify)  # fmt: skip
    result = run_cluster(Store.open(), cluster, reporter_for(output), options)
    if args.check:
        print_check(result, output, args.diff)
        return
    for address, reason in sorted(result.delivery.fallback.items()):
        info(f"{address}: swarm download failed ({reason}); delivered by rsync")
    rows = []
    for host in cluster.hosts:
        summary = result.playbook.hosts.get(host.address)
        rows.append(
            {
                "address": host.address,
                "role": host.role,
                "platform": str(result.facts[host.address].platform),
                "hostname": result.facts[host.address].hostname,
                "ok": summary.ok if summary else 0,
                "changed": summary.changed if summary else 0,
                "changedTasks": result.playbook.changed_tasks.get(host.address, []),
            }
        )
    if output == "json":
        verified = {"verified": drift_rows(result)} if args.verify else {}
        print_json({"cluster": cluster.name, "image": str(cluster.image), "clusterDir": str(result.cluster_dir),
                    "runDir": str(result.playbook.run_dir), "hosts": rows,
                    "delivery": result.delivery.to_json(), **verified})  # fmt: skip
        return
    table(
        ["HOST", "ROLE", "PLATFORM", "HOSTNAME", "OK", "CHANGED"],
        [[str(r[k]) for k in ("address", "role", "platform", "hostname", "ok", "changed")] for r in rows],
    )
    if args.verify:  # every file the checksums found different, sent again
        print_paths(drift_rows(result), "repaired:")
    delivery = result.delivery
    info(f"rootfs delivered by {delivery.method} in {delivery.seconds:.1f} s")
    info(f"cluster {cluster.name} is up with {cluster.image}; state in {result.cluster_dir}")
