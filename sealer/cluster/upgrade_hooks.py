"""The plugins of ``sealer upgrade``: its phases ``PreUpgrade`` and ``PostUpgrade``.

The plugins are the cluster's saved Clusterfile's (what the cluster was last run with, as sealer
0.8.6 reads the cluster's own Clusterfile) and the new image's own ``plugins/*.yaml`` (the image
the hosts receive), in each phase's order (plugins.py: the image's first, then the
Clusterfile's). ``PreUpgrade`` runs once every host has the new rootfs beside the old one and
before the first host is drained; ``PostUpgrade`` once every host is Ready at the new version
and the new image's commands ran, before the cluster records the new image. The nodes exist in
both: ``spec.on`` may select them by label. ``--check`` lists each phase's plugins with their
hosts (``hook_summary``), read from the image's layers without mounting them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sealer.cluster.clusterfile import Cluster
from sealer.cluster.plugin_plan import plugin_plan
from sealer.cluster.plugins import OPERATIONS, Plugin, check_addresses, load_image_plugins
from sealer.cluster.upgrade_plan import Plan
from sealer.store.image import PlatformImage
from sealer.store.layer import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, unpacked_layer
from sealer.store.layout import Store

# the phases of the upgrade operation, where its plugins run
HOOKS = tuple(step for step in OPERATIONS["upgrade"] if not step.startswith("@"))
PLUGIN_SUFFIXES = (".yaml", ".yml")


def stacked_plugin_files(layers: list[Path]) -> dict[str, bytes]:
    """The ``plugins/*.yaml`` (and ``.yml``) files of a rootfs made of ``layers`` (bottom first,
    each an unpacked layer): a name's file from the topmost layer that has it; a whiteout hides
    the name below it, an opaque whiteout every file below."""
    found: dict[str, bytes] = {}
    hidden: set[str] = set()
    for layer in reversed(layers):
        if (layer / f"{WHITEOUT_PREFIX}plugins").exists():  # the directory removed: none below
            break
        base = layer / "plugins"
        if base.is_symlink() or not base.is_dir():
            continue
        names = sorted(p.name for p in base.iterdir())
        for name in names:
            path = base / name
            if name.startswith(WHITEOUT_PREFIX):
                hidden.add(name[len(WHITEOUT_PREFIX) :])
            elif name not in hidden and name not in found and path.suffix in PLUGIN_SUFFIXES and path.is_file():
                found[name] = path.read_bytes()
                hidden.add(name)
        if OPAQUE_WHITEOUT in names:
            break
    return found


def new_image_plugins(store: Store, image: PlatformImage, env: Mapping[str, str]) -> list[Plugin]:
    """The image's own plugins, read from its layers (no mount), rendered with ``env``."""
    files = stacked_plugin_files([unpacked_layer(store, layer.digest) for layer in image.config.layers])
    if not files:
        return []
    with tempfile.TemporaryDirectory(prefix="sealer-plugins-") as tmp:
        rootfs = Path(tmp)
        (rootfs / "plugins").mkdir()
        for name, data in files.items():
            (rootfs / "plugins" / name).write_bytes(data)
        return load_image_plugins(rootfs, env)


def hook_plan(cluster: Cluster, image_plugins: list[Plugin]) -> dict[str, list[dict[str, Any]]]:
    """Each upgrade phase that runs plugins, with their entries (plugin_plan.py); an image's
    plugin naming an address that is not the cluster's is refused here."""
    for plugin in image_plugins:
        check_addresses(plugin, [h.address for h in cluster.hosts])
    planned = plugin_plan(cluster, image_plugins, "upgrade")
    return {phase: planned[phase] for phase in HOOKS if planned.get(phase)}


def hook_summary(planned: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """What ``--check`` shows of each phase's plugins: name, type, where, hosts, label
    selectors; never the data (a script may hold the env's secrets)."""
    keep = ("name", "type", "where", "hosts", "labels")
    return {phase: [{k: e[k] for k in keep if k in e} for e in entries] for phase, entries in planned.items()}


def hook_lines(phase: str, entries: list[dict[str, Any]]) -> list[str]:
    """One line per plugin of ``phase`` for the text plan."""
    lines = []
    for entry in entries:
        targets = list(entry.get("hosts") or [])
        targets += [f"the nodes labelled {label}" for label in entry.get("labels") or []]
        on = ", ".join(targets) if targets else "no host"
        lines.append(f"plugin {entry['name']} ({entry['type']}, {entry['where']}) runs in {phase} on {on}")
    return lines


def add_to_plan(plan: Plan, planned: Mapping[str, list[dict[str, Any]]]) -> None:
    """The plan shows the phases' plugins: PreUpgrade's after the registry serves both images
    (the hosts have the new rootfs then), PostUpgrade's before the cluster records the new image."""
    plan.plugins = hook_summary(planned)
    plan.before += hook_lines("PreUpgrade", plan.plugins.get("PreUpgrade", []))
    plan.after[-1:-1] = hook_lines("PostUpgrade", plan.plugins.get("PostUpgrade", []))
