"""The front page's links lead into the checkout, nothing points outside it, and the manual names
every variable the roles declare. (mkdocs build --strict checks the links inside docs/.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# where sources, docs and the collection live: none of them may name a file outside the checkout
SEARCHED = ("README.md", "docs", "sealer", "roles", "playbooks", "plugins", "inventory", "tests", "scripts", "bench")
OUTSIDE = re.compile(r"\.\./shared/|/work/shared|shared/reference")


def test_every_relative_link_of_the_front_page_leads_to_a_file_of_the_checkout() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t for t in LINK.findall(readme) if "://" not in t]
    assert targets, "README.md links into docs/"
    broken = [t for t in targets if not (ROOT / t).resolve().is_relative_to(ROOT) or not (ROOT / t).exists()]
    assert not broken, f"README.md links to {broken}, which the checkout does not hold"


def _text_files() -> list[Path]:
    files: list[Path] = []
    for name in SEARCHED:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files.extend(p for p in candidates if "__pycache__" not in p.parts and p.suffix not in {".pyc", ".so"})
    return [p for p in files if p != Path(__file__).resolve()]  # this file names the patterns it looks for


def test_nothing_points_outside_the_checkout() -> None:
    found = []
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found.extend(
            f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)
        )
    assert not found, f"these name files outside the repository (the contract is docs/design/multi-arch.md): {found}"


def test_the_manual_names_every_variable_a_role_declares() -> None:
    manual = (ROOT / "docs" / "ansible.md").read_text(encoding="utf-8")
    declared = {
        f"{defaults.parts[-3]}: {name}"
        for defaults in sorted(ROOT.glob("roles/*/defaults/main.yml"))
        for name in (yaml.safe_load(defaults.read_text(encoding="utf-8")) or {})
    }
    assert declared
    missing = sorted(d for d in declared if f"`{d.split(': ')[1]}`" not in manual)
    assert not missing, f"docs/ansible.md does not document {missing}"
