"""join, delete and ps: clusters after their first run."""

from __future__ import annotations

from sealer.cluster.clusterfile import parse_address_list
from sealer.cluster.deploy import clusters_dir, delete_hosts, join_hosts, list_clusters, load_state, resolve_name
from sealer.cluster.member_roles import refuse_members, refuse_wrong_roles
from sealer.cluster.new_state import incomplete_state, remove_incomplete
from sealer.commands._check import print_check
from sealer.commands._options import reporter_for
from sealer.commands._output import become_password_source, info, print_json, table
from sealer.errors import UsageError
from sealer.names import check_name
from sealer.store.layout import Store


def join(
    masters: str | None, nodes: str | None, name: str | None, strict_host_keys: bool, output: str,
    check: bool = False, diff: bool = False, bastion: str | None = None,
) -> None:  # fmt: skip
    if diff and not check:
        raise UsageError("--diff goes with --check")
    m = parse_address_list(masters, "-m") if masters else []
    n = parse_address_list(nodes, "-n") if nodes else []
    store = Store.open()
    refuse_members(load_state(store, resolve_name(store, name)), m, n)
    result = join_hosts(
        store, name, m, n, reporter_for(output), strict_host_keys, become_password_source(),
        check=check, diff=diff, bastion=bastion,
    )  # fmt: skip
    if check:
        print_check(result, output, diff)
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
    removed = delete_hosts(store, name, targets, reporter_for(output), become_password_source())
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
        [[c.name, c.image, h["address"], h["role"], h["platform"], h["hostname"]] for c in clusters for h in c.hosts],
    )
