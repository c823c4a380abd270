"""The collection's role variables, kept in step in four places: what an operator may set is in a
role's defaults, its argument spec (the same default, a type and a description) and
inventory/sample; what a role works out for itself is in its vars/ and nowhere else; what sealer
sets for a run alone is an internal option of the spec. Every variable a role reads is one of
these, or set by the inventory sealer writes."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "inventory" / "sample"
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
VAR = re.compile(r"\bsealer_[a-z0-9_]+\b")
DOCUMENTED = re.compile(r"^[#\s]*(sealer_[a-z0-9_]+):", re.MULTILINE)
# a template's own names: Jinja {% set %} and shell functions
LOCAL = re.compile(r"\{%-?\s*set\s+(sealer_[a-z0-9_]+)|^\s*(sealer_[a-z0-9_]+)\(\)", re.MULTILINE)
# an argument spec's option that sealer sets for a run, which an operator never sets
INTERNAL = "Internal, "
# the argument spec's types, as YAML reads a default of each
TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "path": (str,), "int": (int,), "bool": (bool,),
                                      "list": (list,), "dict": (dict,)}  # fmt: skip


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


def _yaml(path: Path) -> dict[str, Any]:
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def defaults(role: str) -> dict[str, Any]:
    return _yaml(ROOT / "roles" / role / "defaults" / "main.yml")


def computed(role: str) -> dict[str, Any]:
    """What the role works out for itself (its vars/)."""
    return _yaml(ROOT / "roles" / role / "vars" / "main.yml")


def specs(role: str) -> dict[str, Any]:
    return dict(_yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml").get("argument_specs") or {})


def options(role: str) -> dict[str, dict[str, Any]]:
    return dict((specs(role).get("main") or {}).get("options") or {})


def dependencies(role: str) -> list[str]:
    deps = _yaml(ROOT / "roles" / role / "meta" / "main.yml").get("dependencies") or []
    return [str(d["role"] if isinstance(d, dict) else d).rsplit(".", 1)[-1] for d in deps]


def _reads(files: list[Path]) -> tuple[dict[str, str], set[str]]:
    """The sealer_ names in ``files`` (one place each), and those the tasks define themselves."""
    internal: set[str] = set()
    reads: dict[str, str] = {}
    for path in files:
        if not path.is_file() or "meta" in path.parts:
            continue
        text = path.read_text()
        if path.suffix == ".yml" and not {"defaults", "vars"} & set(path.parts):
            _internal(yaml.safe_load(text), internal)
        internal.update(name for m in LOCAL.finditer(text) for name in m.groups() if name)
        for match in VAR.finditer(text):
            reads.setdefault(match.group(0), str(path.relative_to(ROOT)))
    return reads, internal


@cache
def registered() -> frozenset[str]:
    """Every name a task of any role or playbook defines (results other roles may read)."""
    _, internal = _reads([*sorted((ROOT / "roles").rglob("*")), *sorted((ROOT / "playbooks").glob("*.yml"))])
    return frozenset(internal)


def all_computed() -> dict[str, str]:
    return {name: role for role in ROLES for name in computed(role)}


def internal_options() -> dict[str, str]:
    return {name: role for role in ROLES for name, spec in options(role).items()
            if " ".join(_lines(spec.get("description"))).startswith(INTERNAL)}  # fmt: skip


def _lines(description: Any) -> list[str]:
    return [description] if isinstance(description, str) else list(description or [])


def role_reads() -> dict[str, str]:
    """Every sealer_ variable a role or playbook reads from outside, and one place it is read."""
    files = [*sorted((ROOT / "roles").rglob("*")), *sorted((ROOT / "playbooks").glob("*.yml"))]
    reads, _ = _reads(files)
    return {name: where for name, where in reads.items()
            if name not in ROLES and name not in registered() and name not in all_computed()}  # fmt: skip


def declared_defaults() -> set[str]:
    return {name for role in ROLES for name in defaults(role)}


def documented() -> set[str]:
    return {m.group(1) for path in SAMPLE.rglob("*.y*ml") for m in DOCUMENTED.finditer(path.read_text())}


def set_by_inventory() -> set[str]:
    """What the sample's hosts.yaml and the header of its group_vars say sealer's inventory sets."""
    names = {m.group(1) for m in DOCUMENTED.finditer((SAMPLE / "hosts.yaml").read_text())}
    header = (SAMPLE / "group_vars" / "all.yml").read_text().split("# ----", 1)[0]
    return names | {m.group(1) for m in DOCUMENTED.finditer(header)}


def test_every_variable_a_role_reads_is_documented_in_the_sample() -> None:
    missing = {name: where for name, where in role_reads().items()
               if name not in documented() and name not in internal_options()}  # fmt: skip
    assert not missing, f"read by the roles, not documented in {SAMPLE.relative_to(ROOT)}: {missing}"


def test_every_variable_a_role_reads_has_one_declaration() -> None:
    declared = declared_defaults() | set_by_inventory() | set(internal_options())
    loose = {n: w for n, w in role_reads().items() if n not in declared}
    assert not loose, f"read by the roles, declared in no defaults and not set by the inventory: {loose}"


def test_the_sample_documents_nothing_the_roles_do_not_know() -> None:
    known = set(role_reads()) | declared_defaults() | {"sealer_image", "sealer_platform", "sealer_role",
                                                       "sealer_hostname"}  # fmt: skip
    stale = documented() - known
    assert not stale, f"documented in the sample but read by no role: {sorted(stale)}"


def test_the_sample_documents_what_an_operator_sets_and_nothing_the_roles_work_out() -> None:
    assert not documented() & set(all_computed()), "the roles' vars/ are not for an operator to set"
    assert not documented() & set(internal_options()), "sealer sets its internal variables for a run"
    assert declared_defaults() <= documented()


def test_a_variable_is_either_a_default_or_worked_out_by_a_role_never_both() -> None:
    both = {name: role for name, role in all_computed().items() if name in declared_defaults()}
    assert not both, f"in a role's defaults and in vars/: {both}"
    assert not set(all_computed()) & set(internal_options())


def test_what_sealer_writes_into_the_inventory_is_never_in_a_roles_vars() -> None:
    # a role's vars/ outrank the inventory: a variable there would silently override sealer's value
    written = {name for path in (ROOT / "sealer").rglob("*.py") for name in re.findall(r"[\"'](sealer_[a-z0-9_]+)[\"']",
               path.read_text())}  # fmt: skip
    assert "sealer_registry_domain" in written  # the search sees what prepare.py writes
    overridden = {name: role for name, role in all_computed().items() if name in written}
    assert not overridden, f"set by sealer's Python, overridden by a role's vars/: {overridden}"


def test_every_role_has_an_argument_spec_for_each_entry_point() -> None:
    for role in ROLES:
        entry_points = {"main"} | {
            p.stem for p in (ROOT / "roles").rglob("*.yml")
            for m in re.finditer(rf"tasks_from:\s*({role}/)?(\w+)", p.read_text()) if m.group(2)
        }  # fmt: skip
        assert entry_points <= set(specs(role)), f"roles/{role}/meta/argument_specs.yml: {entry_points}"
        assert specs(role)["main"].get("short_description"), role


def test_every_default_is_an_option_of_the_spec_with_the_same_default() -> None:
    for role in ROLES:
        spec = options(role)
        for name, value in defaults(role).items():
            assert name in spec, f"roles/{role}: default {name} is not in meta/argument_specs.yml"
            assert "default" in spec[name], f"roles/{role}: the spec gives {name} no default"
            assert spec[name]["default"] == value, f"roles/{role}: {name} defaults to {value!r}, not as its spec says"


def test_every_option_has_a_type_a_description_and_a_home() -> None:
    for role in ROLES:
        for name, spec in options(role).items():
            where = f"roles/{role}/meta/argument_specs.yml: {name}"
            assert spec.get("type") in TYPES, where
            assert " ".join(_lines(spec.get("description"))).strip(), f"{where} has no description"
            if "default" in spec:  # a default lives in the role's defaults, the spec only shows it
                assert name in defaults(role), f"{where} has a default the role's defaults do not give it"
                assert isinstance(spec["default"], TYPES[spec["type"]]), f"{where}: the default is not a {spec['type']}"
                if spec["type"] == "list":
                    assert all(isinstance(v, TYPES[spec["elements"]]) for v in spec["default"]), where
            # an operator finds it in the sample, or sealer sets it alone
            assert name in documented() or name in internal_options(), f"{where} is documented nowhere"
            assert name not in all_computed(), f"{where} is worked out by a role (vars/), not an input"


def test_the_spec_covers_every_variable_the_role_reads_from_outside() -> None:
    for role in ROLES:
        path = ROOT / "roles" / role
        reads, _ = _reads(sorted(path.rglob("*")))
        given = set(computed(role)) | set(options(role)) | registered()
        for dep in dependencies(role):
            given |= set(computed(dep)) | set(options(dep))
        missing = {name: where for name, where in reads.items() if name not in given and name not in ROLES}
        assert not missing, f"roles/{role} reads variables its argument spec does not list: {missing}"


def test_the_sample_inventory_parses() -> None:
    hosts = yaml.safe_load((SAMPLE / "hosts.yaml").read_text())
    children = hosts["all"]["children"]
    assert set(children) >= {"master", "node", "registry"}
