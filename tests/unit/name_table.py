"""One table of names for the two copies of each name rule: the sealer package's (sealer/names.py)
and the collection's test plugin (plugins/test/names.py), which the roles use."""

from __future__ import annotations

# (name, whether it is a DNS label: a cluster's or a sandbox's name)
DNS_LABELS: list[tuple[str, bool]] = [
    ("my-cluster", True),
    ("a", True),
    ("0", True),
    ("a1-b2", True),
    ("a--b", True),
    ("x" * 63, True),
    ("x" * 64, False),
    ("", False),
    ("-a", False),
    ("a-", False),
    ("My-Cluster", False),
    ("Abc", False),
    ("abC", False),
    ("a.b", False),
    ("a_b", False),
    ("a b", False),
    ("a/b", False),
    ("..", False),
    ("abc\n", False),  # a trailing newline: `$` alone would let it through
    ("\nabc", False),
    ("ä", False),
]

# (name, whether it is a registry's host[:port])
REGISTRY_NAMES: list[tuple[str, bool]] = [
    ("docker.io", True),
    ("registry.k8s.io", True),
    ("sea.hub:5000", True),
    ("localhost", True),
    ("localhost:5000", True),
    ("Quay.IO", True),
    ("a-b.example", True),
    ("10.0.0.1:5000", True),
    ("[::1]", True),
    ("[::1]:5001", True),
    ("[fe80::1%eth0]:5000", False),
    ("a..b", False),
    ("a.-b", False),
    ("-a.b", False),
    ("a.b-", False),
    (".io", False),
    ("docker.io.", False),
    ("sea.hub:", False),
    ("sea.hub:123456", False),
    ("sea.hub:port", False),
    ("a/b", False),
    ("..", False),
    ("", False),
    ("sea_hub", False),
    ("sea.hub\n", False),
    ("sea hub", False),
]
