"""join, delete and ps: clusters after their first run."""

from __future__ import annotations

from dataclasses import dataclass

from sealer.cluster.clusterfile import parse_address_list
from sealer.cluster.membership import delete_hosts, join_hosts
from sealer.cluster.options import DeleteRequest, JoinRequest, RunOptions
from sealer.cluster.state import list_clusters
from sealer.commands._check import print_check
from sealer.commands._options import reporter_for
from sealer.commands._output import become_password_source, info, print_json, table
from sealer.errors import UsageError
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
    options = RunOptions(args.strict_host_keys, become_password_source(), args.check, args.diff)
    result = join_hosts(Store.open(), JoinRequest(args.name, tuple(m), tuple(n), args.bastion, options),
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
    targets = None if everything else [
        *(parse_address_list(masters, "-m") if masters else []), *(parse_address_list(nodes, "-n") if nodes else [])
    ]  # fmt: skip
    request = DeleteRequest(name, None if targets is None else tuple(targets), become_password_source())
    removed = delete_hosts(Store.open(), request, reporter_for(output))
    if output == "json":
        print_json({"deleted": removed, "all": everything})
    else:
        info(f"reset and removed {', '.join(removed)}" + (" and the cluster's local state" if everything else ""))


def ps(name: str | None, output: str) -> None:
    clusters = list_clusters(Store.open(), name)
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
