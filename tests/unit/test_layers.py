"""The package's layering: imports run one way, from the command line down to the OCI types.

A new import that crosses a layer the wrong way fails here, naming the file and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sealer"

# What each part of the package may import from the others (besides itself). Read top down:
# the command line, the verbs, the cluster and sandbox, building, the rootfs cache, registries
# and archives, the store, the OCI types; errors, progress, faults, names and _fs are for everyone.
BASE = {"errors", "faults", "progress", "_fs", "names", "input_limits", "__version__"}
ALLOWED: dict[str, set[str]] = {
    "__main__": {"cli", "commands", "_secret_env", "__version__"},
    "cli": {"commands", "_signals"} | BASE,
    "commands": {"cluster", "sandbox", "build", "rootfs_cache", "distribution", "store", "oci", "_secret_env"} | BASE,
    "cluster": {"rootfs_cache", "store", "oci"} | BASE,
    "sandbox": {"store", "oci"} | BASE,
    "build": {"rootfs_cache", "distribution", "store", "oci"} | BASE,
    "rootfs_cache": {"distribution", "store", "oci"} | BASE,
    "distribution": {"store", "oci"} | BASE,
    "store": {"oci"} | BASE,
    "oci": {"errors", "names"},
    "_fs": {"errors", "faults"},
    "names": {"errors"},
    "input_limits": {"errors"},
    "_signals": {"errors"},
    "_secret_env": set(),
    "errors": set(),
    "faults": set(),
    "progress": set(),
    "__init__": set(),
    "_collection": set(),
}
# Library code raises; only the command line prints and exits.
MAY_PRINT = {"cli", "commands"}


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def _sealer_imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sealer":
            parts = node.module.split(".")
            if len(parts) > 1:
                found.append((node.lineno, parts[1]))
            else:
                found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("sealer."))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "_collection" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    part = _part(path)
    assert part in ALLOWED, f"{path}: a new part of the package; add it to ALLOWED in this test"
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {part} imports {target}"
        for line, target in _sealer_imports(ast.parse(path.read_text()))
        if target != part and target not in ALLOWED[part]
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_code_never_prints_or_exits(path: Path) -> None:
    if _part(path) in MAY_PRINT:
        return
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if (name == "print" and not owner) or (owner, name) in {("sys", "exit"), ("os", "_exit")}:
                calls.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {owner + '.' if owner else ''}{name}")
    assert not calls, "\n".join(calls)


def test_the_layers_have_no_cycle() -> None:
    seen: dict[str, int] = {}

    def visit(part: str, stack: tuple[str, ...]) -> None:
        assert part not in stack, " -> ".join((*stack, part))
        if seen.get(part):
            return
        for target in ALLOWED.get(part, set()) - {part}:
            visit(target, (*stack, part))
        seen[part] = 1

    for part in ALLOWED:
        visit(part, ())
