"""inventory/sample documents every variable the collection's roles read, and every one of them
is declared in a role's defaults or set by the inventory sealer writes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "inventory" / "sample"
VAR = re.compile(r"\bsealer_[a-z0-9_]+\b")
DOCUMENTED = re.compile(r"^[#\s]*(sealer_[a-z0-9_]+):", re.MULTILINE)
# a template's own names: Jinja {% set %} and shell functions
LOCAL = re.compile(r"\{%-?\s*set\s+(sealer_[a-z0-9_]+)|^\s*(sealer_[a-z0-9_]+)\(\)", re.MULTILINE)


def _internal(node: Any, out: set[str]) -> None:
    """Names a task defines for itself: registered results, task vars and facts."""
    if isinstance(node, list):
        for item in node:
            _internal(item, out)
    elif isinstance(node, dict):
        if isinstance(node.get("register"), str):
            out.add(node["register"])
        for key in ("vars", "ansible.builtin.set_fact"):
            if isinstance(node.get(key), dict):
                out.update(node[key])
        for value in node.values():
            _internal(value, out)


def role_reads() -> dict[str, str]:
    """Every sealer_ variable a role or playbook reads, and one place it is read."""
    roles = {p.name for p in (ROOT / "roles").iterdir()}
    internal: set[str] = set()
    reads: dict[str, str] = {}
    files = [*sorted((ROOT / "roles").rglob("*")), *sorted((ROOT / "playbooks").glob("*.yml"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text()
        if path.suffix == ".yml" and "vars" in path.parts:  # what roles compute: not for an operator
            internal.update(yaml.safe_load(text) or {})
        elif path.suffix == ".yml" and "defaults" not in path.parts and "meta" not in path.parts:
            _internal(yaml.safe_load(text), internal)
        internal.update(name for m in LOCAL.finditer(text) for name in m.groups() if name)
        for match in VAR.finditer(text):
            reads.setdefault(match.group(0), str(path.relative_to(ROOT)))
    return {name: where for name, where in reads.items() if name not in roles and name not in internal}


def declared_defaults() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "roles").glob("*/defaults/main.yml"):
        names.update(yaml.safe_load(path.read_text()) or {})
    return names


def documented() -> set[str]:
    return {m.group(1) for path in SAMPLE.rglob("*.y*ml") for m in DOCUMENTED.finditer(path.read_text())}


def test_every_variable_a_role_reads_is_documented_in_the_sample() -> None:
    missing = {name: where for name, where in role_reads().items() if name not in documented()}
    assert not missing, f"read by the roles, not documented in {SAMPLE.relative_to(ROOT)}: {missing}"


def test_every_variable_a_role_reads_has_one_declaration() -> None:
    set_by_inventory = {m.group(1) for m in DOCUMENTED.finditer((SAMPLE / "hosts.yaml").read_text())}
    header = (SAMPLE / "group_vars" / "all.yml").read_text().split("# ----", 1)[0]
    set_by_inventory |= {m.group(1) for m in DOCUMENTED.finditer(header)}
    loose = {n: w for n, w in role_reads().items() if n not in declared_defaults() and n not in set_by_inventory}
    assert not loose, f"read by the roles, declared in no defaults and not set by the inventory: {loose}"


def test_the_sample_documents_nothing_the_roles_do_not_know() -> None:
    known = set(role_reads()) | declared_defaults() | {"sealer_image", "sealer_platform", "sealer_role",
                                                       "sealer_hostname"}  # fmt: skip
    stale = documented() - known
    assert not stale, f"documented in the sample but read by no role: {sorted(stale)}"


def test_the_sample_inventory_parses() -> None:
    hosts = yaml.safe_load((SAMPLE / "hosts.yaml").read_text())
    children = hosts["all"]["children"]
    assert set(children) >= {"master", "node", "registry"}
