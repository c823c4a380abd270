"""The ``sealer`` program (``python -m sealer`` and the console script).

``sealer --version`` is answered here, before click and the command line are imported: it
is what scripts and installers run to see whether sealer is there, so it should cost no
more than starting Python. So is an unchanged ``sealer build``, from the memo of the last
build with the same arguments (:func:`sealer.commands.build.replay`): in a CI pipeline or a
Makefile that rebuilds on every run, starting up was most of its time. Everything else goes
to :mod:`sealer.cli`, which imports a command's modules only when that command runs.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from sealer import __version__

        sys.stdout.write(f"sealer, version {__version__}\n")  # the line click's version option prints
        return
    from sealer._secret_env import scrub_secrets

    scrub_secrets()  # before any work: passwords out of /proc/PID/environ
    if sys.argv[1:2] == ["build"]:
        from sealer.commands.build import replay

        if replay(sys.argv[2:]):
            return
    from sealer.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
