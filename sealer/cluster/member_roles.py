"""Hosts named to join or delete, checked against the roles they have in the cluster, so that
the message says what is wrong (a member already, the other role) instead of a duplicate in a
host list or a delete done under the wrong flag."""

from __future__ import annotations

from sealer.cluster.clusterfile import Cluster
from sealer.errors import SealerError


def refuse_members(cluster: Cluster, masters: list[str], nodes: list[str]) -> None:
    """``join``: no host may already be one of the cluster's."""
    roles = {h.address: h.role for h in cluster.hosts}
    members = [a for a in (*masters, *nodes) if a in roles]
    if members:
        said = ", ".join(f"{a} is already a {roles[a]}" for a in members)
        raise SealerError(f"{said} of cluster {cluster.name}")


def refuse_wrong_roles(cluster: Cluster, masters: list[str], nodes: list[str]) -> None:
    """``delete``: a master is named with -m, a node with -n (a host of neither is left for the
    delete to refuse as not in the cluster)."""
    roles = {h.address: h.role for h in cluster.hosts}
    wrong = [(a, "master") for a in masters if roles.get(a) == "node"]
    wrong += [(a, "node") for a in nodes if roles.get(a) == "master"]
    if wrong:
        said = "; ".join(
            f"{a} is a {roles[a]} of cluster {cluster.name}, not a {role} (sealer delete -{roles[a][0]} {a})"
            for a, role in wrong
        )
        raise SealerError(said)
