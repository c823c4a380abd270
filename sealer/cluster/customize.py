"""A cluster's own files, beside the image's rootfs: what the Clusterfile's Configs and env make
of the image's files, prepared on the controller before delivery.

The image's rootfs is a read-only mount; the changed files go to a tree of their own per
platform and env group (``custom/<platform>-<env digest>/`` in the cluster's directory), which
the rootfs role sends in the same rsync as the rootfs, before it: rsync takes a path that two
sources hold from the first, so the host receives the customised file, ``--delete`` keeps it,
and a re-run with the same Configs and env finds the same file (same content, same time) and
sends nothing. The tree holds:

- each ``*.tmpl`` of the image's etc/, charts/ and manifests/ rendered with the group's env;
- each Config's file, from the image's file (or its rendering, when a template makes it);
- ``.sealer/env`` (0600, in a 0700 directory): the group's env as ``export`` lines, which the
  init script reads (its process is rsync's receiving shell: no stdin of its own to pass them).

Hosts whose env differs (``hosts[].env``) are in different groups: each group has its own
rendering. The trees persist between runs, so their files keep their times; a file no longer
made is removed from the tree (and then from the hosts, by rsync's ``--delete``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sealer._fs import atomic_write
from sealer.cluster.clusterfile import Cluster
from sealer.cluster.config_docs import ConfigDoc, apply_configs
from sealer.cluster.env import TEMPLATE_SUFFIX, render_tree, shell_exports, templates
from sealer.oci.platform import Platform

ENV_FILE = ".sealer/env"


@dataclass
class Customized:
    """Each host's tree (empty when the cluster customises nothing) and the rootfs-relative
    paths the trees hold per host (what ``run --check`` names as the Configs' files)."""

    trees: dict[str, Path] = field(default_factory=dict)
    paths: dict[str, frozenset[str]] = field(default_factory=dict)


def env_digest(env: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(env.items())).encode()).hexdigest()[:12]


def customize(
    cluster: Cluster, platforms: Mapping[str, Platform], rootfs: Mapping[Platform, Path], work: Path
) -> Customized:
    """Prepare the trees of every (platform, env group) the cluster's hosts make, under
    ``work/custom``; ``platforms``: each host's platform, ``rootfs``: each platform's mounted
    rootfs. Trees no host uses any more are removed."""
    base = work / "custom"
    out = Customized()
    used: set[str] = set()
    for env, hosts in cluster.env_groups():
        for platform in sorted({platforms[h.address] for h in hosts}):
            source = rootfs[platform]
            wanted = _wanted(cluster.configs, source, env)
            if not wanted:
                continue
            name = f"{platform.group_name}-{env_digest(env)}"
            used.add(name)
            tree = base / name
            build_tree(tree, source, env, cluster.configs)
            for host in hosts:
                if platforms[host.address] == platform:
                    out.trees[host.address] = tree
                    out.paths[host.address] = frozenset(p for p in wanted if p != ENV_FILE)
    if base.is_dir():
        for stale in base.iterdir():
            if stale.name not in used:
                shutil.rmtree(stale)
    return out


def _wanted(configs: list[ConfigDoc], rootfs: Path, env: Mapping[str, str]) -> set[str]:
    """The paths a tree holds: every template's rendering, every Config's file, the env file."""
    rendered = {t.relative_to(rootfs).as_posix()[: -len(TEMPLATE_SUFFIX)] for t in templates(rootfs)}
    return rendered | {c.path for c in configs} | ({ENV_FILE} if env else set())


def build_tree(tree: Path, rootfs: Path, env: Mapping[str, str], configs: list[ConfigDoc]) -> list[str]:
    """Make ``tree`` hold the customised files of ``rootfs`` for ``env``; the paths it changed.
    Everything is made in a scratch tree first; a file of ``tree`` is written only when its
    content or mode changes (its time stays otherwise, and rsync sends nothing)."""
    tree.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = tree.with_name(f".{tree.name}.new")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    try:
        rendered = set(render_tree(rootfs, env, out=scratch))
        # a Config of a file a template makes starts from the rendering, any other from the image's
        on_rendering = [c for c in configs if c.path in rendered]
        on_image = [c for c in configs if c.path not in rendered]
        if on_rendering:
            apply_configs(on_rendering, scratch, scratch)
        if on_image:
            apply_configs(on_image, scratch, rootfs)
        if env:
            (scratch / ENV_FILE).parent.mkdir(mode=0o700)
            atomic_write(scratch / ENV_FILE, shell_exports(env).encode(), mode=0o600)
        wanted = {p.relative_to(scratch).as_posix() for p in scratch.rglob("*") if p.is_file()}
        changed = [rel for rel in sorted(wanted) if _install(scratch / rel, tree / rel)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _prune(tree, wanted)
    _mirror_directories(tree, rootfs, wanted)
    if (tree / ENV_FILE).parent.is_dir():
        (tree / ENV_FILE).parent.chmod(0o700)
    return changed


def _install(new: Path, target: Path) -> bool:
    data, mode = new.read_bytes(), new.stat().st_mode & 0o777
    if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
        if target.stat().st_mode & 0o777 != mode:
            target.chmod(mode)
            return True
        return False
    # rsync's quick check compares size and time in whole seconds: a changed file of the same
    # size must not keep the second of the one it replaces
    before = target.stat().st_mtime if target.is_file() else None
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data, mode=mode)
    if before is not None and int(target.stat().st_mtime) <= int(before):
        os.utime(target, (before + 1, before + 1))
    return True


def _prune(tree: Path, wanted: set[str]) -> None:
    """Remove what the tree holds beyond ``wanted`` (a Config or template gone, env emptied)."""
    for dirpath, dirnames, filenames in os.walk(tree, topdown=False):
        here = Path(dirpath)
        for name in filenames:
            if (here / name).relative_to(tree).as_posix() not in wanted:
                (here / name).unlink()
        for name in dirnames:
            path = here / name
            if not path.is_symlink() and not any(path.iterdir()):
                path.rmdir()


def _mirror_directories(tree: Path, rootfs: Path, wanted: set[str]) -> None:
    """Give the tree's directories the mode and times of the image's: rsync takes a directory
    both sources hold from the tree, and the host's must stay as the image has it."""
    dirs = {PurePosixPath(p).parents[i].as_posix() for p in wanted for i in range(len(PurePosixPath(p).parents))}
    for rel in sorted(dirs, key=len, reverse=True):
        own, image = tree / rel, rootfs / rel
        if own.is_dir() and image.is_dir() and not image.is_symlink():
            shutil.copystat(image, own, follow_symlinks=False)
