"""The registry's HTTP secret: random per cluster, kept 0600 with its state, read by the role
from that file (never a function of names anyone knows), and its configuration never diffed."""

from __future__ import annotations

from pathlib import Path

import yaml

from sealer.cluster.prepare import http_secret

ROLE = Path(__file__).resolve().parents[2] / "roles" / "sealer_registry"


def test_the_secret_is_random_private_and_kept(tmp_path: Path) -> None:
    a, b = http_secret(tmp_path / "a"), http_secret(tmp_path / "b")
    first = a.read_text()
    assert first != b.read_text() and len(first.strip()) == 64
    assert a.stat().st_mode & 0o777 == 0o600
    assert http_secret(a).read_text() == first  # kept across runs: the registry keeps its uploads valid


def test_the_role_reads_the_secret_from_the_file_and_never_diffs_the_configuration() -> None:
    template = (ROLE / "templates" / "registry.yml.j2").read_text()
    assert "lookup('ansible.builtin.file', sealer_registry_http_secret_file)" in template
    assert "hash('sha256')" not in template
    tasks = yaml.safe_load((ROLE / "tasks" / "serve.yml").read_text())
    writes = [t for t in tasks if (t.get("ansible.builtin.template") or {}).get("src") == "registry.yml.j2"]
    assert writes and all(t.get("diff") is False for t in writes)
