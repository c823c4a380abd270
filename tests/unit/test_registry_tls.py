"""The registry's certificate names every host that serves it, and is made again when they change."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from sealer.cluster.registry_tls import ensure_registry_tls


def names(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in sans.get_values_for_type(x509.IPAddress)} | set(sans.get_values_for_type(x509.DNSName))


def test_the_certificate_names_every_replica_and_follows_them(tmp_path: Path) -> None:
    three = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    tls = ensure_registry_tls(tmp_path, "c", "sea.hub", three)
    assert names(tls.cert) == {"sea.hub", "10.0.0.1", "10.0.0.2", "10.0.0.3", "127.0.0.1"}
    first = tls.cert.read_bytes()
    assert ensure_registry_tls(tmp_path, "c", "sea.hub", three).cert.read_bytes() == first  # kept while they stay
    # a master deleted: the certificate is made again without it, by the same CA
    tls = ensure_registry_tls(tmp_path, "c", "sea.hub", ["10.0.0.1", "10.0.0.2"])
    assert names(tls.cert) == {"sea.hub", "10.0.0.1", "10.0.0.2", "127.0.0.1"}
    assert tls.cert.read_bytes() != first
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    assert x509.load_pem_x509_certificate(tls.cert.read_bytes()).issuer == ca.subject
    assert all(ipaddress.ip_address(n) for n in names(tls.cert) - {"sea.hub"})  # addresses as IP names
