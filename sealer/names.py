"""Names that become paths: a cluster's (``$SEALER_ROOT/clusters/NAME``, ``/var/lib/sealer/data/NAME``
on every host) and a sandbox's, each an RFC 1123 DNS label; a registry's ``host[:port]``
(``/etc/containerd/certs.d/NAME`` on every host). Each is checked before anything is written.

The collection's roles check the same names with the same rules (plugins/test/names.py, which
cannot import this package); tests/unit/name_table.py holds both to one table of names."""

from __future__ import annotations

import re

from sealer.errors import InvalidNameError

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# a host name (dot-separated labels of letters, digits and '-') or a bracketed IPv6 address,
# then an optional port: docker's grammar for the registry part of a reference
_REGISTRY = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)


def is_dns_label(name: str) -> bool:
    """Lowercase letters, digits and '-', 1-63 characters, no '-' at either end."""
    return _DNS_LABEL.fullmatch(name) is not None


def is_registry_name(name: str) -> bool:
    """A registry's ``host[:port]``: a host name or a bracketed IPv6 address, and a port."""
    return _REGISTRY.fullmatch(name) is not None


def check_name(name: str, what: str, where: str = "") -> str:
    """``name`` when it is a DNS label (lowercase letters, digits and '-', 1-63 characters, no
    '-' at either end); otherwise InvalidNameError naming it (and ``where`` it was read)."""
    if not is_dns_label(name):
        prefix = f"{where}: " if where else ""
        raise InvalidNameError(
            f"{prefix}invalid {what} name {name!r}: lowercase letters, digits and '-' (not at either end), "
            "1 to 63 characters"
        )
    return name
