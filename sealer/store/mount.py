"""Each platform's rootfs, assembled from its layers for a run (the mounts of docs/design/multi-arch.md).

As root, an overlayfs of the unpacked layers (read-only, nothing copied); where overlayfs
cannot be used (not root, whiteouts, too many layers for the mount options) a copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sealer.errors import StoreError
from sealer.store.image import PlatformImage
from sealer.store.layer import apply_layers, has_whiteouts, unpacked_layer
from sealer.store.layout import Store

MAX_MOUNT_OPTIONS = 3500  # the kernel takes one page of mount options


def unmount_all(path: Path) -> None:
    """Unmount whatever an earlier, killed run left mounted below ``path``."""
    prefix = str(path.resolve())
    with open("/proc/self/mounts") as f:
        # /proc/self/mounts escapes spaces and such as \040
        mounts = [line.split()[1].encode().decode("unicode_escape") for line in f]
    for mnt in sorted((m for m in mounts if m == prefix or m.startswith(prefix + "/")), key=len, reverse=True):
        if subprocess.run(["umount", mnt], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)


def _overlay(lowers: list[Path], target: Path) -> bool:
    if len(lowers) == 1:
        args = ["mount", "--bind", "-o", "ro", str(lowers[0]), str(target)]
    else:
        options = "lowerdir=" + ":".join(str(p) for p in reversed(lowers))
        if len(options) > MAX_MOUNT_OPTIONS:
            return False
        args = ["mount", "-t", "overlay", "overlay", "-o", options + ",ro", str(target)]
    return subprocess.run(args, capture_output=True, check=False).returncode == 0


def mount_rootfs(store: Store, image: PlatformImage, target: Path) -> None:
    """``target`` holds the image's rootfs until :func:`release_rootfs`: an overlay (or bind)
    mount of its layers, else a copy."""
    digests = [layer.digest for layer in image.config.layers]
    if not digests:
        raise StoreError(f"image {image.id[:12]} has no layers to mount")
    unmount_all(target)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    try:
        lowers = [unpacked_layer(store, d) for d in digests]
        if os.geteuid() == 0 and not any(has_whiteouts(store, d) for d in digests) and _overlay(lowers, target):
            return
        apply_layers(store, digests, target)
    except BaseException:
        release_rootfs(target)
        raise


def release_rootfs(target: Path) -> None:
    """Unmount ``target`` (or remove its copy); never a recursive delete where layers are still mounted."""
    unmount_all(target)
    if not os.path.ismount(target):
        shutil.rmtree(target, ignore_errors=True)


@contextlib.contextmanager
def mounted_rootfs(store: Store, image: PlatformImage, target: Path) -> Iterator[Path]:
    """``target`` holds the image's rootfs until the context ends."""
    mount_rootfs(store, image, target)
    try:
        yield target
    finally:
        release_rootfs(target)
