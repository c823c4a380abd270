"""The filesystem layout of the standard registry (distribution's ``filesystem`` driver).

A stock ``docker-registry`` serves such a tree as it is::

    registry/docker/registry/v2/blobs/sha256/<xx>/<hex>/data
    registry/docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link
    registry/docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link
    registry/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
    registry/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link

``merge_trees`` unions several such trees without copying blob data (hard links). A tag that
every tree points at the same digest (an upstream index, as the rootfs cache keeps it) is
served as it is; a tag present with different manifests in several trees becomes one OCI image
index whose entries carry each manifest's platform.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sealer._fs import fsync_dir
from sealer.errors import DigestMismatchError, RegistryTreeError
from sealer.oci.descriptor import (
    INDEX_TYPES,
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    Descriptor,
    canonical_json,
    index_entries,
    parse_json_blob,
)
from sealer.oci.digest import Digest
from sealer.oci.platform import Platform

V2 = Path("docker") / "registry" / "v2"
MAX_NESTING = 4  # indexes inside indexes, as deep as they are followed


class RegistryTree:
    """A registry tree rooted at ``root`` (the directory that holds ``docker/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.v2 = root / V2

    def blob_path(self, digest: str) -> Path:
        hexd = Digest.parse(digest).hex
        return self.v2 / "blobs" / "sha256" / hexd[:2] / hexd / "data"

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        data = self.blob_path(digest).read_bytes()
        if Digest.of(data) != digest:
            raise DigestMismatchError(digest, f"blob in {self.root} does not match its digest")
        return data

    def add_blob_file(self, digest: str, source: Path) -> None:
        """Hard-link (or, across filesystems, copy) a verified blob file into the tree."""
        target = self.blob_path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)

    def put_blob(self, data: bytes) -> Digest:
        digest = Digest.of(data)
        target = self.blob_path(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return digest

    def _link(self, path: Path, digest: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "link").write_text(digest)

    def link_layer(self, repo: str, digest: str) -> None:
        self._link(self.v2 / "repositories" / repo / "_layers" / "sha256" / Digest.parse(digest).hex, digest)

    def link_revision(self, repo: str, digest: str) -> None:
        manifests = self.v2 / "repositories" / repo / "_manifests"
        self._link(manifests / "revisions" / "sha256" / Digest.parse(digest).hex, digest)

    def tag(self, repo: str, tag: str, digest: str) -> None:
        tag_dir = self.v2 / "repositories" / repo / "_manifests" / "tags" / tag
        self._link(tag_dir / "current", digest)
        self._link(tag_dir / "index" / "sha256" / Digest.parse(digest).hex, digest)

    def repositories(self) -> Iterator[str]:
        base = self.v2 / "repositories"
        if not base.is_dir():
            return
        for manifests in sorted(base.rglob("_manifests")):
            yield str(manifests.parent.relative_to(base))

    def tags(self, repo: str) -> dict[str, Digest]:
        tags_dir = self.v2 / "repositories" / repo / "_manifests" / "tags"
        if not tags_dir.is_dir():
            return {}
        return {t.name: Digest.parse((t / "current" / "link").read_text().strip()) for t in sorted(tags_dir.iterdir())}

    def links(self, repo: str, kind: str) -> list[Digest]:
        """Digests linked under ``_layers`` or ``_manifests/revisions``."""
        sub = "_layers" if kind == "layers" else "_manifests/revisions"
        base = self.v2 / "repositories" / repo / sub / "sha256"
        if not base.is_dir():
            return []
        return sorted(Digest.from_hex(p.name) for p in base.iterdir())

    def blobs(self) -> Iterator[tuple[str, Path]]:
        base = self.v2 / "blobs" / "sha256"
        if not base.is_dir():
            return
        for prefix in sorted(base.iterdir()):
            for blob in sorted(prefix.iterdir()):
                yield Digest.from_hex(blob.name), blob / "data"

    def manifest_json(self, digest: str) -> dict[str, Any]:
        return parse_json_blob(self.read_blob(digest), digest)


def _platform_of(tree: RegistryTree, digest: str) -> Platform:
    manifest = tree.manifest_json(digest)
    config = Descriptor.from_json(manifest.get("config"), digest)
    return Platform.from_oci(tree.manifest_json(config.digest))


def check_apart(out: Path, inputs: list[Path]) -> None:
    """Refuse an output that is an input, lies inside one, or holds one (paths resolved)."""
    target = out.resolve()
    for given in inputs:
        source = given.resolve()
        if target == source or source in target.parents or target in source.parents:
            relation = "is" if target == source else "is inside" if source in target.parents else "holds"
            raise RegistryTreeError(f"{out} {relation} the input tree {given}: write the merge elsewhere")


def merge_trees(out: Path, trees: list[Path], replace: bool = False) -> dict[str, str]:
    """Union ``trees`` into a new ``out`` (hard links); returns ``repo:tag`` -> digest served.

    The tree is made beside ``out`` and renamed into place when complete. An existing ``out``
    that is not empty is refused unless ``replace``; then it is removed only after the new
    tree took its place. Deterministic: the same inputs give the same tree and index digests.
    """
    check_apart(out, trees)
    out = Path(os.path.abspath(out))
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise RegistryTreeError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not replace:
        raise RegistryTreeError(f"{out} exists and is not empty: give --replace to replace it")
    if not out.parent.is_dir():
        raise RegistryTreeError(f"cannot write {out}: directory {out.parent} does not exist")
    work = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.merging")
    try:
        served = _merge(work, trees)
        if out.is_dir() and any(out.iterdir()):
            old = work.with_suffix(".old")
            os.rename(out, old)
            os.rename(work, out)
            fsync_dir(out.parent)
            shutil.rmtree(old)
        else:
            os.replace(work, out)  # over an empty directory, or where there was none
            fsync_dir(out.parent)
    except OSError as err:
        raise RegistryTreeError(f"cannot write {out}: {err.strerror}") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return served


def _merge(out: Path, trees: list[Path]) -> dict[str, str]:
    target = RegistryTree(out)
    target.v2.mkdir(parents=True)
    sources = [RegistryTree(t) for t in trees]
    for tree in sources:
        for digest, path in tree.blobs():
            target.add_blob_file(digest, path)
    served: dict[str, str] = {}
    repos = sorted({r for tree in sources for r in tree.repositories()})
    for repo in repos:
        tags: dict[str, list[tuple[RegistryTree, Digest]]] = {}
        for tree in sources:
            for digest in tree.links(repo, "layers"):
                target.link_layer(repo, digest)
            for digest in tree.links(repo, "revisions"):
                target.link_revision(repo, digest)
            for tag, digest in tree.tags(repo).items():
                tags.setdefault(tag, []).append((tree, digest))
        for tag, entries in sorted(tags.items()):
            digest = _merged_tag(target, repo, tag, entries)
            target.tag(repo, tag, digest)
            served[f"{repo}:{tag}"] = digest
    _stamp(out)
    return served


def _merged_tag(target: RegistryTree, repo: str, tag: str, entries: list[tuple[RegistryTree, Digest]]) -> Digest:
    """What ``repo:tag`` is in the merged tree: the one digest every tree agrees on, or an OCI
    index (written into ``target``) of every platform manifest the trees hold for it."""
    digests = list(dict.fromkeys(d for _t, d in entries))
    if len(digests) == 1:
        return digests[0]
    descriptors: dict[str, Descriptor] = {}
    for tree, digest in entries:
        for desc in _flatten(tree, digest):
            descriptors.setdefault(desc.digest, desc)
    platforms: dict[Platform, str] = {}
    for desc in descriptors.values():
        assert desc.platform is not None
        if desc.platform in platforms and platforms[desc.platform] != desc.digest:
            raise RegistryTreeError(
                f"{repo}:{tag} has two different manifests for {desc.platform}: "
                f"{platforms[desc.platform]} and {desc.digest}"
            )
        platforms[desc.platform] = desc.digest
    ordered = sorted(descriptors.values(), key=lambda d: (str(d.platform), d.digest))
    index = canonical_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [d.to_json() for d in ordered]})
    merged = target.put_blob(index)
    target.link_revision(repo, merged)
    return merged


def _stamp(root: Path) -> None:
    """Times that depend only on content, so that rsync sees an unchanged tree as unchanged.

    Blob data linked from elsewhere keeps its own (content-derived) times.
    """
    for dirpath, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if name == "data" and os.stat(path).st_nlink > 1:
                continue
            with open(path, "rb") as f:
                stamp = int(hashlib.sha256(f.read()).hexdigest()[:8], 16)
            os.utime(path, (stamp, stamp))
        for name in dirs:
            os.utime(os.path.join(dirpath, name), (0, 0))
    os.utime(root, (0, 0))


def _flatten(tree: RegistryTree, digest: Digest, depth: int = 0) -> list[Descriptor]:
    """The platform manifests ``tree`` holds that a tag's digest stands for.

    An index is opened (and indexes nested in it); its entries the tree does not hold (other
    platforms' images, attestations) are left out, so the index made from them lists only what
    the merged tree serves.
    """
    doc = tree.manifest_json(digest)
    media_type = doc.get("mediaType", "")
    if media_type in INDEX_TYPES or (not media_type and "manifests" in doc):
        out: list[Descriptor] = []
        for desc in index_entries(doc, digest):
            if not tree.has_blob(desc.digest):
                continue
            if desc.media_type in INDEX_TYPES:
                if depth < MAX_NESTING:
                    out += _flatten(tree, desc.digest, depth + 1)
            elif desc.platform is not None:
                out.append(desc)
            else:
                out += _flatten(tree, desc.digest, depth + 1)
        return out
    data = tree.read_blob(digest)
    return [Descriptor(media_type or MEDIA_MANIFEST, digest, len(data), _platform_of(tree, digest))]
