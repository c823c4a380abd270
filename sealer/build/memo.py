"""What an unchanged rebuild needs to know, kept so that it can be answered before the builder loads.

After a build whose every input is a local file, sealer keeps a memo beside the store's other
caches: the invocation, the stat data of every path the build looked at (the Kubefile, each
COPY source and every entry under it, and each directory on the way to a source, whose times
move when an entry is added, removed or renamed in it), the digest each FROM resolved to, and
the image it made. The next ``sealer build`` with the same arguments compares them and, when
all match and the name still points at that image, reports it without importing the builder,
the Kubefile parser or the store's write path: on an unchanged rebuild those imports were most
of the time (see bench/build.py). Anything else, and any doubt, goes to the full build.

Stat data is trusted as git's index trusts it (mode, size, mtime, ctime, inode, device; a
content change moves ctime, which no user can set back), and like git a memo is only kept when
every input last changed at least a file system clock step before the build began: a file
changed within that step could change again with the same stat data (``context.settled``).
A build that resolves container images from registries keeps no memo: their tags move, so the
full build asks the registries again.

This module is imported by every ``sealer build``: only the standard library's cheapest parts.
"""

from __future__ import annotations

import json
import os
import zlib

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: every build starts here
if TYPE_CHECKING:
    from typing import Any

VERSION = 1
# How long ago a file must have changed for its stat data to be trusted, by the layer cache
# (context.settled) and the memo alike: file system clocks step coarsely (ext4 by the kernel's
# tick, older ones by the second), so a second covers them.
RACY_NS = 1_000_000_000
REF_NAME = "org.opencontainers.image.ref.name"  # the store's index.json names images with it


def stamp_of(st: os.stat_result) -> list[int]:
    return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


class Inputs:
    """The paths a build looked at, each with the stat data it had when the build looked."""

    def __init__(self) -> None:
        self.paths: list[list[Any]] = []  # [path, follow symlinks, *stamp]
        self.complete = True  # False when the build depends on more than these paths

    def add(self, path: str, follow: bool = False) -> None:
        self.add_stat(path, follow, os.stat(path, follow_symlinks=follow))

    def add_stat(self, path: str, follow: bool, st: os.stat_result) -> None:
        self.paths.append([path, follow, *stamp_of(st)])

    def add_chain(self, root: str, rel: str) -> None:
        """The root and each component from it down to ``rel`` (those that exist), not followed:
        a component replaced, or an entry added to or removed from one, changes its stat data."""
        self.add(root)
        path = root
        for part in rel.split("/"):
            if part in ("", "."):
                continue
            path = os.path.join(path, part)
            if not os.path.lexists(path):
                return
            self.add(path)

    def settled(self, start_ns: int) -> bool:
        limit = start_ns - RACY_NS
        return all(max(p[4], p[5]) < limit for p in self.paths)


def _memo_path(store_root: str, name: str) -> str:
    # one memo per image name; names that share a checksum only displace each other's memo
    return os.path.join(store_root, "cache", "memo", f"{zlib.crc32(name.encode()):08x}.json")


def _names(store_root: str) -> dict[str, str]:
    """Name -> index digest, from the store's index.json (as ``Store.names`` reads it)."""
    with open(os.path.join(store_root, "index.json"), "rb") as f:
        doc = json.loads(f.read())
    out: dict[str, str] = {}
    for entry in doc.get("manifests", []):
        name = (entry.get("annotations") or {}).get(REF_NAME)
        if name:
            out[name] = entry["digest"]
    return out


def encode(
    key: dict[str, Any], inputs: Inputs, bases: dict[str, str], name: str, digest: str, report: dict[str, Any]
) -> bytes:
    doc = {"version": VERSION, "key": key, "name": name, "digest": digest, "bases": bases,
           "report": report, "inputs": inputs.paths}  # fmt: skip
    return json.dumps(doc, separators=(",", ":")).encode()


def save(store_root: str, tmp_dir: str, tag: str, memo: bytes) -> None:
    """Keep ``memo`` (from :func:`encode`) for builds named ``tag``; an equal one is not rewritten."""
    from pathlib import Path

    from sealer._fs import atomic_write  # the write path only: replaying stays light

    path = Path(_memo_path(store_root, tag))
    try:
        if path.read_bytes() == memo:
            return
    except OSError:
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, memo, tmp_dir=Path(tmp_dir))


def replay(store_root: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The report of the build ``key`` asks for, when nothing it depends on has changed since the
    memo was kept; None otherwise (the full build runs)."""
    try:
        with open(_memo_path(store_root, key["tag"]), "rb") as f:
            memo = json.loads(f.read())
        if memo.get("version") != VERSION or memo.get("key") != key:
            return None
        names = _names(store_root)
        if names.get(memo["name"]) != memo["digest"]:
            return None  # retagged, removed, or rebuilt from other inputs since
        if any(names.get(base) != digest for base, digest in memo["bases"].items()):
            return None
        for path, follow, *recorded in memo["inputs"]:
            if stamp_of(os.stat(path, follow_symlinks=follow)) != recorded:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no memo, or one that cannot be read: the full build decides
    report: dict[str, Any] = memo["report"]
    return report
