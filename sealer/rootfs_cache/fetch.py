"""Each platform's container images, fetched into a registry tree (the ``rootfs cache`` layer).

For one platform: resolve every reference to that platform's manifest (from its index, or a
single-platform manifest whose config must match), then fetch config and layers in parallel,
verified, into a blob cache shared by every build and platform (so nothing is fetched twice),
and hard-link them into the tree with the registry's links and tags.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sealer.distribution.client import RegistryClient
from sealer.distribution.config import RegistryConfig
from sealer.errors import DigestMismatchError, NotFoundError, RegistryError, SealerError
from sealer.oci.descriptor import INDEX_TYPES, MANIFEST_TYPES, Descriptor, parse_json_blob
from sealer.oci.platform import Platform
from sealer.oci.reference import DOCKER_HUB, Reference
from sealer.progress import Reporter
from sealer.rootfs_cache.registry_tree import RegistryTree
from sealer.store.layout import Store

PARALLEL = 4
# where docker.io's API answers
REGISTRY_HOSTS = {DOCKER_HUB: "registry-1.docker.io"}


@dataclass(frozen=True)
class Resolved:
    ref: str
    registry: str
    repo: str
    tag: str | None
    manifest: bytes
    media_type: str
    digest: str


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
            client = self.client(registry)
            try:
                data, media_type, digest = client.get_manifest(ref.repository, ref.digest or ref.tag or "latest")
                if media_type in INDEX_TYPES:
                    chosen = [
                        d for d in (Descriptor.from_json(m, digest) for m in parse_json_blob(data, digest)["manifests"])
                        if d.platform == platform
                    ]  # fmt: skip
                    if not chosen:
                        return f"{text}: no manifest for {platform}"
                    data, media_type, digest = client.get_manifest(ref.repository, chosen[0].digest)
                if media_type not in MANIFEST_TYPES:
                    return f"{text}: unsupported manifest type {media_type!r}"
                config = Descriptor.from_json(parse_json_blob(data, digest).get("config"), digest)
                config_data = self._blob_bytes(client, ref.repository, config)
                actual = Platform.from_oci(parse_json_blob(config_data, config.digest))
                if actual != platform:
                    return f"{text}: a single-platform image for {actual}, not {platform}"
            except NotFoundError:
                return f"{text}: not found"
            except RegistryError as err:
                return f"{text}: {err}"
            except (SealerError, KeyError, TypeError) as err:
                return f"{text}: {err}"
            return Resolved(text, registry, ref.repository, ref.tag, data, media_type, digest)

        with ThreadPoolExecutor(PARALLEL) as pool:
            for outcome in pool.map(one, refs):
                (missing.append if isinstance(outcome, str) else resolved.append)(outcome)  # type: ignore[arg-type]
        return resolved, missing

    def _cached(self, digest: str) -> Path:
        return self.blob_dir / digest.split(":", 1)[1]

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
            tree.put_blob(item.manifest)
            tree.link_revision(item.repo, item.digest)
            if item.tag:
                tree.tag(item.repo, item.tag, item.digest)
