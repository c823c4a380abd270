"""The ``sealer`` command line: parses arguments, calls one command module, maps errors to exit codes."""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from sealer import __version__
from sealer.errors import Interrupted, SealerError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT = click.option(
    "--output", "-o", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="Text for people, JSON for scripts.",
)  # fmt: skip
PLATFORM = click.option("--platform", metavar="OS/ARCH[/VARIANT],...", help="Only these platforms.")


def _key_values(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"{flag} expects name=value, got {item!r}")
        out[key] = value
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sealer")
def cli() -> None:
    """Build, ship and run multi-architecture Kubernetes cluster images."""


@cli.command()
@click.argument("context", default=".", type=click.Path(file_okay=False))
@click.option("-f", "--file", "kubefile", type=click.Path(dir_okay=False), help="Kubefile (default CONTEXT/Kubefile).")
@click.option("-t", "--tag", required=True, help="Name of the image: name:tag.")
@click.option(
    "--platform", "platforms", metavar="OS/ARCH[/VARIANT],...", help="Platforms to build (default: this host's)."
)
@click.option("--build-arg", "build_args", multiple=True, metavar="NAME=VALUE", help="Set an ARG.")
@click.option("--no-cache", is_flag=True, help="Rebuild every layer.")
@click.option(
    "--image-list",
    "image_lists",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="A file of container image references (one per line) to cache too.",
)
@click.option(
    "--ignore-image",
    "ignore_images",
    multiple=True,
    metavar="PATTERN",
    help="Do not cache references matching this (a name or a glob).",
)
@click.option("--allow-missing-images", is_flag=True, help="Warn, instead of failing, when an image cannot be cached.")
@OUTPUT
def build(context: str, kubefile: str | None, tag: str, platforms: str | None, build_args: tuple[str, ...],
          no_cache: bool, image_lists: tuple[str, ...], ignore_images: tuple[str, ...], allow_missing_images: bool,
          output: str) -> None:  # fmt: skip
    """Build an image from a Kubefile, one per platform, under one name.

    The container images its manifests, charts and image lists name are fetched for each
    platform into a "rootfs cache" layer (set SEALER_REGISTRY_MIRRORS=docker.io=HOST:PORT to
    fetch them from a mirror)."""
    from sealer.commands import build as cmd

    cmd.run(context, kubefile, tag, platforms, _key_values(build_args, "--build-arg"), no_cache, output,
            image_lists, ignore_images, allow_missing_images)  # fmt: skip


@cli.command()
@OUTPUT
def images(output: str) -> None:
    """List images: one row per name and platform."""
    from sealer.commands import images as cmd

    cmd.run(output)


@cli.command()
@click.argument("target")
@PLATFORM
def inspect(target: str, platform: str | None) -> None:
    """Show an image: NAME:TAG prints its manifests list, an ID or --platform its image YAML."""
    from sealer.commands import inspect as cmd

    cmd.run(target, platform)


@cli.command()
@click.argument("names", nargs=-1, required=True)
@PLATFORM
@OUTPUT
def rmi(names: tuple[str, ...], platform: str | None, output: str) -> None:
    """Remove images by name or id (every platform, or only --platform ones); all are checked first."""
    from sealer.commands import rmi as cmd

    cmd.run(list(names), platform, output)


@cli.command()
@click.argument("source")
@click.argument("target")
def tag(source: str, target: str) -> None:
    """Give an image (a name, or an id: that platform image) another name."""
    from sealer.commands import tag as cmd

    cmd.run(source, target)


INSECURE = click.option("--insecure", is_flag=True, help="Plain HTTP to this registry (loopback is always allowed).")


@cli.command()
@click.option(
    "-o",
    "--output-file",
    "archive",
    required=True,
    type=click.Path(dir_okay=False),
    help="The tar to write, or - for standard output.",
)
@click.argument("names", nargs=-1, required=True)
@PLATFORM
@click.option("--output", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def save(archive: str, names: tuple[str, ...], platform: str | None, output: str) -> None:
    """Save images (names or ids) as an OCI archive; -o - writes it to standard output."""
    from sealer.commands import archive_io as cmd

    cmd.save(archive, list(names), platform, output)


@cli.command()
@click.option("-i", "--input", "archive", required=True, help="The tar to read, or - for stdin.")
@OUTPUT
def load(archive: str, output: str) -> None:
    """Load images from an OCI archive, verifying every blob first."""
    from sealer.commands import archive_io as cmd

    cmd.load(archive, output)


@cli.command()
@click.argument("name")
@PLATFORM
@click.option(
    "--replace-index", is_flag=True,
    help="With --platform: the tag names only these platforms (default: they join the registry's index).",
)  # fmt: skip
@INSECURE
@OUTPUT
def push(name: str, platform: str | None, replace_index: bool, insecure: bool, output: str) -> None:
    """Push an image (every platform, or only --platform ones) to its registry; NAME may be an image id."""
    from sealer.commands import remote as cmd

    cmd.push(name, platform, insecure, replace_index, output)


@cli.command()
@click.argument("name")
@PLATFORM
@INSECURE
@OUTPUT
def pull(name: str, platform: str | None, insecure: bool, output: str) -> None:
    """Pull an image (every platform, or only --platform ones) from its registry."""
    from sealer.commands import remote as cmd

    cmd.pull(name, platform, insecure, output)


@cli.command()
@click.argument("registry")
@click.option("-u", "--username", required=True)
@click.option("-p", "--password", help="Prefer --password-stdin: arguments show in process listings.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@INSECURE
def login(registry: str, username: str, password: str | None, password_stdin: bool, insecure: bool) -> None:
    """Check credentials against a registry and store them (Docker config.json, mode 0600)."""
    from sealer.commands import remote as cmd

    cmd.login(registry, username, password, password_stdin, insecure)


@cli.command()
@click.argument("registry")
def logout(registry: str) -> None:
    """Forget a registry's credentials."""
    from sealer.commands import remote as cmd

    cmd.logout(registry)


@cli.command()
@click.argument("names", nargs=-1, required=True)
@click.option("-t", "--tag", required=True, help="Name of the merged image.")
@PLATFORM
@INSECURE
@OUTPUT
def merge(names: tuple[str, ...], tag: str, platform: str | None, insecure: bool, output: str) -> None:
    """Merge app images built on one base (default: this host's platform; --platform: each named)."""
    from sealer.commands import merge as cmd

    cmd.merge(list(names), tag, platform, insecure, output)


BASTION = click.option(
    "--bastion",
    metavar="[USER@]IP[:PORT]",
    help="Reach the hosts through this jump host (logs in with the hosts' key; user: -u's).",
)


def _given(*params: tuple[str, str]) -> list[str]:
    """The flags (of ``(parameter, flag)``) the command line set, and the variables the environment
    set for one ($NAME); not defaults."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    envvars = {p.name: p.envvar for p in ctx.command.params}
    out = []
    for param, flag in params:
        source = ctx.get_parameter_source(param)
        if source == ParameterSource.COMMANDLINE:
            out.append(flag)
        elif source == ParameterSource.ENVIRONMENT:
            out.append(f"${envvars[param]}")
    return out


READY_TIMEOUT = click.option(
    "--ready-timeout", type=click.IntRange(min=0), metavar="SECONDS",
    help="How long to wait for the hosts that join to be Ready in the API (default 300).",
)  # fmt: skip


@cli.command()
@click.argument("image", required=False)
@click.option("-m", "--masters", metavar="IP[,IP...]", help="Master hosts (ranges like 10.0.0.1-10.0.0.3 too).")
@click.option("-n", "--nodes", metavar="IP[,IP...]", help="Worker hosts.")
@click.option("-f", "--clusterfile", type=click.Path(dir_okay=False), help="A Clusterfile (sealer.cloud/v2).")
@click.option(
    "-i", "--inventory", type=click.Path(), help="An Ansible inventory (YAML or INI): groups master and node."
)
@click.option("-u", "--user", default="root", show_default=True, help="SSH user.")
@click.option("-p", "--password", envvar="SEALER_SSH_PASSWORD", help="SSH password (prefer $SEALER_SSH_PASSWORD).")
@click.option("--pk", type=click.Path(dir_okay=False), help="SSH private key.")
@click.option("--port", default=22, show_default=True, type=click.IntRange(1, 65535), help="SSH port.")
@click.option("--cluster", "name", help="Cluster name (default: the Clusterfile's, or my-cluster).")
@click.option("--strict-host-keys", is_flag=True, help="Refuse hosts whose key is not known yet.")
@click.option("--check", is_flag=True, help="Change nothing: say, per host, what a run would change.")
@click.option("--diff", is_flag=True, help="With --check: show the differences of the files a run would change.")
@click.option(
    "--verify", is_flag=True,
    help="Compare every rootfs file by content (checksums; slower), repair each that differs and name it.",
)  # fmt: skip
@BASTION
@click.option(
    "--distribution", type=click.Choice(["rsync", "swarm", "auto"]),
    help="How hosts get their first rootfs: rsync from here, a BitTorrent swarm, or auto (a swarm past "
    "8 new hosts of a platform; default: the Clusterfile's spec.distribution, else auto).",
)  # fmt: skip
@READY_TIMEOUT
@OUTPUT
def run(image: str | None, masters: str | None, nodes: str | None, clusterfile: str | None, inventory: str | None,
        user: str, password: str | None, pk: str | None, port: int, name: str | None, strict_host_keys: bool,
        check: bool, diff: bool, verify: bool, bastion: str | None, distribution: str | None,
        ready_timeout: int | None, output: str) -> None:  # fmt: skip
    """Run an image on hosts: each gets the rootfs of its own platform.

    With --cluster of a running cluster and no hosts: an app image built FROM its image."""
    from sealer.commands import run as cmd

    if clusterfile:
        cmd.refuse_ssh_flags(_given(("user", "-u"), ("password", "-p"), ("pk", "--pk"), ("port", "--port")))
    args = cmd.RunArgs(image, masters, nodes, clusterfile, inventory, user, password, pk, port, name, bastion,
                       strict_host_keys, check, diff, distribution, output, ready_timeout, verify)  # fmt: skip
    cmd.run(cmd.load_cluster(args), args)


@cli.command()
@click.option("--cluster", "name", help="The cluster (default: the only one).")
@click.option("--strict-host-keys", is_flag=True, help="Refuse hosts whose key is not known yet.")
@OUTPUT
def verify(name: str | None, strict_host_keys: bool, output: str) -> None:
    """Compare every host's rootfs with the cluster's image by content; change nothing (exit 1 when any differs)."""
    from sealer.commands import verify as cmd

    cmd.verify(name, strict_host_keys, output)


JOIN_BASTION = click.option(
    "--bastion",
    metavar="[USER@]IP[:PORT]",
    help="Reach the new hosts through this jump host (logs in as the cluster's hosts do, unless it says a user).",
)


@cli.command()
@click.option("-m", "--masters", metavar="IP[,IP...]", help="Masters to add.")
@click.option("-n", "--nodes", metavar="IP[,IP...]", help="Nodes to add.")
@click.option("--cluster", "name", help="The cluster (default: the only one).")
@click.option("--strict-host-keys", is_flag=True, help="Refuse hosts whose key is not known yet.")
@click.option("--check", is_flag=True, help="Change nothing: say, per host, what a run would change.")
@click.option("--diff", is_flag=True, help="With --check: show the differences of the files a run would change.")
@JOIN_BASTION
@READY_TIMEOUT
@OUTPUT
def join(masters: str | None, nodes: str | None, name: str | None, strict_host_keys: bool, check: bool, diff: bool,
         bastion: str | None, ready_timeout: int | None, output: str) -> None:  # fmt: skip
    """Add hosts to a cluster (each gets its own platform's rootfs) and wait until they are Ready."""
    from sealer.commands import cluster as cmd

    cmd.join(cmd.JoinArgs(masters, nodes, name, strict_host_keys, check, diff, bastion, output, ready_timeout))


@cli.command()
@click.option("-m", "--masters", metavar="IP[,IP...]", help="Masters to remove.")
@click.option("-n", "--nodes", metavar="IP[,IP...]", help="Nodes to remove.")
@click.option("--all", "everything", is_flag=True, help="Reset every host and remove the cluster's local state.")
@click.option("--cluster", "name", help="The cluster (default: the only one).")
@click.option("--no-drain", is_flag=True, help="Do not drain the hosts' Nodes before resetting them.")
@click.option(
    "--force", is_flag=True,
    help="Remove hosts that cannot be reached: their Node and etcd member go through the other masters, nothing "
    "runs on them.",
)  # fmt: skip
@OUTPUT
def delete(masters: str | None, nodes: str | None, everything: bool, name: str | None, no_drain: bool, force: bool,
           output: str) -> None:  # fmt: skip
    """Drain, reset and remove hosts from the cluster (masters one at a time, keeping etcd's quorum),
    or the whole cluster with --all."""
    from sealer.commands import cluster as cmd

    cmd.delete(cmd.DeleteArgs(masters, nodes, everything, name, output, drain=not no_drain, force=force))


@cli.command()
@click.argument("image")
@click.option("--cluster", "name", help="The cluster (default: the only one).")
@click.option("--check", is_flag=True, help="Change nothing: print the plan, per host in order.")
@click.option(
    "--max-unavailable", default="1", show_default=True, metavar="N|P%",
    help="Nodes upgraded at once: a number, or a percentage of the nodes.",
)  # fmt: skip
@click.option("--no-drain", is_flag=True, help="Do not drain (nor uncordon) the hosts.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask; needed when there is no terminal to ask on.")
@click.option("--strict-host-keys", is_flag=True, help="Refuse hosts whose key is not known yet.")
@OUTPUT
def upgrade(image: str, name: str | None, check: bool, max_unavailable: str, no_drain: bool, yes: bool,
            strict_host_keys: bool, output: str) -> None:  # fmt: skip
    """Upgrade a cluster to a new image: masters one at a time, then the nodes in batches.

    Refused before any host is reached: another kind of image, a host's platform missing, an older
    Kubernetes version or one more than one minor version ahead (kubeadm's version skew policy).
    A failure or a signal stops at a host; running the same command again resumes."""
    from sealer.commands import upgrade as cmd

    cmd.run(cmd.UpgradeArgs(image, name, check, max_unavailable, no_drain, yes, strict_host_keys, output))


@cli.command()
@click.option("--cluster", "name", help="Only this cluster.")
@OUTPUT
def ps(name: str | None, output: str) -> None:
    """List clusters: each host's role, platform, and Ready, version and scheduling from the API."""
    from sealer.commands import cluster as cmd

    cmd.ps(name, output)


@cli.command()
@OUTPUT
def fsck(output: str) -> None:
    """Verify every blob's digest and every reference in the store (exit 1 on a problem)."""
    from sealer.commands import store as cmd

    cmd.fsck(output)


@cli.command()
@OUTPUT
def prune(output: str) -> None:
    """Remove blobs, unpacked layers and leftovers no image uses (waits for running commands)."""
    from sealer.commands import store as cmd

    cmd.prune(output)


@cli.group()
def registry() -> None:
    """Registry trees (the filesystem layout docker-registry serves)."""


@registry.command("merge")
@click.argument("out", type=click.Path(file_okay=False))
@click.argument("trees", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option(
    "--replace", is_flag=True, help="Replace OUT when it exists and is not empty (after the new one is made)."
)
@OUTPUT
def registry_merge(out: str, trees: tuple[str, ...], replace: bool, output: str) -> None:
    """Merge registry trees into a new OUT: tags found in several become multi-arch indexes.

    OUT is made beside its final place and renamed in; it may be no input, nor inside one."""
    from sealer.commands import registry as cmd

    cmd.merge(out, list(trees), replace, output)


@cli.group()
def sandbox() -> None:
    """Hosts on this machine (systemd-nspawn machines on a bridge) to try sealer on. Needs root."""


@sandbox.command("up")
@click.argument("name")
@click.option("--hosts", required=True, metavar="ARCH,ARCH,...", help="One host per entry: amd64 or arm64.")
@click.option("--user", default="", metavar="USER", help="A login user with sudo on every host; root cannot log in.")
@click.option("--sudo-password", is_flag=True, help="The user's sudo asks for the sandbox's password.")
@click.option(
    "--bastion",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Host N is a bastion: the others sit on an internal bridge only it reaches.",
)
@click.option(
    "--link-rate",
    default="",
    metavar="RATE",
    help="Limit each host's link (both ways) and the controller's uplink to RATE with tc, e.g. 100mbit.",
)
def sandbox_up(name: str, hosts: str, user: str, sudo_password: bool, bastion: int | None, link_rate: str) -> None:
    """Boot a sandbox: one host per --hosts entry, each running systemd."""
    from sealer.commands import sandbox as cmd

    cmd.up(name, hosts, user, sudo_password, bastion or 0, link_rate)


@sandbox.command("down")
@click.argument("name")
def sandbox_down(name: str) -> None:
    """Remove a sandbox and everything it made."""
    from sealer.commands import sandbox as cmd

    cmd.down(name)


@sandbox.command("reboot")
@click.argument("name")
@click.argument("host")
def sandbox_reboot(name: str, host: str) -> None:
    """Reboot one host (by name or address): every process ends, systemd boots again, the disk stays."""
    from sealer.commands import sandbox as cmd

    cmd.reboot(name, host)


@sandbox.command("stop")
@click.argument("name")
@click.argument("host")
def sandbox_stop(name: str, host: str) -> None:
    """Power one host (by name or address) off: every process ends, its address stops answering."""
    from sealer.commands import sandbox as cmd

    cmd.stop(name, host)


@sandbox.command("start")
@click.argument("name")
@click.argument("host")
def sandbox_start(name: str, host: str) -> None:
    """Power a stopped host on again: systemd boots and starts the enabled units, the disk as it was."""
    from sealer.commands import sandbox as cmd

    cmd.start(name, host)


@sandbox.command("ls")
@OUTPUT
def sandbox_ls(output: str) -> None:
    """List sandbox hosts: name, address, platform, key."""
    from sealer.commands import sandbox as cmd

    cmd.ls(output)


def main() -> None:
    from sealer import _signals

    _signals.install()
    try:
        cli.main(standalone_mode=False)
    except Interrupted as signalled:
        _signals.end_children()
        sys.stderr.write(f"sealer: interrupted by {signal.Signals(signalled.signum).name}\n")
        sys.exit(128 + signalled.signum)
    except click.exceptions.Abort:
        sys.stderr.write("sealer: interrupted\n")
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
    except SealerError as err:
        sys.stderr.write(f"sealer: error: {err}\n")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("sealer: interrupted\n")
        sys.exit(130)
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        hint = " (the disk is full)" if err.errno == errno.ENOSPC else ""
        sys.stderr.write(f"sealer: error: {err.strerror}{where}{hint}\n")
        sys.exit(1)
