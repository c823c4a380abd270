"""join, delete and ps: clusters after their first run."""

from __future__ import annotations

from dataclasses import dataclass

from sealer.cluster.clusterfile import parse_address_list
from sealer.cluster.member_roles import refuse_members, refuse_wrong_roles
from sealer.cluster.membership import delete_hosts, join_hosts
from sealer.cluster.new_state import incomplete_state, remove_incomplete
from sealer.cluster.options import DeleteRequest, JoinRequest, RunOptions
from sealer.cluster.state import clusters_dir, list_clusters, load_state, resolve_name
from sealer.commands._check import print_check
from sealer.commands._options import reporter_for
from sealer.commands._output import become_password_source, info, print_json, table
from sealer.errors import UsageError
from sealer.names import check_name
from sealer.store.layout import Store


@dataclass(frozen=True)
class JoinArgs:
    """``sealer join``'s command line."""

    masters: str | None
    nodes: str | None
    name: str | None
    strict_host_keys: bool = False
    check: bool = False
    diff: bool = False
    bastion: str | None = None
    output: str = "text"


def join(args: JoinArgs) -> None:
    if args.diff and not args.check:
        raise UsageError("--diff goes with --check")
    m = parse_address_list(args.masters, "-m") if args.masters else []
    n = parse_address_list(args.nodes, "-n") if args.nodes else []
    store = Store.open()
    refuse_members(load_state(store, resolve_name(store, args.name)), m, n)
    options = RunOptions(args.strict_host_keys, become_password_source(), args.check, args.diff)
    result = join_hosts(store, JoinRequest(args.name, tuple(m), tuple(n), args.bastion, options),
                        reporter_for(args.output))  # fmt: skip
    output = args.output
    if args.check:
        print_check(result, output, args.diff)
        return
    for address, reason in sorted(result.delivery.fallback.items()):
        info(f"{address}: swarm download failed ({reason}); delivered by rsync")
    if output == "json":
        print_json({"cluster": result.cluster.name, "joined": [*m, *n], "delivery": result.delivery.to_json()})
    else:
        info(f"joined {', '.join([*m, *n])} to cluster {result.cluster.name}")


def delete(masters: str | None, nodes: str | None, everything: bool, name: str | None, output: str) -> None:
    if everything == bool(masters or nodes):
        raise UsageError("delete takes -m/-n hosts, or --all")
    m = parse_address_list(masters, "-m") if masters else []
    n = parse_address_list(nodes, "-n") if nodes else []
    targets = None if everything else [*m, *n]
    store = Store.open()
    if everything:
        # a state missing its Clusterfile is no listed cluster: it is found by the name given
        whole = check_name(name, "cluster", "--cluster") if name is not None else resolve_name(store, None)
        lacking = incomplete_state(clusters_dir(store), whole)
        if lacking:
            remove_incomplete(clusters_dir(store), whole)
            if output == "json":
                print_json({"deleted": [], "all": True, "incomplete": lacking})
            else:
                info(f"cluster {whole} had no {lacking}: removed its local state; no host was reset")
            return
    else:
        refuse_wrong_roles(load_state(store, resolve_name(store, name)), m, n)
    request = DeleteRequest(name, None if targets is None else tuple(targets), become_password_source())
    removed = delete_hosts(store, request, reporter_for(output))
    if output == "json":
        print_json({"deleted": removed, "all": everything})
    else:
        info(f"reset and removed {', '.join(removed)}" + (" and the cluster's local state" if everything else ""))


def ps(name: str | None, output: str) -> None:
    store = Store.open()
    if name is not None:
        resolve_name(store, name)  # a cluster that is not there is an error, not an empty table
    clusters = list_clusters(store, name)
    if output == "json":
        print_json([{"name": c.name, "image": c.image, "hosts": c.hosts} for c in clusters])
        return
    table(
        ["CLUSTER", "IMAGE", "HOST", "ROLE", "PLATFORM", "HOSTNAME"],
        [
            [c.name, _host_image(h), h["address"], h["role"], h["platform"], h["hostname"]]
            for c in clusters
            for h in c.hosts
        ],
    )


def _host_image(host: dict[str, str]) -> str:
    """The image a host runs; during an unfinished upgrade, how far the host got too."""
    step = host.get("upgradeStep")
    return f"{host['image']} (upgrade stopped after: {step})" if step else host["image"]
