# The Jinja tests the roles check names with before a name becomes a path on a host:
#   sealer_cluster_name is sealer.cluster.dns_label
#   registries | reject('sealer.cluster.registry_name')
# The same rules as the sealer package's (sealer/names.py), written again because the collection
# ships without that package; tests/unit/test_name_rules.py holds both to one table of names.
from __future__ import annotations

import re
from typing import Any

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# a host name (dot-separated labels of letters, digits and '-') or a bracketed IPv6 address,
# then an optional port: docker's grammar for the registry part of a reference
_REGISTRY = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)


def dns_label(value: Any) -> bool:
    """A cluster's name: lowercase letters, digits and '-', 1-63 characters, no '-' at either end."""
    return isinstance(value, str) and _DNS_LABEL.fullmatch(value) is not None


def registry_name(value: Any) -> bool:
    """A registry's host[:port]: a host name or a bracketed IPv6 address, and a port."""
    return isinstance(value, str) and _REGISTRY.fullmatch(value) is not None


class TestModule:
    """Ansible's entry point for the collection's test plugins."""

    def tests(self) -> dict[str, Any]:
        return {"dns_label": dns_label, "registry_name": registry_name}
