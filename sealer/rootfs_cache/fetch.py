"""Each platform's container images, fetched into a registry tree (the ``rootfs cache`` layer).

For one platform: resolve every reference to that platform's manifest (through its index, and
indexes nested in it, or a single-platform manifest whose config must match), then fetch config
and layers in parallel, verified, into a blob cache shared by every build and platform (so
nothing is fetched twice), and hard-link them into the tree with the registry's links and tags.

Manifests and indexes go into the tree as the registry served them, byte for byte, and a tag
points where the registry's did: the cluster registry serves every image under the digests its
upstream registry gave it, so a reference pinned by digest pulls the same digest there.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sealer.distribution.client import RegistryClient
from sealer.distribution.config import RegistryConfig
from sealer.errors import (
    DigestMismatchError,
    ManifestTooLargeError,
    NotFoundError,
    SealerError,
    UncacheableImageError,
)
from sealer.oci.descriptor import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_JSON_BLOB,
    Descriptor,
    index_entries,
    is_non_distributable,
    parse_json_blob,
)
from sealer.oci.digest import Digest
from sealer.oci.platform import Platform
from sealer.oci.reference import DOCKER_HUB, Reference
from sealer.progress import Reporter
from sealer.rootfs_cache.registry_tree import RegistryTree
from sealer.store.layout import Store

PARALLEL = 4
# where docker.io's API answers
REGISTRY_HOSTS = {DOCKER_HUB: "registry-1.docker.io"}
# indexes inside indexes, as deep as sealer follows them (real images nest one level at most)
MAX_NESTING = 4


@dataclass(frozen=True)
class Resolved:
    ref: str
    registry: str
    repo: str
    tag: str | None  # the tag the tree gets; None for a reference pinned by digest
    manifest: bytes  # the platform's manifest, as served
    media_type: str
    digest: Digest
    top: Digest  # what the reference named: an index, or the manifest itself
    indexes: tuple[bytes, ...] = ()  # the indexes from ``top`` down to the manifest, as served


@dataclass(frozen=True)
class _Found:
    indexes: tuple[bytes, ...]
    manifest: bytes
    media_type: str
    digest: Digest


class ImageCache:
    """Resolves and fetches images for one build; clients and the blob cache are shared."""

    def __init__(self, store: Store, config: RegistryConfig, reporter: Reporter) -> None:
        self.store = store
        self.config = config
        self.reporter = reporter
        self.blob_dir = store.cache / "registry-blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.clients: dict[str, RegistryClient] = {}
        self.downloaded = 0

    def client(self, registry: str) -> RegistryClient:
        host = self.config.mirrors.get(registry) or REGISTRY_HOSTS.get(registry, registry)
        if host not in self.clients:
            self.clients[host] = RegistryClient(host, self.config)
        return self.clients[host]

    def resolve(self, refs: list[str], platform: Platform) -> tuple[list[Resolved], list[str]]:
        """Each reference's manifest for ``platform``; and the problems, one line per reference."""
        resolved: list[Resolved] = []
        missing: list[str] = []

        def one(text: str) -> Resolved | str:
            ref = Reference.parse(text)
            registry = ref.registry or DOCKER_HUB
            try:
                return self._resolve_one(text, ref, registry, platform)
            except ManifestTooLargeError:
                return f"{text}: a manifest over {MAX_JSON_BLOB // 1024 // 1024} MiB; refused"
            except NotFoundError:
                return f"{text}: not found"
            except (SealerError, KeyError, TypeError) as err:
                return f"{text}: {err}"

        with ThreadPoolExecutor(PARALLEL) as pool:
            for outcome in pool.map(one, refs):
                (missing.append if isinstance(outcome, str) else resolved.append)(outcome)  # type: ignore[arg-type]
        return resolved, missing

    def _resolve_one(self, text: str, ref: Reference, registry: str, platform: Platform) -> Resolved | str:
        client = self.client(registry)
        data, media_type, top = client.get_manifest(ref.repository, ref.digest or ref.tag or "latest")
        found = self._pick(client, ref.repository, _Found((), data, media_type, top), platform, 0)
        if found is None:
            return f"{text}: no manifest for {platform}"
        if found.media_type not in MANIFEST_TYPES:
            return f"{text}: unsupported manifest type {found.media_type!r}"
        doc = parse_json_blob(found.manifest, found.digest)
        for layer in doc.get("layers") or []:
            desc = Descriptor.from_json(layer, found.digest)
            if is_non_distributable(desc.media_type):
                # refused before any blob is fetched: nothing of it is cached
                raise UncacheableImageError(
                    f"layer {desc.digest} is non-distributable ({desc.media_type}): "
                    "its licence keeps it off registries, so sealer does not copy it"
                )
        if not found.indexes:
            # a single-platform manifest: only its config says which platform it is for (an
            # index entry's platform is what runtimes choose by, so it is taken as it is)
            config = Descriptor.from_json(doc.get("config"), found.digest)
            config_data = self._blob_bytes(client, ref.repository, config)
            actual = Platform.from_oci(parse_json_blob(config_data, config.digest))
            if actual != platform:
                return f"{text}: a single-platform image for {actual}, not {platform}"
        # a reference pinned by digest is served by that digest; its tag, if any, is a comment
        tag = ref.tag if ref.digest is None else None
        return Resolved(text, registry, ref.repository, tag, found.manifest, found.media_type, found.digest, top,
                        found.indexes)  # fmt: skip

    def _pick(self, client: RegistryClient, repo: str, here: _Found, platform: Platform, depth: int) -> _Found | None:
        """The manifest for ``platform`` under ``here``, with the indexes on the way to it."""
        if here.media_type not in INDEX_TYPES:
            return here
        if depth >= MAX_NESTING:
            raise UncacheableImageError(f"indexes nested more than {MAX_NESTING} deep")
        entries = index_entries(parse_json_blob(here.manifest, here.digest), here.digest)
        # this index's own entry for the platform first, then the indexes nested in it, in order
        images = [d for d in entries if d.media_type in MANIFEST_TYPES and d.platform == platform][:1]
        nested = [d for d in entries if d.media_type in INDEX_TYPES and d.platform in (None, platform)]
        for desc in images + nested:
            if desc.size > MAX_JSON_BLOB:
                raise ManifestTooLargeError(f"{desc.digest} is {desc.size} bytes")
            data, media_type, digest = client.get_manifest(repo, desc.digest)
            if len(data) != desc.size:
                raise DigestMismatchError(digest, f"is {len(data)} bytes, its index entry says {desc.size}")
            found = self._pick(client, repo, _Found((), data, media_type, digest), platform, depth + 1)
            if found is not None:
                return _Found((here.manifest, *found.indexes), found.manifest, found.media_type, found.digest)
        return None

    def _cached(self, digest: str) -> Path:
        return self.blob_dir / Digest.parse(digest).hex

    def _fetch(self, client: RegistryClient, repo: str, desc: Descriptor) -> Path:
        """A verified blob file in the shared cache, downloaded only when it is not there yet."""
        path = self._cached(desc.digest)
        if path.exists():
            return path
        store_blob = self.store.blob_path(desc.digest)
        if store_blob.exists():
            with contextlib.suppress(OSError):
                os.link(store_blob, path)
                return path
        with self.store.new_blob() as writer:
            client.fetch_blob(repo, desc.digest, desc.size, writer, lambda n: None)
        # commit() moved it into the store's blobs; the cache links to it from there
        with contextlib.suppress(FileExistsError):
            os.link(self.store.blob_path(desc.digest), path)
        self.downloaded += 1
        return path

    def _blob_bytes(self, client: RegistryClient, repo: str, desc: Descriptor) -> bytes:
        data = self._fetch(client, repo, desc).read_bytes()
        if len(data) != desc.size:
            raise DigestMismatchError(desc.digest, f"is {len(data)} bytes, its descriptor says {desc.size}")
        return data

    def materialize(self, resolved: list[Resolved], tree: RegistryTree) -> None:
        """Fetch what is missing and lay every image out in ``tree``."""
        jobs: list[tuple[Resolved, Descriptor]] = []
        for item in resolved:
            doc = parse_json_blob(item.manifest, item.digest)
            jobs.append((item, Descriptor.from_json(doc["config"], item.digest)))
            jobs += [(item, Descriptor.from_json(la, item.digest)) for la in doc.get("layers") or []]

        def fetch(job: tuple[Resolved, Descriptor]) -> tuple[Resolved, Descriptor, Path]:
            item, desc = job
            return item, desc, self._fetch(self.client(item.registry), item.repo, desc)

        with ThreadPoolExecutor(PARALLEL) as pool:
            for item, desc, path in pool.map(fetch, jobs):
                tree.add_blob_file(desc.digest, path)
                tree.link_layer(item.repo, desc.digest)
        for item in resolved:
            for index in item.indexes:
                tree.link_revision(item.repo, tree.put_blob(index))
            tree.put_blob(item.manifest)
            tree.link_revision(item.repo, item.digest)
            if item.tag:
                tree.tag(item.repo, item.tag, item.top)
