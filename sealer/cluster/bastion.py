"""Bastions in ssh's own terms: an operator's ProxyJump read from ``ansible_ssh_common_args``,
and the ProxyCommand that sends Ansible's ssh and the roles' rsync through a bastion.

sealer writes a ProxyCommand rather than a ProxyJump: ssh starts a ProxyJump's connection with
none of the command line's options, so it would use neither the bastion's key nor the cluster's
known_hosts; a ProxyCommand is a whole ssh command line of sealer's own.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from sealer.cluster.clusterfile import Bastion
from sealer.errors import ClusterfileError


def take_proxy_jump(args: str, where: str) -> tuple[str | None, list[str]]:
    """The ProxyJump in ssh arguments (``-J X``, ``-o ProxyJump=X``, ``-oProxyJump X``), and
    the other arguments; ``-o ProxyJump=none`` is no jump."""
    try:
        words = shlex.split(args)
    except ValueError as err:
        raise ClusterfileError(f"{where}: {err}") from err
    jump: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        option: str | None = None
        if word in ("-J", "-o") and i + 1 < len(words):
            option = f"ProxyJump={words[i + 1]}" if word == "-J" else words[i + 1]
            taken = 2
        elif word.startswith(("-J", "-o")) and len(word) > 2:
            option = f"ProxyJump={word[2:]}" if word.startswith("-J") else word[2:]
            taken = 1
        if option is not None:
            key, _, value = option.replace(" ", "=", 1).partition("=")
            if key.strip().lower() == "proxyjump":
                jump = None if value.strip().lower() == "none" else value.strip()
                i += taken
                continue
        rest.append(word)
        i += 1
    return jump, rest


def proxy_command(bastion: Bastion, known_hosts: Path) -> list[str]:
    """ssh arguments that carry a connection through ``bastion``, whose host key is checked
    in the cluster's known_hosts as strictly as the hosts' own."""
    jump = ["ssh", "-p", str(bastion.port)]
    if bastion.pk:
        jump += ["-i", bastion.pk, "-o", "IdentitiesOnly=yes"]
    jump += [
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=6",
        "-W", "[%h]:%p", f"{bastion.user}@{bastion.address}",
    ]  # fmt: skip
    return ["-o", "ProxyCommand=" + shlex.join(jump)]
