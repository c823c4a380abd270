"""What several commands' options mean, read one way: --platform lists and --output."""

from __future__ import annotations

from sealer.commands._output import RichReporter
from sealer.oci.platform import Platform


def platform_filter(text: str | None) -> list[Platform] | None:
    """``--platform`` on a command that works on what exists: only these, or (None) every one."""
    return Platform.parse_list(text) if text is not None else None


def build_platforms(text: str | None) -> list[Platform]:
    """``--platform`` on a command that makes images: these, checked buildable, or this host's."""
    return Platform.parse_build_list(text) if text is not None else [Platform.host()]


def reporter_for(output: str) -> RichReporter:
    """Progress for a person; none when the output is JSON for a script."""
    return RichReporter(quiet=output == "json")
