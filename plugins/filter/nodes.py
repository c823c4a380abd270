# The Jinja filter the roles wait for Ready nodes with:
#   document | sealer.cluster.nodes_not_ready(addresses, hostnames)
# the hosts (of addresses, hostnames given in the same order) whose Node is missing from
# `kubectl get nodes -o json` or not Ready. The same rule as the sealer package's
# (sealer/cluster/health.py), written again because the collection ships without that package;
# tests/unit/test_health.py holds both to one table.
from __future__ import annotations

from typing import Any


def _ready(item: Any) -> bool:
    conditions = ((item.get("status") or {}).get("conditions")) or []
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _addresses(item: Any) -> list[str]:
    found = ((item.get("status") or {}).get("addresses")) or []
    return [str(a.get("address")) for a in found if isinstance(a, dict) and a.get("type") == "InternalIP"]


def nodes_not_ready(document: Any, addresses: list[str], hostnames: list[str]) -> list[str]:
    items = document.get("items") if isinstance(document, dict) else None
    nodes = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    missing = []
    for address, hostname in zip(addresses, hostnames, strict=True):
        node = next((n for n in nodes if address in _addresses(n)), None)
        if node is None and hostname:
            node = next((n for n in nodes if (n.get("metadata") or {}).get("name") == str(hostname).lower()), None)
        if node is None or not _ready(node):
            missing.append(address)
    return missing


class FilterModule:
    """Ansible's entry point for the collection's filter plugins."""

    def filters(self) -> dict[str, Any]:
        return {"nodes_not_ready": nodes_not_ready}
