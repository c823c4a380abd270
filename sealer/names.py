"""Names that become paths: a cluster's (``$SEALER_ROOT/clusters/NAME``, ``/var/lib/sealer/data/NAME``
on every host) and a sandbox's. Each is an RFC 1123 DNS label, checked before anything is written."""

from __future__ import annotations

import re

from sealer.errors import InvalidNameError

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def check_name(name: str, what: str, where: str = "") -> str:
    """``name`` when it is a DNS label (lowercase letters, digits and '-', 1-63 characters, no
    '-' at either end); otherwise InvalidNameError naming it (and ``where`` it was read)."""
    if not _DNS_LABEL.match(name):
        prefix = f"{where}: " if where else ""
        raise InvalidNameError(
            f"{prefix}invalid {what} name {name!r}: lowercase letters, digits and '-' (not at either end), "
            "1 to 63 characters"
        )
    return name
