"""docs/cli.md is the help of every command as the code has it now (scripts/gen-cli-doc.py writes it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen-cli-doc.py"
PAGE = ROOT / "docs" / "cli.md"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_page_is_what_the_commands_print_now() -> None:
    gen = _generator()
    assert PAGE.read_text(encoding="utf-8") == gen.render(), (
        f"docs/cli.md is stale: run `{gen.COMMAND}` and commit docs/cli.md"
    )


def test_the_page_has_every_command_and_subcommand() -> None:
    import click

    from sealer.cli import cli

    page = PAGE.read_text(encoding="utf-8")
    paths = ["sealer"]
    for name, command in cli.commands.items():
        paths.append(f"sealer {name}")
        if isinstance(command, click.Group):
            paths.extend(f"sealer {name} {sub}" for sub in command.commands)
    missing = [path for path in paths if f"\n## {path}\n" not in page]
    assert not missing, f"docs/cli.md lacks {missing}: run `{_generator().COMMAND}`"


def test_the_page_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _generator()
    wide = gen.render()
    monkeypatch.setenv("COLUMNS", "40")
    assert gen.render() == wide
