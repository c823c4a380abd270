"""join, delete and ps: clusters after their first run."""

from __future__ import annotations

from dataclasses import dataclass

from sealer.cluster.clusterfile import parse_address_list
from sealer.cluster.member_roles import refuse_members, refuse_wrong_roles
from sealer.cluster.membership import delete_hosts, join_hosts
from sealer.cluster.new_state import incomplete_state, remove_incomplete
from sealer.cluster.options import DeleteRequest, JoinRequest, RunOptions
from sealer.cluster.state import clusters_dir, list_clusters, load_state, resolve_name
from sealer.cluster.survey import host_rows
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
    ready_timeout: int | None = None


def join(args: JoinArgs) -> None:
    if args.diff and not args.check:
        raise UsageError("--diff goes with --check")
    m = parse_address_list(args.masters, "-m") if args.masters else []
    n = parse_address_list(args.nodes, "-n") if args.nodes else []
    store = Store.open()
    refuse_members(load_state(store, resolve_name(store, args.name)), m, n)
    options = RunOptions(args.strict_host_keys, become_password_source(), args.check, args.diff,
                         ready_timeout=args.ready_timeout)  # fmt: skip
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


@dataclass(frozen=True)
class DeleteArgs:
    """``sealer delete``'s command line."""

    masters: str | None
    nodes: str | None
    everything: bool
    name: str | None
    output: str = "text"
    drain: bool = True
    force: bool = False


def delete(args: DeleteArgs) -> None:
    if args.everything == bool(args.masters or args.nodes):
        raise UsageError("delete takes -m/-n hosts, or --all")
    m = parse_address_list(args.masters, "-m") if args.masters else []
    n = parse_address_list(args.nodes, "-n") if args.nodes else []
    targets = None if args.everything else [*m, *n]
    store = Store.open()
    if args.everything:
        # a state missing its Clusterfile is no listed cluster: it is found by the name given
        name = args.name
        whole = check_name(name, "cluster", "--cluster") if name is not None else resolve_name(store, None)
        lacking = incomplete_state(clusters_dir(store), whole)
        if lacking:
            remove_incomplete(clusters_dir(store), whole)
            if args.output == "json":
                print_json({"deleted": [], "all": True, "incomplete": lacking})
            else:
                info(f"cluster {whole} had no {lacking}: removed its local state; no host was reset")
            return
    else:
        refuse_wrong_roles(load_state(store, resolve_name(store, args.name)), m, n)
    request = DeleteRequest(args.name, None if targets is None else tuple(targets), become_password_source(),
                            drain=args.drain, force=args.force)  # fmt: skip
    removed = delete_hosts(store, request, reporter_for(args.output))
    if args.output == "json":
        print_json({"deleted": removed, "all": args.everything})
    else:
        info(f"removed {', '.join(removed)}" + (" and the cluster's local state" if args.everything else ""))


def _yes_no(value: bool | None, yes: str, no: str) -> str:
    return "-" if value is None else yes if value else no


def ps(name: str | None, output: str) -> None:
    """The saved clusters, each host with what the API says of its Node now (read through master0,
    or the first master that answers)."""
    store = Store.open()
    if name is not None:
        resolve_name(store, name)  # a cluster that is not there is an error, not an empty table
    reporter = reporter_for(output)
    found = []
    for summary in list_clusters(store, name):
        cluster = load_state(store, summary.name)
        view, hosts = host_rows(clusters_dir(store) / summary.name, cluster, summary.hosts, reporter)
        if view.api is None and output != "json":
            info(f"cluster {summary.name}: no master answered with its Nodes (Ready unknown)")
        found.append((summary, view, hosts))
    if output == "json":
        print_json([{"name": s.name, "image": s.image, "api": view.api, "hosts": hosts}
                    for s, view, hosts in found])  # fmt: skip
        return
    table(
        ["CLUSTER", "IMAGE", "HOST", "ROLE", "PLATFORM", "HOSTNAME", "STATUS", "VERSION", "SCHEDULING"],
        [[s.name, _host_image(h), h["address"], h["role"], h["platform"], h["hostname"],
          _yes_no(h["ready"], "Ready", "NotReady"), h["kubeletVersion"] or "-",
          _yes_no(h["schedulable"], "enabled", "disabled")] for s, _v, hosts in found for h in hosts],
    )  # fmt: skip


def _host_image(host: dict[str, object]) -> str:
    """The image a host runs; during an unfinished upgrade, how far the host got too."""
    step = host.get("upgradeStep")
    return f"{host['image']} (upgrade stopped after: {step})" if step else str(host["image"])
